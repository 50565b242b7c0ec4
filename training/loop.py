"""The one training loop every paper in the suite runs on.

:func:`train` builds an experiment's :class:`~training.task.Task` under a ``tf.distribute``
strategy and runs it: distributed input pipelines (``distribute_datasets_from_function``),
several steps per ``tf.function`` call, the per-replica loss scaled to the global batch,
optional gradient clipping, evaluation every epoch (or every N steps) with outputs gathered
from all replicas, early stopping on the dev metric, the best checkpoint kept, TensorBoard
summaries, a progress bar, a PNG learning curve, a NaN guard, and ``results.json``.

Resuming: the checkpoint holds the model, the optimiser (with its step), and the data position
(epoch and step within the epoch). The training order of an epoch is a pure function of
``(seed, epoch)``, so a run killed at any point (even with SIGKILL) and restarted skips the
batches it has already seen and ends with the same weights as a run never interrupted.

Model dir layout::

    model_dir/
      config.json          experiment, hyperparameters and loop settings of the run
      checkpoints/         the latest checkpoints (resume)
      best/                the checkpoint with the best dev metric
      summaries/           TensorBoard: train/ and eval/
      history.json         one entry per evaluation
      learning_curve.png   train loss and dev metric per epoch
      results.json         the final metrics per split and the run's metadata
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from training import curves, io, strategies
from training.task import Task, steps_per_epoch

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or Inf."""


@dataclasses.dataclass
class RunConfig:
    """Loop settings (the ``train.py`` flags). ``None`` means: the experiment's hyperparameter.

    Args:
        model_dir: where checkpoints, summaries and results go (local or ``gs://``).
        data_dir: the raw datasets (``None``: the online source).
        strategy, tpu, num_cpu_devices: see :mod:`training.strategies`.
        batch_size: the global batch size (``params['batch_size']`` if ``None``).
        epochs / train_steps: how long to train; ``train_steps`` wins when both are set.
        eval_every: evaluate every N steps (0: at the end of every epoch).
        steps_per_loop: training steps per ``tf.function`` call (fewer host round trips; TPU).
        checkpoint_every: also checkpoint every N steps between evaluations (0: only at evals).
        seed: seeds Python, NumPy, TensorFlow and Keras, and the data order.
        deterministic: enable TensorFlow op determinism.
        mixed_precision: float32, mixed_float16 (with loss scaling) or mixed_bfloat16.
        jit_compile: compile the train step with XLA.
        clip_norm: clip the global-batch gradient to this global norm.
        patience: stop after this many evaluations without a better dev metric (0: never).
        static_shapes: fixed-shape batches (implied on TPU).
        verbose: show a progress bar.
    """

    model_dir: str
    data_dir: str | None = None
    strategy: str = "default"
    tpu: str | None = None
    num_cpu_devices: int = 1
    batch_size: int | None = None
    epochs: int | None = None
    train_steps: int | None = None
    eval_every: int = 0
    steps_per_loop: int = 20
    checkpoint_every: int = 0
    seed: int = 0
    deterministic: bool = True
    mixed_precision: str = "float32"
    jit_compile: bool = False
    clip_norm: float | None = None
    patience: int | None = None
    static_shapes: bool = False
    verbose: bool = True


@dataclasses.dataclass
class RunResult:
    results: dict[str, Any]
    model: keras.Model
    task: Task
    train_losses: list[tuple[int, float]]


def _resolve(config: RunConfig, params: dict) -> dict[str, Any]:
    batch_size = config.batch_size or params.get("batch_size")
    if not batch_size:
        raise ValueError("no batch size: pass --batch_size or set the batch_size hyperparameter")
    epochs = config.epochs if config.epochs is not None else params.get("epochs", 1)
    clip = config.clip_norm if config.clip_norm is not None else params.get("clip_norm")
    patience = config.patience if config.patience is not None else params.get("patience", 0)
    if config.mixed_precision not in PRECISIONS:
        raise ValueError(f"unknown --mixed_precision={config.mixed_precision!r}; "
                         f"valid: {', '.join(PRECISIONS)}")
    return {"batch_size": int(batch_size), "epochs": int(epochs),
            "clip_norm": float(clip) if clip else None, "patience": int(patience or 0)}


