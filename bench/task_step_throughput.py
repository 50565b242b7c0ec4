"""Training-step throughput of a registered experiment, run the way the shared loop runs it.

What is measured: training examples per second of an experiment's step, the task's
``train_step`` (forward pass, loss, gradients, global-norm clipping, the optimiser update), run
as ``training/loop.py`` runs it: a ``tf.function`` takes ``--steps_per_loop`` steps per call
from a ``tf.distribute`` iterator over the task's own training pipeline, and each step is
optionally compiled with XLA (``--jit_compile``). With ``--static_shapes`` (the default) every
batch is padded to the experiment's fixed lengths (BERT: ``[batch, max_seq_length]``; word-by-
word attention: the premise and hypothesis lengths; the caption decoder: the caption length
over the cached image features), so every step does the same work and runs of different
settings compare.

How: the task is built as ``train.py`` builds it (the registry, ``--params``, ``prepare`` with
the shared cache, a temporary model dir, op determinism unless ``--nodeterministic``), then
``--warmup_steps`` untimed calls of one step (the first traces and compiles; its duration is
reported as ``first_call_seconds``), then ``--steps`` timed steps in calls of
``--steps_per_loop``, each call ended by reading its loss so the time covers finished work.
The process prints one JSON line (examples/s, ms/step, batch shapes, peak RSS) for
``bench/interleave.py``, which runs one such process per measurement.

Examples (from the repository root)::

    python -m bench.task_step_throughput --experiment=devlin2019/sst2 \\
        --data_dir=../shared/data --params=max_seq_length=128 --steps=10 --jit_compile
    python -m bench.task_step_throughput --experiment=rocktaschel2016/word_by_word \\
        --data_dir=../shared/data --steps=20
    python -m bench.task_step_throughput --experiment=xu2015/flickr8k_soft \\
        --data_dir=../shared/data --steps=20 --jit_compile
"""

from __future__ import annotations

