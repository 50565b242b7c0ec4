"""Interleaved benchmark driver: contenders as separate processes, A B A B …, with ranges.

What is measured, per contender and repetition, in a fresh process:

- ``process_wall_s``: wall time from starting the process to its exit (interpreter start-up,
  imports, data preparation and evaluation included);
- ``peak_rss_mb``: the process's peak resident set size (``ru_maxrss`` of ``wait4``, which
  covers the process and the children it waited for);
- ``cpu_s``: its user + system CPU time;
- the numbers the process reports about itself: the last line of its standard output that is a
  JSON object and, when the command uses ``{run_dir}``, ``{run_dir}/results.json`` (nested keys
  are joined with dots: ``metrics.dev.accuracy``);
- the 1-minute load average before and after it.

How: every contender is a command line (``--contender=NAME=COMMAND``) run from the repository
root. Repetition *r* runs every contender once, in the order given, so the contenders alternate
A B A B … and a slow phase of a shared machine hits all of them alike. ``{rep}`` in a command
becomes the repetition number (a seed, for example) and ``{run_dir}`` a fresh empty directory
that is deleted after the run. Every process gets the same thread settings
(``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` and ``TF_NUM_INTRAOP_THREADS`` = ``--threads``). A
process that fails stops the benchmark with its error output; nothing is written then.

The report (Markdown, written atomically) gives min / median / max of ``--metric`` and of the
other columns per contender, and for each pair of contenders the ratio of the medians and the
ratio's range (worst and best case of the two min–max ranges). A pair is a result only when
the two ranges do not overlap; otherwise it says "within noise". The other columns are compared
the same way (whose range lies above, or "overlap"): with ``{rep}`` as the seed, overlapping
accuracy ranges mean "equal within seed noise". With ``--section`` the report replaces (or
appends) the section of that name in ``--output`` (``bench/sections.py``) and leaves the rest
of the file as it is, so several benchmarks fill one results file. ``--json_output`` keeps
every measurement.

Example (from the repository root)::

    python -m bench.interleave --repetitions=5 --threads=2 --metric=examples_per_second \\
        --contender="suite=.venv/bin/python -m bench.task_step_throughput --steps=10" \\
        --contender="suite_xla=.venv/bin/python -m bench.task_step_throughput --steps=10 \\
            --jit_compile" \\
        --output=results/performance.md --section=bert_xla --title="XLA on the step"
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from absl import app, flags

from bench import sections
from training import io

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("contender", [], "NAME=COMMAND, once per contender, in the order "
                          "they run; {rep} and {run_dir} are replaced per run.")
flags.DEFINE_integer("repetitions", 5, "Runs of every contender (interleaved).")
flags.DEFINE_integer("threads", os.cpu_count(), "Threads every process is given (environment).")
flags.DEFINE_string("metric", "examples_per_second", "The compared number: a key the processes "
                    "report, or process_wall_s.")
flags.DEFINE_enum("better", "higher", ["higher", "lower"], "Whether a larger --metric is better.")
flags.DEFINE_list("columns", ["peak_rss_mb", "process_wall_s"], "Other numbers to summarise "
                  "(min / median / max) per contender.")
flags.DEFINE_list("pairs", [], "Pairs to compare, A/B; default: every pair in contender order.")
flags.DEFINE_string("title", "", "The section's heading.")
flags.DEFINE_string("description", "", "A paragraph under the heading: what is compared.")
flags.DEFINE_string("output", "", "Markdown file to write (the report is printed in any case).")
flags.DEFINE_string("section", "", "Replace or append only this named section of --output.")
flags.DEFINE_string("json_output", "", "JSON file for every measurement (a section of it with "
                    "--section).")
flags.DEFINE_string("work_dir", None, "Where the {run_dir} directories are made (default: the "
                    "system's temporary folder).")

_DRIVER_KEYS = ("process_wall_s", "peak_rss_mb", "cpu_s", "load_before", "load_after")


def parse_contenders(specs: list[str]) -> list[tuple[str, str]]:
    """``NAME=COMMAND`` strings as ``(name, command)``; names are unique words."""
    contenders = []
    for spec in specs:
        name, sep, command = spec.partition("=")
        name = name.strip()
        if not sep or not command.strip() or not re.fullmatch(r"[\w.+-]+", name):
            raise app.UsageError(f"--contender must be NAME=COMMAND with NAME a word, got "
                                 f"{spec!r}")
        if name in {n for n, _ in contenders}:
            raise app.UsageError(f"contender {name!r} is given twice")
        contenders.append((name, command.strip()))
    if len(contenders) < 1:
        raise app.UsageError("give at least one --contender")
    return contenders


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict with dotted keys."""
    if not isinstance(value, dict):
        return {prefix: value}
    out = {}
    for key, item in value.items():
        out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def last_json_line(text: str) -> dict[str, Any]:
    """The last line of ``text`` that parses as a JSON object (``{}`` if none)."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return {}


def thread_environment(threads: int) -> dict[str, str]:
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
            "TF_NUM_INTRAOP_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}


def run_once(name: str, command: str, rep: int, *, env: dict[str, str],
             work_dir: str | None) -> dict[str, Any]:
    """Runs one process and returns its measurement (see the module docstring)."""
    run_dir = tempfile.mkdtemp(prefix=f"interleave_{name}_{rep}_", dir=work_dir)
    argv = [arg.replace("{rep}", str(rep)).replace("{run_dir}", run_dir)
            for arg in shlex.split(command)]
    try:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            load_before = os.getloadavg()[0]
            start = time.perf_counter()
            process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=err)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - start
            process.returncode = os.waitstatus_to_exitcode(status)
            load_after = os.getloadavg()[0]
            out.seek(0)
            stdout = out.read().decode(errors="replace")
            err.seek(0)
            stderr = err.read().decode(errors="replace")
        if process.returncode:
            raise RuntimeError(f"{name} (repetition {rep}) exited with status "
                               f"{process.returncode}: {shlex.join(argv)}\n--- stderr (end) "
                               f"---\n{stderr[-6000:]}\n--- stdout (end) ---\n{stdout[-2000:]}")
        reported = flatten(last_json_line(stdout))
        results_path = os.path.join(run_dir, "results.json")
        if "{run_dir}" in command and os.path.exists(results_path):
            with open(results_path) as f:
                reported.update(flatten(json.load(f)))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return {**reported, "contender": name, "repetition": rep, "process_wall_s": wall,
            "peak_rss_mb": usage.ru_maxrss / 1024.0, "cpu_s": usage.ru_utime + usage.ru_stime,
            "load_before": load_before, "load_after": load_after}


def summary(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def numbers(runs: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in runs
            if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)
            and math.isfinite(float(r[key]))]


def compare(a: list[float], b: list[float], better: str) -> dict[str, Any]:
    """How much better A is than B: the ratio of medians and its worst/best case.

    For a higher-is-better metric the ratio is ``A / B``, for a lower-is-better one ``B / A``
    (so > 1 means A is better either way). The verdict is a result only when the min–max
    ranges do not overlap, and needs two runs of each at least.
    """
    (a_min, a_med, a_max), (b_min, b_med, b_max) = summary(a), summary(b)
    if better == "higher":
        ratio, low, high = a_med / b_med, a_min / b_max, a_max / b_min
        a_ahead, b_ahead = a_min > b_max, b_min > a_max
    else:
        ratio, low, high = b_med / a_med, b_min / a_max, b_max / a_min
        a_ahead, b_ahead = a_max < b_min, b_max < a_min
    if min(len(a), len(b)) < 2:
        verdict = "no range"
    else:
        verdict = "A better" if a_ahead else "B better" if b_ahead else "within noise"
    return {"ratio": ratio, "low": low, "high": high, "verdict": verdict}


def _fmt(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def markdown(report: dict[str, Any]) -> str:
    metric, better = report["metric"], report["better"]
    runs = report["runs"]
    names = [name for name, _ in report["contenders"]]
    by_name = {name: [r for r in runs if r["contender"] == name] for name in names}
    lines = [f"## {report['title'] or 'Benchmark'}", ""]
    if report["description"]:
        lines += [report["description"], ""]
    lines += [
        f"{report['repetitions']} repetition{'s' if report['repetitions'] != 1 else ''} per "
        f"contender, interleaved "
        f"({' '.join(names)} …), one process per measurement, {report['threads']} threads "
        f"each; {report['date']}, {report['machine']}, {report['cpu_count']} logical CPUs; "
        f"load average (1 min) {report['load_before']:.2f} before and "
        f"{report['load_after']:.2f} after, {report['load_min']:.2f}–{report['load_max']:.2f} "
        f"over the measurements. `{metric}`: {better} is better.", "",
    ]
    if report["repetitions"] < 5:
        lines += ["**Fewer than 5 repetitions: a check of the commands, not a measurement.**",
                  ""]
    columns = [metric] + [c for c in report["columns"] if c != metric]
    header = "| contender | " + " | ".join(f"{c} (min / median / max)" for c in columns) + " |"
    lines += [header, "| --- |" + " ---: |" * len(columns)]
    for name in names:
        cells = []
        for column in columns:
            values = numbers(by_name[name], column)
            cells.append(" / ".join(_fmt(v) for v in summary(values)) if values else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    others = columns[1:]
    lines += ["", f"| A / B | {metric}: ratio of medians (A better if > 1) | ratio range "
                  f"(worst–best) | verdict | other columns: which range is higher |",
              "| --- | ---: | ---: | --- | --- |"]
    for a, b in report["pairs"]:
        c = compare(numbers(by_name[a], metric), numbers(by_name[b], metric), better)
        verdict = {"A better": f"**{a} better** (ranges do not overlap)",
                   "B better": f"**{b} better** (ranges do not overlap)",
                   "within noise": "within noise (ranges overlap)",
                   "no range": "no verdict (one run each)"}[c["verdict"]]
        notes = []
        for column in others:
            va, vb = numbers(by_name[a], column), numbers(by_name[b], column)
            if va and vb:
                side = {"A better": a, "B better": b, "within noise": "overlap",
                        "no range": "one run"}[compare(va, vb, "higher")["verdict"]]
                notes.append(f"{column}: {side}")
        lines.append(f"| {a} / {b} | {c['ratio']:.2f}× | {c['low']:.2f}–{c['high']:.2f}× | "
                     f"{verdict} | {'; '.join(notes)} |")
    lines += ["", "Commands:", ""]
    lines += [f"- {name}: `{command}`" for name, command in report["contenders"]]
    lines += ["", f"Driver: `{report['command']}`", ""]
    return "\n".join(lines)


def read_sections(path: str) -> dict[str, Any]:
    """The reports already in a JSON file of sections (empty if there is no file)."""
    data = io.read_json(path) if os.path.exists(path) else {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) and "runs" in v
                                             for v in data.values()):
        raise app.UsageError(f"{path} does not hold sections of this driver's reports: move it "
                             "away or name another --json_output")
    return data


def resolve_pairs(specs: list[str], names: list[str]) -> list[tuple[str, str]]:
    if not specs:
        return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    pairs = []
    for spec in specs:
        a, sep, b = spec.partition("/")
        if not sep or a not in names or b not in names or a == b:
            raise app.UsageError(f"--pairs entry {spec!r} must be A/B with two contender "
                                 f"names of {names}")
        pairs.append((a, b))
    return pairs


def main(argv):
    del argv
    contenders = parse_contenders(FLAGS.contender)
    names = [name for name, _ in contenders]
    pairs = resolve_pairs(FLAGS.pairs, names)
    if FLAGS.repetitions < 1 or FLAGS.threads < 1:
        raise app.UsageError("--repetitions and --threads must be at least 1")
    if FLAGS.section:
        try:
            sections.check_name(FLAGS.section)
        except ValueError as e:
            raise app.UsageError(str(e)) from None
    if FLAGS.json_output and FLAGS.section:
        read_sections(FLAGS.json_output)  # refuse a file of another kind before running
    env = {**os.environ, **thread_environment(FLAGS.threads)}
    load_before = os.getloadavg()[0]
    runs = []
    for rep in range(FLAGS.repetitions):
        for name, command in contenders:
            run = run_once(name, command, rep, env=env, work_dir=FLAGS.work_dir)
            value = run.get(FLAGS.metric)
            if not isinstance(value, (int, float)):
                raise RuntimeError(f"{name} reported no number {FLAGS.metric!r}; it reported: "
                                   f"{sorted(k for k in run if k not in _DRIVER_KEYS)}")
            print(f"[{rep + 1}/{FLAGS.repetitions}] {name}: {FLAGS.metric}={value:.4g} "
                  f"wall={run['process_wall_s']:.1f}s rss={run['peak_rss_mb']:.0f}MiB "
                  f"load={run['load_before']:.2f}->{run['load_after']:.2f}", flush=True)
            print(json.dumps(run, default=str), flush=True)  # the raw record, in the log
            runs.append(run)
    loads = [r[k] for r in runs for k in ("load_before", "load_after")]
    report = {
        "title": FLAGS.title, "description": FLAGS.description,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": io.cpu_name(), "cpu_count": os.cpu_count(), "threads": FLAGS.threads,
        "repetitions": FLAGS.repetitions, "metric": FLAGS.metric, "better": FLAGS.better,
        "columns": list(FLAGS.columns), "pairs": pairs, "contenders": contenders,
        "load_before": load_before, "load_after": os.getloadavg()[0],
        "load_min": min(loads), "load_max": max(loads),
        "command": "python -m bench.interleave " + " ".join(
            shlex.quote(a) for a in sys.argv[1:]),
        "runs": runs,
    }
    text = markdown(report)
    print(text)
    if FLAGS.output and FLAGS.section:
        sections.write_section(FLAGS.output, FLAGS.section, text)
    elif FLAGS.output:
        io.atomic_write_text(FLAGS.output, text)
    if FLAGS.json_output:
        data = report
        if FLAGS.section:
            data = read_sections(FLAGS.json_output)
            data[FLAGS.section] = report
        io.atomic_write_json(FLAGS.json_output, data)


if __name__ == "__main__":
    app.run(main)