def _progress_variables() -> dict[str, tf.Variable]:
    def var(value, dtype):
        return tf.Variable(value, dtype=dtype, trainable=False,
                           synchronization=tf.VariableSynchronization.ON_WRITE,
                           aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    return {"epoch": var(0, tf.int64), "step_in_epoch": var(0, tf.int64),
            "best_metric": var(float("nan"), tf.float64),
            "evals_since_best": var(0, tf.int64), "train_seconds": var(0.0, tf.float64)}


def _build_model(task: Task, static_shapes: bool = False) -> keras.Model:
    """``task.build_model()``, called once on a dev batch if it has no weights yet."""
    model = task.build_model()
    if not model.built:
        features, _, _ = next(iter(task.dataset("dev", batch_size=2, training=False, seed=0,
                                                static_shapes=static_shapes)))
        model(features, training=False)
    return model


def _read(variable) -> Any:
    """The value of a (possibly mirrored, possibly Keras) scalar variable as a Python number."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.numpy().item()


def _rng_states(model: keras.Model) -> tf.train.Checkpoint:
    """The states of the model's random seed generators (dropout masks and the like).

    Keras 3 does not put them in a ``tf.train.Checkpoint`` of the model; without them a resumed
    run would draw other dropout masks than an uninterrupted one.
    """
    states = {}
    for layer in model._flatten_layers(include_self=True):
        for generator in getattr(layer, "_seed_generators", []):
            states[f"s{len(states)}"] = generator.state.value
    return tf.train.Checkpoint(**states)


def _checkpoint_dir(config: RunConfig, strategy, name: str) -> str:
    if strategies.is_chief(strategy):
        return os.path.join(config.model_dir, name)
    # Non-chief workers take part in every save (a collective) but write to a scratch folder.
    return os.path.join(config.model_dir, ".worker_tmp", str(strategies.worker_id(strategy)), name)


def _concat(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    keys = chunks[0].keys()
    return {k: np.concatenate([c[k] for c in chunks], axis=0) for k in keys}


def _is_better(value: float, best: float, mode: str) -> bool:
    if math.isnan(best):
        return True
    return value > best if mode == "max" else value < best


def train(experiment, params: dict, config: RunConfig,
          strategy: tf.distribute.Strategy | None = None) -> RunResult:
    """Trains ``experiment`` with ``params`` and returns its results (also in results.json)."""
    started = time.time()
    settings = _resolve(config, params)
    if strategy is None:
        strategy = strategies.get_strategy(config.strategy, tpu=config.tpu,
                                           num_cpu_devices=config.num_cpu_devices)
    chief = strategies.is_chief(strategy)
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(config.mixed_precision)
    static = config.static_shapes or isinstance(strategy, tf.distribute.TPUStrategy)

    task: Task = experiment.task(params, config.data_dir, config.model_dir)
    task.prepare()
    global_batch = settings["batch_size"]
    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        raise ValueError(f"global batch size {global_batch} is not divisible by the "
                         f"{replicas} replicas")
    per_replica = global_batch // replicas
    # Exact for fixed-size batches; with length bucketing an epoch may have a few steps less.
    # The epoch itself ends when its data does (see train_loop).
    per_epoch = steps_per_epoch(task.num_examples("train"), global_batch)
    max_steps, epochs = config.train_steps, settings["epochs"]
    total_steps = max_steps or epochs * per_epoch  # the horizon of learning-rate schedules
    steps_per_loop = max(1, config.steps_per_loop)

    with strategy.scope():
        model = _build_model(task, static_shapes=static)
        optimizer = task.build_optimizer(total_steps)
        if config.mixed_precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
        progress = _progress_variables()

    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, rng=_rng_states(model),
                                     **progress)
    manager = tf.train.CheckpointManager(
        checkpoint, _checkpoint_dir(config, strategy, "checkpoints"), max_to_keep=2)
    best_checkpoint = tf.train.Checkpoint(model=model)
    best_manager = tf.train.CheckpointManager(
        best_checkpoint, _checkpoint_dir(config, strategy, "best"), max_to_keep=1)

    history_path = os.path.join(config.model_dir, "history.json")
    history: list[dict] = []
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        if tf.io.gfile.exists(history_path):
            history = io.read_json(history_path)
        if chief and config.verbose:
            print(f"resumed from {manager.latest_checkpoint} at step "
                  f"{_read(optimizer.iterations)} (epoch {_read(progress['epoch'])}, step "
                  f"{_read(progress['step_in_epoch'])} of it)", flush=True)
    step = _read(optimizer.iterations)
    history = [h for h in history if h["step"] <= step]

    writers = {}
    if chief:
        writers = {name: tf.summary.create_file_writer(
            os.path.join(config.model_dir, "summaries", name)) for name in ("train", "eval")}

    def train_step(inputs):
        return task.train_step(inputs, model, optimizer, global_batch_size=global_batch,
                               clip_norm=settings["clip_norm"])

    step_fn = tf.function(train_step, jit_compile=True) if config.jit_compile else train_step

    @tf.function
    def train_loop(iterator, num_steps):
        """Up to ``num_steps`` steps; fewer when the epoch's data ends. Returns (loss sum, steps)."""
        total = tf.constant(0.0, tf.float32)
        done = tf.constant(0, tf.int32)
        for _ in tf.range(num_steps):
            batch = iterator.get_next_as_optional()
            if not batch.has_value():
                break
            out = strategy.run(step_fn, args=(batch.get_value(),))
            total += strategy.reduce(tf.distribute.ReduceOp.SUM, out["loss"], axis=None)
            done += 1
        return total, done

    evaluate = make_evaluator(task, model, strategy, per_replica_batch=per_replica,
                              seed=config.seed, static_shapes=static)

    def train_dataset(epoch: int, skip_steps: int):
        def dataset_fn(ctx):
            ds = task.dataset("train", batch_size=per_replica, training=True, seed=config.seed,
                              epoch=epoch, input_context=ctx, static_shapes=static)
            per_pipeline = ctx.num_replicas_in_sync // ctx.num_input_pipelines
            return ds.skip(skip_steps * per_pipeline) if skip_steps else ds

        return strategy.distribute_datasets_from_function(dataset_fn)

    def save_history():
        if chief:
            io.atomic_write_json(history_path, history)
            curves.plot_learning_curve(
                history, os.path.join(config.model_dir, "learning_curve.png"),
                title=f"{experiment.name} (seed {config.seed})", metric=task.metric)

    def finished(step: int, epoch: int) -> bool:
        return step >= max_steps if max_steps else epoch >= epochs

    train_losses: list[tuple[int, float]] = []
    # A run that had already stopped early and is started again does not train further.
    stopped_early = bool(settings["patience"] and
                         _read(progress["evals_since_best"]) >= settings["patience"])
    last_eval = history[-1]["step"] if history else -1
    segment_start = time.time()
    epoch, in_epoch = _read(progress["epoch"]), _read(progress["step_in_epoch"])
    while not finished(step, epoch) and not stopped_early:
        iterator = iter(train_dataset(epoch, in_epoch))
        bar = keras.utils.Progbar(per_epoch, stateful_metrics=["loss"], unit_name="step",
                                  verbose=1 if (config.verbose and chief) else 0)
        bar.update(in_epoch)
        while True:
            limits = [steps_per_loop]
            if max_steps:
                limits.append(max_steps - step)
            for every in (config.eval_every, config.checkpoint_every):
                if every:
                    limits.append((step // every + 1) * every - step)
            n = min(limits)
            total, done = train_loop(iterator, tf.constant(n, tf.int32))
            done = int(done)
            epoch_done = done < n
            if done:
                loss = float(total) / done
                if not math.isfinite(loss):
                    message = (f"{experiment.name}: the training loss became {loss} in steps "
                               f"{step + 1}-{step + done} (epoch {epoch + 1}). Training stopped; "
                               f"the last good checkpoint is "
                               f"{manager.latest_checkpoint or 'none'}. Try a lower learning "
                               f"rate or --clip_norm.")
                    if chief:
                        io.atomic_write_json(os.path.join(config.model_dir, "results.json"), {
                            "experiment": experiment.name, "status": "diverged",
                            "message": message, "step": step + done})
                    raise TrainingDiverged(message)
                step += done
                in_epoch += done
                train_losses.append((step, loss))
                bar.update(min(in_epoch, per_epoch), [("loss", loss)])
                if chief:
                    with writers["train"].as_default(step=step):
                        tf.summary.scalar("loss", loss)
                        tf.summary.scalar("learning_rate", _current_lr(optimizer))
            if epoch_done:
                epoch, in_epoch = epoch + 1, 0
            progress["epoch"].assign(epoch)
            progress["step_in_epoch"].assign(in_epoch)
            now = time.time()
            progress["train_seconds"].assign(_read(progress["train_seconds"]) + now -
                                             segment_start)
            segment_start = now
            at_eval = ((config.eval_every and done and step % config.eval_every == 0) or
                       (not config.eval_every and epoch_done) or finished(step, epoch))
            if at_eval and step != last_eval:
                last_eval = step
                eval_start = time.time()
                dev = evaluate("dev")
                value = dev[task.metric]
                if _is_better(value, _read(progress["best_metric"]), task.metric_mode):
                    progress["best_metric"].assign(value)
                    progress["evals_since_best"].assign(0)
                    best_manager.save(checkpoint_number=step)
                else:
                    progress["evals_since_best"].assign_add(1)
                recent = [l for s, l in train_losses
                          if s > (history[-1]["step"] if history else 0)]
                position = epoch + in_epoch / per_epoch
                history.append({"step": step, "epoch": position,
                                "train_loss": float(np.mean(recent)) if recent else None,
                                "dev": dev})
                if chief:
                    with writers["eval"].as_default(step=step):
                        for key, val in dev.items():
                            tf.summary.scalar(f"dev/{key}", val)
                if config.verbose and chief:
                    print(f"\n  step {step} (epoch {position:.2f}): dev "
                          + ", ".join(f"{k}={v:.4f}" for k, v in dev.items()), flush=True)
                save_history()
                manager.save(checkpoint_number=step)
                segment_start += time.time() - eval_start
                patience = settings["patience"]
                if patience and _read(progress["evals_since_best"]) >= patience:
                    stopped_early = True
                    if chief and config.verbose:
                        print(f"early stopping: no better dev {task.metric} in {patience} "
                              "evaluations", flush=True)
                    break
            elif epoch_done or (config.checkpoint_every and done and
                                step % config.checkpoint_every == 0):
                manager.save(checkpoint_number=step)
            if epoch_done or finished(step, epoch):
                break

    if best_manager.latest_checkpoint:
        best_checkpoint.restore(best_manager.latest_checkpoint).expect_partial()
    metrics = {split: evaluate(split) for split in task.eval_splits}
    best_entry = max(history, key=lambda h: h["dev"][task.metric] *
                     (1 if task.metric_mode == "max" else -1)) if history else None
    results = {
        "experiment": experiment.name,
        "paper": experiment.paper,
        "status": "ok",
        "metric": task.metric,
        "params": params,
        "config": dataclasses.asdict(config),
        "metrics": metrics,
        "best": {"step": best_entry["step"], "epoch": best_entry["epoch"]} if best_entry else None,
        "steps": step,
        "epochs": epoch + in_epoch / per_epoch,
        "stopped_early": stopped_early,
        "global_batch_size": global_batch,
        "train_seconds": _read(progress["train_seconds"]),
        "wall_seconds": time.time() - started,
        # over all of the run's training segments (a resumed run included), evaluation excluded
        "examples_per_second": (step * global_batch / _read(progress["train_seconds"])
                                if step and _read(progress["train_seconds"]) > 0 else None),
        "hardware": io.hardware(strategy),
        "versions": io.package_versions(),
        "git_commit": io.git_commit(),
        "reported": [dataclasses.asdict(r) for r in experiment.reported],
    }
    if chief:
        io.atomic_write_json(os.path.join(config.model_dir, "results.json"), results)
        for writer in writers.values():
            writer.flush()
    else:
        scratch = os.path.join(config.model_dir, ".worker_tmp", str(strategies.worker_id(strategy)))
        if tf.io.gfile.exists(scratch):
            tf.io.gfile.rmtree(scratch)
    return RunResult(results=results, model=model, task=task, train_losses=train_losses)


def _current_lr(optimizer) -> float:
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    try:
        return float(keras.ops.convert_to_numpy(inner._get_current_learning_rate()))
    except (AttributeError, TypeError, ValueError):
        return float(keras.ops.convert_to_numpy(inner.learning_rate))


def make_evaluator(task: Task, model: keras.Model, strategy: tf.distribute.Strategy, *,
                   per_replica_batch: int, seed: int = 0, static_shapes: bool = False):
    """Returns ``evaluate(split) -> metrics``: runs ``task.eval_step`` over every batch of the
    split on all replicas, gathers the per-example outputs and calls ``task.compute_metrics``."""

    @tf.function(reduce_retracing=True)  # eval batches are as long as their longest example
    def eval_fn(inputs):
        out = strategy.run(lambda batch: task.eval_step(batch, model), args=(inputs,))
        return {k: strategy.gather(v, axis=0) for k, v in out.items()}

    def evaluate(split: str) -> dict[str, float]:
        def dataset_fn(ctx):
            return task.dataset(split, batch_size=per_replica_batch, training=False, seed=seed,
                                input_context=ctx, static_shapes=static_shapes)

        chunks = []
        for batch in strategy.distribute_datasets_from_function(dataset_fn):
            chunks.append({k: v.numpy() for k, v in eval_fn(batch).items()})
        return task.compute_metrics(_concat(chunks))

    return evaluate


def restore_best(experiment, params: dict, model_dir: str, data_dir: str | None,
                 strategy: tf.distribute.Strategy | None = None) -> tuple[Task, keras.Model]:
    """Rebuilds the task and model of a finished run and loads its best checkpoint."""
    strategy = strategy or tf.distribute.get_strategy()
    task: Task = experiment.task(params, data_dir, model_dir)
    task.prepare()
    best_dir = os.path.join(model_dir, "best")
    latest = tf.train.latest_checkpoint(best_dir)
    if latest is None:
        raise FileNotFoundError(f"no best checkpoint in {best_dir}: train the run first")
    with strategy.scope():
        model = _build_model(task)
    tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    return task, model
