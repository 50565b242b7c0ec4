"""Training throughput of the Cho et al. (2014) GRU against ``keras.layers.GRU(reset_after=False)``.

What is measured: one forward and backward pass of one GRU layer (the gradient of a loss on the
output sequence with respect to the layer's weights) inside a ``tf.function``, optionally
XLA-compiled (``--jit``), at a fixed size ``batch x length x input width x units``. Both
implementations get the same weights (the ``keras.layers.GRU``'s, seeded) and the same input.

How: one process measures one implementation at one size: ``--warmup`` untimed calls (tracing,
compilation), then ``--steps`` timed calls, the last one read back so the time covers finished
work. It prints one JSON line (ms/step, examples/s, tokens/s) for ``bench/interleave.py``,
which runs the implementations as separate processes, interleaved, and writes the table
(``results/gru_benchmark.md``; see its commands).

Usage (from the repository root)::

    python -m bench.gru_throughput --implementation=keras --size=64x50x300x256
    python -m bench.gru_throughput --implementation=chogru --loop=while_loop \\
        --size=128x100x512x512 --jit
"""

from __future__ import annotations

import json
import resource
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_enum("implementation", "chogru", ["chogru", "keras"],
                  "layers.ChoGRU or keras.layers.GRU(reset_after=False).")
flags.DEFINE_enum("loop", "auto", ["auto", "fused", "while_loop", "scan", "unroll"],
                  "ChoGRU's loop implementation.")
flags.DEFINE_string("size", "64x50x300x256", "batch x length x input width x units.")
flags.DEFINE_bool("jit", False, "Compile the step with XLA (jit_compile=True).")
flags.DEFINE_integer("warmup", 2, "Untimed calls (tracing, compilation).")
flags.DEFINE_integer("steps", 10, "Timed calls.")
flags.DEFINE_integer("seed", 0, "Seed of the input and the weights.")


def parse_size(text: str) -> dict[str, int]:
    try:
        batch, length, width, units = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise app.UsageError(f"--size must be BATCHxLENGTHxINPUTxUNITS, got {text!r}") from None
    return {"batch": batch, "length": length, "input_width": width, "units": units}


def main(argv):
    del argv
    size = parse_size(FLAGS.size)
    import keras
    import numpy as np
    import tensorflow as tf

    from layers.gru import ChoGRU

    keras.utils.set_random_seed(FLAGS.seed)
    rng = np.random.default_rng(FLAGS.seed)
    x = tf.constant(rng.standard_normal(
        (size["batch"], size["length"], size["input_width"]), dtype=np.float32))
    layer = keras.layers.GRU(size["units"], reset_after=False, return_sequences=True)
    layer.build(x.shape)
    name = "keras.layers.GRU(reset_after=False)"
    if FLAGS.implementation == "chogru":
        reference = layer
        layer = ChoGRU(size["units"], return_sequences=True, loop=FLAGS.loop)
        layer.build(x.shape)
        layer.set_weights(reference.get_weights())
        name = f"ChoGRU(loop={FLAGS.loop})"

    @tf.function(jit_compile=FLAGS.jit)
    def step(inputs):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(layer(inputs, training=True)))
        return loss, tape.gradient(loss, layer.trainable_variables)

    for _ in range(FLAGS.warmup):
        float(step(x)[0])
    start = time.perf_counter()
    for _ in range(FLAGS.steps):
        loss, _ = step(x)
    float(loss)
    seconds = (time.perf_counter() - start) / FLAGS.steps
    print(json.dumps({
        **size, "implementation": name, "jit": FLAGS.jit, "warmup": FLAGS.warmup,
        "steps": FLAGS.steps, "ms_per_step": 1000.0 * seconds,
        "examples_per_second": size["batch"] / seconds,
        "tokens_per_second": size["batch"] * size["length"] / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "versions": f"tensorflow {tf.__version__}, keras {keras.__version__}"}), flush=True)


if __name__ == "__main__":
    app.run(main)
