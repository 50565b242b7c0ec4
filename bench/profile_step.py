"""Where a training step's time goes: the TensorFlow profiler's trace, summed per operation.

Builds the same step as ``bench.task_step_throughput`` (the experiment's task, model and
optimiser, the shared loop's ``train_loop``, the task's static-shaped batches; the same flags),
runs ``--warmup_steps`` untimed steps, then records ``--steps`` steps with
``tf.profiler.experimental`` (host tracer level 2) and reads the trace (``*.xplane.pb``) back:

- a TensorFlow operation is an event named ``op_name:OpType`` on an executor thread; with
  ``--jit_compile`` the step is one XLA program whose thunks are events carrying an ``hlo_op``
  statistic (``fusion.12``, ``dot.3``, ``custom-call.5``…);
- each event's *self* time is its duration minus that of the operations nested in it on the
  same thread, so a function call or a loop is not counted twice;
- operations are grouped by type (TensorFlow: the op type; XLA: the instruction name without
  its ``.N`` suffix), by scope (TensorFlow only: ``forward`` inside the model, ``backward``
  under ``gradient_tape/``, else the top-level name scope, such as the optimiser's update or
  ``clip_by_global_norm``; an XLA program has no scopes) and, separately, listed by name.

Shares are of the summed self time of all operations, which runs on several threads at once
and can exceed the wall time; the wall time per profiled step (with the profiler's overhead) is
printed beside it. The tables go to standard output and, with ``--output``, to a Markdown file
(written atomically; with ``--section``, only that named section of it, see
``bench/sections.py``); ``--trace_dir`` keeps the raw trace for TensorBoard's profile plugin.

Example (from the repository root)::

    python -m bench.profile_step --experiment=devlin2019/sst2 --data_dir=../shared/data \\
        --params=max_seq_length=128 --mixed_precision=mixed_bfloat16 --steps=3 \\
        --output=/tmp/profile_bf16.md
"""

from __future__ import annotations

import collections
import datetime
import glob
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from typing import Iterable

from absl import app, flags

from bench import sections, task_step_throughput
from training import io

FLAGS = flags.FLAGS

_TF_OP = re.compile(r"^([^:\s]+):([A-Za-z0-9_]+)$")
_SCAFFOLD = re.compile(r"^((while|body|cond(_\d+)?|then|else|_\d+)/)+")