import dataclasses
import json
import resource
import shutil
import tempfile
import time
from typing import Any, Callable

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The flags that say what to build (shared with ``bench.profile_step``): ``train.py``'s
    own settings (:mod:`training.settings`), with fixed shapes and one step per call."""
    from training import settings

    settings.define_flags(["experiment", "data_dir", "cache_dir", "params", "mixed_precision",
                           "jit_compile", "static_shapes", "deterministic", "steps_per_loop",
                           "seed"],
                          defaults={"experiment": "devlin2019/sst2", "static_shapes": True,
                                    "steps_per_loop": 1})


@dataclasses.dataclass
class StepRunner:
    """An experiment's model, optimiser and training iterator, ready to step.

    ``run(n)`` takes up to ``n`` training steps in one ``tf.function`` call and returns the
    summed loss and the number of steps taken (tensors).
    """

    run: Callable[[int], tuple[Any, Any]]
    batch_size: int
    shapes: dict[str, Any]
    params: dict[str, Any]
    model_name: str
    model_dir: str

    def close(self) -> None:
        shutil.rmtree(self.model_dir, ignore_errors=True)


def build_runner(experiment_name: str, overrides: str | None, *, data_dir: str | None,
                 cache_dir: str | None, mixed_precision: str, jit_compile: bool,
                 static_shapes: bool, deterministic: bool, seed: int) -> StepRunner:
    """Builds the experiment's task, model, optimiser and training loop function.

    The loop function is the shared loop's own (:func:`training.distribute.make_train_loop`, default
    strategy): steps taken from a distributed iterator inside one ``tf.function`` call, each
    step XLA-compiled with ``jit_compile``.
    """
    import keras
    import tensorflow as tf

    from datasets.batching import DataRequest
    from datasets.paths import resolve_data_dir
    from papers import registry
    from training.distribute import make_train_loop
    from training.run import build_model, set_up_process
    from training.settings import default_cache_dir
    from training.task import RunEnv, steps_per_epoch

    experiment = registry.get(experiment_name)
    params = experiment.params_with_overrides(overrides)
    data_dir = resolve_data_dir(data_dir)
    set_up_process(seed, deterministic=deterministic, mixed_precision=mixed_precision)
    strategy = tf.distribute.get_strategy()
    model_dir = tempfile.mkdtemp(prefix="task_step_")
    task = experiment.make_task(params, data_dir, model_dir)
    task.prepare(RunEnv(cache_dir=cache_dir or default_cache_dir()))

    global_batch = int(params["batch_size"])
    clip_norm = float(params["clip_norm"]) or None
    total_steps = int(params["train_steps"]) or int(params["epochs"]) * steps_per_epoch(
        task.num_examples("train"), global_batch)
    with strategy.scope():
        model = build_model(task, static_shapes=static_shapes)
        optimizer = task.build_optimizer(total_steps)
        if mixed_precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)

    train_loop = make_train_loop(task, model, optimizer, strategy, global_batch=global_batch,
                                 clip_norm=clip_norm, jit_compile=jit_compile)

    def dataset_fn(ctx):
        return task.dataset(DataRequest("train", batch_size=global_batch, training=True,
                                        seed=seed, input_context=ctx,
                                        static_shapes=static_shapes)).repeat()

    iterator = iter(strategy.distribute_datasets_from_function(dataset_fn))
    features = iterator.element_spec[0]
    shapes = {name: spec.shape.as_list() for name, spec in
              (features.items() if isinstance(features, dict) else [("inputs", features)])}
    return StepRunner(run=lambda n: train_loop(iterator, tf.constant(n, tf.int32)),
                      batch_size=global_batch, shapes=shapes, params=params,
                      model_name=model.name, model_dir=model_dir)


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(runner: StepRunner, *, warmup_steps: int, steps: int, steps_per_loop: int
            ) -> dict[str, Any]:
    """Untimed warm-up calls of one step, then ``steps`` timed steps; returns the numbers."""
    start = time.perf_counter()
    first_loss = float(runner.run(1)[0])
    first_call = time.perf_counter() - start
    for _ in range(warmup_steps - 1):
        float(runner.run(1)[0])
    timed, losses = 0.0, []
    for _ in range(steps // steps_per_loop):
        start = time.perf_counter()
        total, done = runner.run(steps_per_loop)
        total = float(total)
        timed += time.perf_counter() - start
        if int(done) != steps_per_loop:
            raise RuntimeError(f"the training iterator ended after {int(done)} of "
                               f"{steps_per_loop} steps")
        losses.append(total / steps_per_loop)
    return {"examples_per_second": steps * runner.batch_size / timed,
            "ms_per_step": 1000.0 * timed / steps,
            "first_call_seconds": first_call,
            "first_loss": first_loss, "last_loss": losses[-1]}


def main(argv):
    del argv
    if FLAGS.steps % FLAGS.steps_per_loop:
        raise app.UsageError(f"--steps={FLAGS.steps} is not a multiple of "
                             f"--steps_per_loop={FLAGS.steps_per_loop}")
    if FLAGS.warmup_steps < 1:
        raise app.UsageError("--warmup_steps must be at least 1 (the first call traces)")
    import keras
    import tensorflow as tf

    runner = build_runner(FLAGS.experiment, FLAGS.params, data_dir=FLAGS.data_dir,
                          cache_dir=FLAGS.cache_dir, mixed_precision=FLAGS.mixed_precision,
                          jit_compile=FLAGS.jit_compile, static_shapes=FLAGS.static_shapes,
                          deterministic=FLAGS.deterministic, seed=FLAGS.seed)
    try:
        result = measure(runner, warmup_steps=FLAGS.warmup_steps, steps=FLAGS.steps,
                         steps_per_loop=FLAGS.steps_per_loop)
    finally:
        runner.close()
    print(json.dumps({
        "experiment": FLAGS.experiment, "params": FLAGS.params or "",
        "batch_size": runner.batch_size, "shapes": runner.shapes,
        "mixed_precision": FLAGS.mixed_precision, "jit_compile": FLAGS.jit_compile,
        "static_shapes": FLAGS.static_shapes, "deterministic": FLAGS.deterministic,
        "steps_per_loop": FLAGS.steps_per_loop, "steps": FLAGS.steps,
        "warmup_steps": FLAGS.warmup_steps, **result, "peak_rss_mb": peak_rss_mb(),
        "versions": f"tensorflow {tf.__version__}, keras {keras.__version__}"}), flush=True)


if __name__ == "__main__":
    define_flags()
    flags.DEFINE_integer("steps", 20, "Timed training steps (a multiple of --steps_per_loop).")
    flags.DEFINE_integer("warmup_steps", 2, "Untimed steps before timing, one per call.")
    app.run(main)
