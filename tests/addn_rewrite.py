"""Whether Grappler rewrites a while loop's gradient sums into temporary variables, and a run's
check of it in a fresh process (``training.grappler``).

Usage: python -m tests.addn_rewrite MODEL_DIR

Prints, as JSON, the temporary variables Grappler made of a train step before and after a toy
run in MODEL_DIR, and the memory optimizer's level the run left.

The train step: ``h`` is used three times in a ``tf.while_loop`` body, so its gradient in
``while_grad`` is an ``AddN`` of three inputs. A ``tf.cond`` branch that never runs holds a
statically 1 TiB tensor, which puts Grappler's static estimate of the peak memory above 80 % of
any machine's free RAM: the condition under which the scheduling pass rewrites the ``AddN``s
live at that peak. Nothing large is allocated.
"""

import json
import sys

import tensorflow as tf
from tensorflow.core.protobuf import config_pb2
from tensorflow.python.eager import context

HUGE = [2 ** 19, 2 ** 19]  # 2**38 float32: above any RAM, never allocated (a 2-D shape: the
# gradient of a sum over one axis of 2**38 elements overflows int32)


def temporary_variables(steps: int = 2) -> list[str]:
    """The ``TemporaryVariable`` nodes in Grappler's output for a freshly traced train step."""
    w = tf.Variable(tf.random.normal([8, 8], seed=1) * 0.1)
    take_huge = tf.Variable(False)

    @tf.function
    def train_step(x):
        with tf.GradientTape() as tape:
            def body(i, h, total):
                a = tf.tanh(tf.matmul(h, w))
                b = tf.sigmoid(h)

                def huge():
                    return tf.reduce_sum(tf.broadcast_to(tf.reshape(h[0, 0], [1, 1]), HUGE)) * h

                c = tf.cond(take_huge, huge, lambda: h * 2.0)
                h = a * b + c * 0.01
                return i + 1, h, total + tf.reduce_sum(h)

            _, h, total = tf.while_loop(lambda i, h, total: i < 10, body,
                                        (tf.constant(0), x, tf.constant(0.0)))
            loss = total + tf.reduce_sum(h)
        w.assign_sub(0.01 * tape.gradient(loss, w))
        return loss

    ctx = context.context()
    ctx.enable_run_metadata()
    try:
        for _ in range(steps):
            train_step(tf.random.normal([4, 8], seed=2))
        metadata = ctx.export_run_metadata()
    finally:
        ctx.disable_run_metadata()
    graphs = [g.post_optimization_graph for g in metadata.function_graphs]
    nodes = [n for g in graphs for n in g.node]
    nodes += [n for g in graphs for f in g.library.function for n in f.node_def]
    return sorted({n.name for n in nodes if n.op == "TemporaryVariable"})


def memory_optimization() -> int:
    """The memory optimizer's level that function calls of this thread get."""
    serialized = context.context().function_call_options.config_proto_serialized
    return config_pb2.ConfigProto.FromString(serialized).graph_options.rewrite_options \
        .memory_optimization


def main(model_dir: str) -> None:
    from tests.toy_task import TOY
    from training import loop

    before = temporary_variables()
    loop.train(TOY, TOY.params_with_overrides({"epochs": 1}),
               loop.RunConfig(model_dir=model_dir, verbose=False, cache_dir=model_dir + "_cache"))
    print(json.dumps({"before": before, "after": temporary_variables(),
                      "level": memory_optimization()}))


if __name__ == "__main__":
    main(sys.argv[1])