def read_trace(trace_dir: str):
    """The ``XSpace`` of the newest ``*.xplane.pb`` under ``trace_dir``."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    paths = sorted(glob.glob(os.path.join(trace_dir, "plugins", "profile", "*",
                                          "*.xplane.pb")), key=os.path.getmtime)
    if not paths:
        raise FileNotFoundError(f"no *.xplane.pb under {trace_dir}: the profiler wrote nothing")
    space = xplane_pb2.XSpace()
    with open(paths[-1], "rb") as f:
        space.ParseFromString(f.read())
    return space


def scope_of(name: str, model_name: str) -> str:
    """``forward``, ``backward`` or the top-level name scope of a TensorFlow op name."""
    top = name.split("/", 1)[0]
    if top == "gradient_tape":
        return "backward"
    if top.startswith(model_name):
        return "forward"
    return top if "/" in name else "(no scope)"


def op_events(space, model_name: str) -> Iterable[tuple[str, str, str, int]]:
    """``(group, scope, name, self time in ps)`` of every TensorFlow op and XLA thunk."""
    for plane in space.planes:
        if not plane.name.startswith("/host:"):
            continue
        hlo_stat = {i for i, m in plane.stat_metadata.items() if m.name == "hlo_op"}
        for line in plane.lines:
            ops = []
            for event in line.events:
                metadata = plane.event_metadata[event.metadata_id]
                if any(s.metadata_id in hlo_stat for s in event.stats) or any(
                        s.metadata_id in hlo_stat for s in metadata.stats):
                    name = metadata.name
                    group, scope = "XLA " + re.sub(r"\.\d+$", "", name), "XLA program"
                else:
                    match = _TF_OP.match(metadata.name)
                    if not match:
                        continue
                    name, group = _SCAFFOLD.sub("", match.group(1)), match.group(2)
                    scope = scope_of(name, model_name)
                ops.append((event.offset_ps, event.duration_ps, group, scope, name))
            ops.sort(key=lambda op: (op[0], -op[1]))
            # Self time: subtract the operations nested directly inside each one.
            stack: list[list] = []
            finished = []
            for start, duration, group, scope, name in ops:
                while stack and stack[-1][0] + stack[-1][1] <= start:
                    finished.append(stack.pop())
                if stack:
                    stack[-1][5] += duration
                stack.append([start, duration, group, scope, name, 0])
            finished += stack
            for _, duration, group, scope, name, children in finished:
                yield group, scope, name, max(0, duration - children)


def summarize(events: Iterable[tuple[str, str, str, int]], steps: int, top: int
              ) -> tuple[dict[str, list[tuple]], float]:
    """Per table (``type``, ``scope``, ``name``) its top rows ``(key, calls per step, ms per
    step, share)``, and the summed self time per step in ms."""
    tables: dict[str, dict] = {kind: collections.defaultdict(lambda: [0, 0])
                               for kind in ("type", "scope", "name")}
    for group, scope, name, self_ps in events:
        for kind, key in (("type", group), ("scope", scope), ("name", f"{group}: {name}")):
            tables[kind][key][0] += 1
            tables[kind][key][1] += self_ps
    total = sum(ps for _, ps in tables["type"].values())
    if not total:
        raise RuntimeError("the trace holds no operation events")
    rows = {}
    for kind, table in tables.items():
        ranked = sorted(table.items(), key=lambda item: -item[1][1])[:top]
        rows[kind] = [(key, calls / steps, ps / 1e9 / steps, ps / total)
                      for key, (calls, ps) in ranked]
    return rows, total / 1e9 / steps


def markdown(title: str, rows: dict[str, list[tuple]], total_ms: float, wall_ms: float,
             machine: str) -> str:
    lines = [f"## {title}", "", machine, "",
             f"Wall time per profiled step: {wall_ms:.0f} ms (profiler running); summed self "
             f"time of all operations per step: {total_ms:.0f} ms (several threads).", ""]
    for kind, heading in (("scope", "scope"), ("type", "operation type"),
                          ("name", "operation (type: name)")):
        lines += [f"| {heading} | calls/step | ms/step | share |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| `{key}` | {calls:.0f} | {ms:.1f} | {100 * share:.1f}% |"
                  for key, calls, ms, share in rows[kind]]
        lines.append("")
    return "\n".join(lines)


def main(argv):
    del argv
    if FLAGS.steps % FLAGS.steps_per_loop:
        raise app.UsageError("--steps must be a multiple of --steps_per_loop")
    import tensorflow as tf

    load_before = os.getloadavg()[0]
    runner = task_step_throughput.build_runner(
        FLAGS.experiment, FLAGS.params, data_dir=FLAGS.data_dir, cache_dir=FLAGS.cache_dir,
        mixed_precision=FLAGS.mixed_precision, jit_compile=FLAGS.jit_compile,
        static_shapes=FLAGS.static_shapes, deterministic=FLAGS.deterministic, seed=FLAGS.seed)
    trace_dir = FLAGS.trace_dir or tempfile.mkdtemp(prefix="profile_step_")
    try:
        for _ in range(FLAGS.warmup_steps):
            float(runner.run(1)[0])
        options = tf.profiler.experimental.ProfilerOptions(
            host_tracer_level=2, python_tracer_level=0, device_tracer_level=1)
        tf.profiler.experimental.start(trace_dir, options=options)
        start = time.perf_counter()
        for _ in range(FLAGS.steps // FLAGS.steps_per_loop):
            float(runner.run(FLAGS.steps_per_loop)[0])
        wall_ms = 1000.0 * (time.perf_counter() - start) / FLAGS.steps
        tf.profiler.experimental.stop()
        rows, total_ms = summarize(op_events(read_trace(trace_dir), runner.model_name),
                                   FLAGS.steps, FLAGS.top)
    finally:
        runner.close()
        if not FLAGS.trace_dir:
            shutil.rmtree(trace_dir, ignore_errors=True)
    settings = ", ".join([FLAGS.mixed_precision] + (["XLA"] if FLAGS.jit_compile else [])
                         + [f"steps_per_loop {FLAGS.steps_per_loop}"])
    shapes = "; ".join(f"{k} {v}" for k, v in runner.shapes.items())
    title = f"{FLAGS.experiment} train step ({shapes}; {settings})"
    machine = (f"{datetime.datetime.now().isoformat(timespec='seconds')}, {io.cpu_name()}, "
               f"{os.cpu_count()} logical CPUs, {FLAGS.steps} profiled steps after "
               f"{FLAGS.warmup_steps} untimed; load average (1 min) {load_before:.2f} before and "
               f"{os.getloadavg()[0]:.2f} after. Command: `python -m bench.profile_step "
               + " ".join(shlex.quote(a) for a in sys.argv[1:]) + "`")
    text = markdown(title, rows, total_ms, wall_ms, machine)
    print(text)
    if FLAGS.output and FLAGS.section:
        sections.write_section(FLAGS.output, FLAGS.section, text)
    elif FLAGS.output:
        io.atomic_write_text(FLAGS.output, text)


if __name__ == "__main__":
    task_step_throughput.define_flags()
    flags.DEFINE_integer("steps", 3, "Profiled training steps.")
    flags.DEFINE_integer("warmup_steps", 2, "Untimed steps before profiling (tracing, "
                         "compilation).")
    flags.DEFINE_integer("top", 20, "Rows per table.")
    flags.DEFINE_string("output", "", "Markdown file for the tables.")
    flags.DEFINE_string("section", "", "Replace or append only this named section of --output.")
    flags.DEFINE_string("trace_dir", "", "Keep the raw trace here (default: a temporary "
                        "folder, deleted).")
    app.run(main)
