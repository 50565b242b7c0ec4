"""Training throughput of the Cho et al. (2014) GRU against ``keras.layers.GRU(reset_after=False)``.

Times one forward and backward pass (the gradient of a loss on the output sequence with
respect to the layer's weights) inside a ``tf.function``, at the same sizes and with the same
weights for both layers. Each measurement is the mean over ``--steps`` calls; the reported
number is the median of ``--runs`` measurements, taken after ``--warmup`` calls, with the
implementations interleaved run by run so that a slow phase of a shared machine hits all of
them alike.

Writes ``results/gru_benchmark.json`` and the table ``results/gru_benchmark.md`` (both
replaced atomically).

Usage:

```
python -m bench.gru_throughput
python -m bench.gru_throughput --jit --sizes=64x50x300x256 --variants=auto,while_loop,scan
```
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
import time

from absl import app, flags

from training import io

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["64x50x300x256", "128x100x512x512"],
                  "batch x length x input width x units, one entry per size.")
flags.DEFINE_list("variants", ["auto"],
                  "ChoGRU loop implementations to time (auto, fused, while_loop, scan, unroll).")
flags.DEFINE_bool("jit", False, "Compile the step with XLA (jit_compile=True).")
flags.DEFINE_integer("warmup", 2, "Untimed calls per implementation (tracing, compilation).")
flags.DEFINE_integer("runs", 5, "Timed measurements per implementation; the median is kept.")
flags.DEFINE_integer("steps", 3, "Calls per measurement.")
flags.DEFINE_string("output_dir", "results", "Where the JSON and the markdown table go.")
flags.DEFINE_integer("seed", 0, "Seed of the inputs and weights.")


def _parse_size(text: str) -> dict[str, int]:
    batch, length, width, units = (int(v) for v in text.lower().split("x"))
    return {"batch": batch, "length": length, "input_width": width, "units": units}


def _step_fn(layer, jit: bool):
    import tensorflow as tf

    @tf.function(jit_compile=jit)
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(layer(x, training=True)))
        grads = tape.gradient(loss, layer.trainable_variables)
        return loss, grads

    return step


def measure(size: dict[str, int], variants: list[str], jit: bool, warmup: int, runs: int,
            steps: int, seed: int) -> list[dict]:
    """Median seconds per training step of each implementation at one size."""
    import keras
    import numpy as np
    import tensorflow as tf

    from layers.gru import ChoGRU

    rng = np.random.default_rng(seed)
    x = tf.constant(rng.standard_normal(
        (size["batch"], size["length"], size["input_width"]), dtype=np.float32))
    reference = keras.layers.GRU(size["units"], reset_after=False, return_sequences=True)
    reference.build(x.shape)
    layers = {"keras.layers.GRU(reset_after=False)": reference}
    for variant in variants:
        layer = ChoGRU(size["units"], return_sequences=True, loop=variant)
        layer.build(x.shape)
        layer.set_weights(reference.get_weights())
        layers[f"ChoGRU(loop={variant})"] = layer

    steps_fns = {name: _step_fn(layer, jit) for name, layer in layers.items()}
    for fn in steps_fns.values():
        for _ in range(warmup):
            float(fn(x)[0])
    times: dict[str, list[float]] = {name: [] for name in layers}
    for _ in range(runs):
        for name, fn in steps_fns.items():
            start = time.perf_counter()
            for _ in range(steps):
                loss, _ = fn(x)
            float(loss)
            times[name].append((time.perf_counter() - start) / steps)

    tokens = size["batch"] * size["length"]
    keras_median = statistics.median(times["keras.layers.GRU(reset_after=False)"])
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        rows.append({**size, "implementation": name, "jit": jit,
                     "seconds_per_step": values, "median_seconds_per_step": median,
                     "tokens_per_second": tokens / median,
                     "ratio_vs_keras": keras_median / median})
    return rows


def markdown(report: dict) -> str:
    lines = [
        "# GRU training throughput (forward + backward)",
        "",
        f"Measured {report['date']} on {report['machine']} ({report['cpu_count']} logical "
        f"CPUs visible, shared), TensorFlow {report['tensorflow']}, Keras {report['keras']}, "
        f"jit_compile={report['jit']}. Median of {report['runs']} runs of {report['steps']} "
        f"steps after {report['warmup']} warm-up calls. Ratio = ours/keras throughput "
        "(> 1: ours is faster).",
        "",
        f"Command: `{report['command']}`",
        "",
        "| batch | length | input | units | implementation | ms/step | tokens/s | ratio |",
        "|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['batch']} | {r['length']} | {r['input_width']} | {r['units']} | "
            f"{r['implementation']} | {1000 * r['median_seconds_per_step']:.1f} | "
            f"{r['tokens_per_second']:,.0f} | {r['ratio_vs_keras']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    import keras
    import tensorflow as tf

    rows = []
    for text in FLAGS.sizes:
        size = _parse_size(text)
        size_rows = measure(size, FLAGS.variants, FLAGS.jit, FLAGS.warmup, FLAGS.runs,
                            FLAGS.steps, FLAGS.seed)
        for r in size_rows:
            print(f"{text:>18} {r['implementation']:<38} "
                  f"{1000 * r['median_seconds_per_step']:8.1f} ms/step "
                  f"{r['tokens_per_second']:10,.0f} tokens/s  ratio {r['ratio_vs_keras']:.2f}",
                  flush=True)
        rows.extend(size_rows)

    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": io.cpu_name(),
        "cpu_count": os.cpu_count(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "jit": FLAGS.jit,
        "warmup": FLAGS.warmup,
        "runs": FLAGS.runs,
        "steps": FLAGS.steps,
        "command": "python -m bench.gru_throughput " + " ".join(
            f"--{name}={','.join(value) if isinstance(value, list) else value}"
            for name, value in (("sizes", FLAGS.sizes), ("variants", FLAGS.variants),
                                ("jit", FLAGS.jit), ("runs", FLAGS.runs),
                                ("steps", FLAGS.steps))),
        "rows": rows,
    }
    io.atomic_write_text(os.path.join(FLAGS.output_dir, "gru_benchmark.json"),
                      json.dumps(report, indent=2) + "\n")
    io.atomic_write_text(os.path.join(FLAGS.output_dir, "gru_benchmark.md"), markdown(report))


if __name__ == "__main__":
    app.run(main)
