"""The one training loop every paper in the suite runs on.

:func:`train` builds an experiment's :class:`~training.task.Task` under a ``tf.distribute``
strategy and runs it: distributed input pipelines (``distribute_datasets_from_function``),
several steps per ``tf.function`` call, the per-replica loss scaled to the global batch,
optional gradient clipping, the selection evaluation every epoch (or every N steps) with outputs
gathered from all replicas, early stopping on the dev metric, the best checkpoint kept,
TensorBoard summaries, a progress line, a PNG learning curve, a NaN/Inf guard, and at the end
the final evaluation of the best checkpoint on every evaluation split, the task's artefacts and
``results.json``.

Run safety (:mod:`training.run_dir`): a model dir holds one run. Its identity is checked on
every restart (a different setting is refused, key by key), a lock keeps a second process out,
and nothing in the dir is written before the restart has restored its state. Restoring falls
back to the newest checkpoint that restores cleanly, saying which ones it skipped and why. Only
checkpoints whose weights are all finite are written, so "the last good checkpoint" is one; a
run that diverges writes ``diverged.json`` and never overwrites a finished run's
``results.json``.

Resuming: the checkpoint holds the model, the optimiser (with its step), the random-seed states
and the data position (epoch and step within the epoch). The training order of an epoch is a
pure function of ``(seed, epoch)``, so a run killed at any point (even with SIGKILL) and
restarted skips the batches it has already seen and ends with the same weights as a run never
interrupted. Every worker of a multi-worker job restores from the chief's checkpoints.

Model dir layout::

    model_dir/
      config.json          the run's identity, command and extensions (training.run_dir)
      LOCK                 while a process trains in it
      checkpoints/         the latest checkpoints (resume)
      best/                the checkpoint with the best dev metric
      summaries/           TensorBoard: train/ and eval/
      history.json         one entry per evaluation
      learning_curve.png   train loss and dev metric per epoch
      results.json         the final metrics per split and the run's metadata
      diverged.json        only if the loss or the weights stopped being finite
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from training import curves, io, run_dir, strategies
from training.params import check_params
from training.progress import Progress
from training.task import RunEnv, Task, steps_per_epoch

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "keras_papers")


class TrainingDiverged(RuntimeError):
    """The training loss or the weights became NaN or Inf."""


def default_cache_dir() -> str:
    """``$KERAS_PAPERS_CACHE_DIR``, else ``~/.cache/keras_papers``."""
    return os.environ.get("KERAS_PAPERS_CACHE_DIR") or DEFAULT_CACHE_DIR


@dataclasses.dataclass
class RunConfig:
    """How a run is executed (the ``train.py`` flags that are not hyperparameters).

    The run's length, batch size, clipping and patience are hyperparameters (see
    :mod:`training.params`); which of these settings belong to a run's identity is said in
    :mod:`training.run_dir`.

    Args:
        model_dir: where checkpoints, summaries and results go (local or ``gs://``).
        data_dir: the raw datasets (``None``: the online source).
        cache_dir: shared work of several runs (image features); ``None``:
            :func:`default_cache_dir`.
        strategy, tpu, tpu_timeout, num_cpu_devices: see :mod:`training.strategies`.
        eval_every: evaluate every N steps (0: at the end of every epoch).
        steps_per_loop: training steps per ``tf.function`` call (fewer host round trips; TPU).
        checkpoint_every: also checkpoint every N steps between evaluations (0: only at evals).
        seed: seeds Python, NumPy, TensorFlow and Keras, and the data order.
        deterministic: enable TensorFlow op determinism.
        mixed_precision: float32, mixed_float16 (with loss scaling) or mixed_bfloat16.
        jit_compile: compile the train step with XLA.
        static_shapes: fixed-shape batches (implied on TPU).
        verbose: show a progress line and per-evaluation lines.
        extend: allow ``epochs`` / ``train_steps`` to grow on a run that exists.
        command: the command line, recorded in ``config.json``.
    """

    model_dir: str
    data_dir: str | None = None
    cache_dir: str | None = None
    strategy: str = "default"
    tpu: str | None = None
    tpu_timeout: float = 120.0
    num_cpu_devices: int = 1
    eval_every: int = 0
    steps_per_loop: int = 20
    checkpoint_every: int = 0
    seed: int = 0
    deterministic: bool = True
    mixed_precision: str = "float32"
    jit_compile: bool = False
    static_shapes: bool = False
    verbose: bool = True
    extend: bool = False
    command: str = ""

    def validate(self) -> None:
        """Raises ``ValueError`` naming the flag of the first invalid setting."""
        checks = [
            (bool(self.model_dir), "--model_dir is required"),
            (self.eval_every >= 0, f"--eval_every must be 0 (every epoch) or a number of "
                                   f"steps, got {self.eval_every}"),
            (self.steps_per_loop >= 1, f"--steps_per_loop must be at least 1, got "
                                       f"{self.steps_per_loop}"),
            (self.checkpoint_every >= 0, f"--checkpoint_every must be 0 or a number of steps,"
                                         f" got {self.checkpoint_every}"),
            (self.num_cpu_devices >= 1, f"--num_cpu_devices must be at least 1, got "
                                        f"{self.num_cpu_devices}"),
            (self.mixed_precision in PRECISIONS, f"unknown --mixed_precision="
                                                 f"{self.mixed_precision!r}; valid: "
                                                 f"{', '.join(PRECISIONS)}"),
            (self.strategy in strategies.STRATEGIES, f"unknown --strategy={self.strategy!r}; "
                                                     f"valid: {', '.join(strategies.STRATEGIES)}"),
            (math.isfinite(self.tpu_timeout) and self.tpu_timeout > 0,
             f"--tpu_timeout must be a positive number of seconds, got {self.tpu_timeout}"),
            (self.strategy != "tpu" or bool(self.tpu),
             "--strategy=tpu needs --tpu=ADDRESS (or --tpu=local on a TPU VM/Colab)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclasses.dataclass
class RunResult:
    results: dict[str, Any]
    model: keras.Model
    task: Task
    train_losses: list[tuple[int, float]]


def _progress_variables() -> dict[str, tf.Variable]:
    def var(value, dtype):
        return tf.Variable(value, dtype=dtype, trainable=False,
                           synchronization=tf.VariableSynchronization.ON_WRITE,
                           aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    return {"epoch": var(0, tf.int64), "step_in_epoch": var(0, tf.int64),
            "best_metric": var(float("nan"), tf.float64),
            "evals_since_best": var(0, tf.int64), "train_seconds": var(0.0, tf.float64)}


def build_model(task: Task, static_shapes: bool = False) -> keras.Model:
    """``task.build_model()``, called once on a dev batch if it has no weights yet; every
    weight must be in the model's checkpoint (:func:`check_checkpointed`)."""
    model = task.build_model()
    if not model.built:
        features, _, _ = next(iter(task.dataset("dev", batch_size=2, training=False, seed=0,
                                                static_shapes=static_shapes)))
        model(features, training=False)
    check_checkpointed(model)
    return model


def check_checkpointed(model: keras.Model) -> None:
    """Refuses a model whose weights ``tf.train.Checkpoint(model=model)`` would not save.

    Keras 3 does not hand TensorFlow's checkpoints the layers a model keeps in a Python list
    or dict: the best checkpoint (the model alone) would not hold their weights, so the final
    evaluation and ``evaluate.py`` would silently read other values there (a resumed run still
    finds the trainable ones through the optimiser's part of the loop's checkpoint).
    """
    checkpoint = tf.train.Checkpoint(model=model)  # the view holds only a weak reference
    reached = {id(trackable) for trackable in tf.train.TrackableView(checkpoint).descendants()}
    missing = [w.path for w in model.weights if id(w) not in reached]
    if missing:
        raise ValueError(f"{type(model).__name__}: {len(missing)} weights are not in its "
                         f"checkpoint ({', '.join(missing[:4])}, ...): a layer held only in a "
                         "list or dict attribute is not tracked; assign it to an attribute")


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


def _scratch_dir(config: RunConfig, strategy) -> str:
    """Where a non-chief worker writes its share of every (collective) save."""
    return os.path.join(config.model_dir, ".worker_tmp", str(strategies.worker_id(strategy)))


def _concat(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenates per-step outputs along the batch axis, zero-padding varying dimensions."""
    out = {}
    for key in chunks[0]:
        arrays = [c[key] for c in chunks]
        if arrays[0].ndim > 1:
            shape = np.max([a.shape[1:] for a in arrays], axis=0)
            arrays = [np.pad(a, [(0, 0)] + [(0, int(s - d)) for s, d in zip(shape, a.shape[1:])])
                      for a in arrays]
        out[key] = np.concatenate(arrays, axis=0)
    return out


def _common_shapes(outputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Pads each replica's outputs to the largest shape over the replicas (for ``gather``)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return outputs
    padded = {}
    for key, value in outputs.items():
        if value.shape.rank and value.shape.rank > 1 and not value.shape[1:].is_fully_defined():
            shape = tf.shape(value)[1:]
            largest = tf.reduce_max(ctx.all_gather(shape[tf.newaxis], axis=0), axis=0)
            value = tf.pad(value, tf.concat([[[0, 0]], tf.stack(
                [tf.zeros_like(shape), largest - shape], axis=1)], axis=0))
        padded[key] = value
    return padded


def _is_better(value: float, best: float, mode: str) -> bool:
    if math.isnan(best):
        return True
    return value > best if mode == "max" else value < best


def _format_metrics(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" if isinstance(v, int) or v is None else f"{k}={v:.4f}"
                     for k, v in metrics.items())


def _restore(checkpoint: tf.train.Checkpoint, directory: str, verbose: bool) -> str | None:
    """Restores the newest checkpoint in ``directory`` that restores cleanly.

    Returns its path, or ``None`` when there is none. Checkpoints that fail (a truncated or
    corrupt file) are skipped with a message naming them.

    Raises:
        run_dir.RunDirError: checkpoints exist and none restores.
    """
    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return None
    paths = list(reversed(state.all_model_checkpoint_paths))
    problems = []
    for path in paths:
        try:
            checkpoint.restore(path).assert_existing_objects_matched()
            return path
        except Exception as e:  # any failure means: not this one
            reason = " ".join(f"{type(e).__name__}: {e}".split())[:300]
            problems.append(f"{path}: {reason}")
            if verbose:
                print(f"skipping checkpoint {path}, it does not restore ({reason})", flush=True)
    raise run_dir.RunDirError(f"no checkpoint in {directory} restores:\n  "
                              + "\n  ".join(problems))


def _weights_finite(model: keras.Model):
    variables = [v.value if isinstance(v, keras.Variable) else v for v in model.weights]

    @tf.function
    def check():
        return tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in variables
                              if v.dtype.is_floating])

    return check


def train(experiment, params: dict, config: RunConfig,
          strategy: tf.distribute.Strategy | None = None) -> RunResult:
    """Trains ``experiment`` with ``params`` and returns its results (also in results.json).

    Raises:
        ValueError: an invalid setting (the message names it).
        run_dir.RunDirError: the model dir holds another run, is in use, or its checkpoints do
            not restore.
        TrainingDiverged: the loss or the weights became NaN or Inf.
    """
    config.validate()
    check_params(params, experiment.name)
    if strategy is None:
        strategy = strategies.get_strategy(config.strategy, tpu=config.tpu,
                                           num_cpu_devices=config.num_cpu_devices,
                                           timeout=config.tpu_timeout)
    lock = (run_dir.Lock(config.model_dir, config.command) if strategies.is_chief(strategy)
            else contextlib.nullcontext())
    with lock:
        return _train(experiment, params, config, strategy)


def _train(experiment, params: dict, config: RunConfig, strategy) -> RunResult:
    started = time.time()
    chief = strategies.is_chief(strategy)
    verbose = config.verbose and chief
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(config.mixed_precision)
    static = config.static_shapes or isinstance(strategy, tf.distribute.TPUStrategy)

    task: Task = experiment.make_task(params, config.data_dir, config.model_dir)
    identity = run_dir.identity(experiment.name, params, seed=config.seed,
                                mixed_precision=config.mixed_precision,
                                eval_every=config.eval_every, static_shapes=static,
                                data=task.data_identity())
    saved_config = run_dir.read_config(config.model_dir)
    state = run_dir.check(config.model_dir, saved_config, identity, extend=config.extend)
    chief_checkpoints = os.path.join(config.model_dir, "checkpoints")
    if state == "new" and tf.train.latest_checkpoint(chief_checkpoints):
        raise run_dir.RunDirError(f"{config.model_dir} holds checkpoints but no config.json; "
                                  "use another --model_dir")
    task.prepare(RunEnv(cache_dir=config.cache_dir or default_cache_dir(), is_chief=chief,
                        barrier=lambda: strategies.barrier(strategy)))
    # prepare() may draw random numbers (a frozen encoder built to fill a feature cache): seed
    # again, so the model starts from the same weights whether or not the cache was there.
    keras.utils.set_random_seed(config.seed)

    global_batch = int(params["batch_size"])
    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        raise ValueError(f"the global batch size {global_batch} is not divisible by the "
                         f"{replicas} replicas")
    per_replica = global_batch // replicas
    per_epoch = steps_per_epoch(task.num_examples("train"), global_batch)
    max_steps, epochs = int(params["train_steps"]), int(params["epochs"])
    clip_norm, patience = float(params["clip_norm"]) or None, int(params["patience"])
    total_steps = max_steps or epochs * per_epoch  # the horizon of learning-rate schedules

    with strategy.scope():
        model = build_model(task, static_shapes=static)
        optimizer = task.build_optimizer(total_steps)
        if config.mixed_precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
        progress = _progress_variables()

    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, rng=_rng_states(model),
                                     **progress)
    write_root = config.model_dir if chief else _scratch_dir(config, strategy)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(write_root, "checkpoints"),
                                         max_to_keep=2)
    best_checkpoint = tf.train.Checkpoint(model=model)
    best_manager = tf.train.CheckpointManager(best_checkpoint, os.path.join(write_root, "best"),
                                              max_to_keep=1)

    # Every worker restores from the chief's checkpoints; nothing is written before this.
    restored = _restore(checkpoint, chief_checkpoints, verbose=verbose)
    step = _read(optimizer.iterations)
    history_path = os.path.join(config.model_dir, "history.json")
    history: list[dict] = []
    if restored:
        if io.exists(history_path):
            history = [h for h in io.read_json(history_path) if h["step"] <= step]
        if verbose:
            print(f"resumed from {restored} at step {step} (epoch {_read(progress['epoch'])}, "
                  f"step {_read(progress['step_in_epoch'])} of it)", flush=True)
    if chief and state != "same":
        run_dir.write_config(config.model_dir, identity, command=config.command,
                             saved=saved_config, extended=state == "extend")
        if state == "extend" and verbose:
            print(f"extending the run to epochs={epochs}, train_steps={max_steps}", flush=True)

    writers = {}
    if chief:
        writers = {name: tf.summary.create_file_writer(
            os.path.join(config.model_dir, "summaries", name)) for name in ("train", "eval")}

    train_loop = make_train_loop(task, model, optimizer, strategy, global_batch=global_batch,
                                 clip_norm=clip_norm, jit_compile=config.jit_compile)
    evaluate = make_evaluator(task, model, strategy, per_replica_batch=per_replica,
                              seed=config.seed, static_shapes=static)
    weights_finite = _weights_finite(model)

    def train_dataset(epoch: int, skip_steps: int):
        def dataset_fn(ctx):
            ds = task.dataset("train", batch_size=per_replica, training=True, seed=config.seed,
                              epoch=epoch, input_context=ctx, static_shapes=static)
            per_pipeline = ctx.num_replicas_in_sync // ctx.num_input_pipelines
            return ds.skip(skip_steps * per_pipeline) if skip_steps else ds

        return strategy.distribute_datasets_from_function(dataset_fn)

    def diverged(what: str, first: int, last: int):
        message = (f"{experiment.name}: {what} in steps {first}-{last} (epoch "
                   f"{epoch + 1}). Training stopped; the last good checkpoint is "
                   f"{manager.latest_checkpoint or 'none'}. Try a lower learning rate or "
                   f"--clip_norm.")
        if chief:
            io.atomic_write_json(os.path.join(config.model_dir, "diverged.json"), {
                "experiment": experiment.name, "status": "diverged", "message": message,
                "step": last, "identity": identity,
                "last_good_checkpoint": manager.latest_checkpoint})
        raise TrainingDiverged(message)

    def save(number: int):
        if not bool(weights_finite()):
            diverged("the weights stopped being finite", number, number)
        manager.save(checkpoint_number=number)

    def save_history():
        if chief:
            io.atomic_write_json(history_path, history)
            curves.plot_learning_curve(
                history, os.path.join(config.model_dir, "learning_curve.png"),
                title=f"{experiment.name} (seed {config.seed})", metric=task.metric)

    def finished(step: int, epoch: int) -> bool:
        return step >= max_steps if max_steps else epoch >= epochs

    train_losses: list[tuple[int, float]] = []
    last_dev = None  # (step, gathered outputs) of this process's latest selection evaluation
    # A run that had already stopped early and is started again does not train further.
    stopped_early = bool(patience and _read(progress["evals_since_best"]) >= patience)
    last_eval = history[-1]["step"] if history else -1
    segment_start = time.time()
    epoch, in_epoch = _read(progress["epoch"]), _read(progress["step_in_epoch"])
    while not finished(step, epoch) and not stopped_early:
        iterator = iter(train_dataset(epoch, in_epoch))
        target = min(per_epoch, in_epoch + max_steps - step) if max_steps else per_epoch
        label = (f"step {step}" if max_steps else f"epoch {epoch + 1}/{epochs}")
        bar = Progress(target, label, enabled=verbose)
        bar.update(in_epoch)
        while True:
            limits = [config.steps_per_loop]
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
                    bar.close()
                    diverged(f"the training loss became {loss}", step + 1, step + done)
                step += done
                in_epoch += done
                train_losses.append((step, loss))
                bar.update(min(in_epoch, target), loss=loss)
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
                bar.close()
                last_eval = step
                eval_start = time.time()
                dev, dev_outputs = evaluate("dev")
                last_dev = (step, dev_outputs)
                value = dev[task.metric]
                if not bool(weights_finite()):
                    diverged("the weights stopped being finite", step, step)
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
                            if isinstance(val, (int, float)):
                                tf.summary.scalar(f"dev/{key}", val)
                if verbose:
                    print(f"  step {step} (epoch {position:.2f}): dev {_format_metrics(dev)}",
                          flush=True)
                save_history()
                save(step)
                segment_start += time.time() - eval_start
                if patience and _read(progress["evals_since_best"]) >= patience:
                    stopped_early = True
                    if verbose:
                        print(f"early stopping: no better dev {task.metric} in {patience} "
                              "evaluations", flush=True)
                    break
            elif epoch_done or (config.checkpoint_every and done and
                                step % config.checkpoint_every == 0):
                save(step)
            if epoch_done or finished(step, epoch):
                break
        bar.close()

    # Every worker restores the best weights from the chief's directory: wait until the chief's
    # last save is on disk, or a worker ahead of it reads an older best checkpoint.
    strategies.barrier(strategy)
    best = tf.train.latest_checkpoint(os.path.join(config.model_dir, "best"))
    if best:
        best_checkpoint.restore(best).expect_partial()
    # The best weights are those the last selection evaluation just ran on dev: when the final
    # evaluation runs the same step, its dev outputs are those, already gathered.
    reuse_dev = (last_dev is not None and best is not None and uses_selection_step_for_final(task)
                 and last_dev[0] == int(best.rsplit("-", 1)[-1]))
    metrics, artifacts = {}, []
    for split in task.eval_splits:
        if reuse_dev and split == "dev":
            outputs = last_dev[1]
            metrics[split] = task.compute_final_metrics(outputs, split)
        else:
            metrics[split], outputs = evaluate(split, final=True)
        if chief:
            artifacts += task.write_artifacts(model, split, outputs, config.model_dir)
    best_entry = max(history, key=lambda h: h["dev"][task.metric] *
                     (1 if task.metric_mode == "max" else -1)) if history else None
    train_seconds = _read(progress["train_seconds"])
    results = {
        "experiment": experiment.name,
        "paper": experiment.paper,
        "status": "ok",
        "metric": task.metric,
        "params": params,
        "identity": identity,
        "config": dataclasses.asdict(config),
        "metrics": metrics,
        "artifacts": artifacts,
        "best": {"step": best_entry["step"], "epoch": best_entry["epoch"]} if best_entry else None,
        "steps": step,
        "epochs": epoch + in_epoch / per_epoch,
        "stopped_early": stopped_early,
        "global_batch_size": global_batch,
        "train_seconds": train_seconds,
        "wall_seconds": time.time() - started,
        # over all of the run's training segments (a resumed run included), evaluation excluded
        "examples_per_second": (step * global_batch / train_seconds
                                if step and train_seconds > 0 else None),
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
        scratch = _scratch_dir(config, strategy)
        if tf.io.gfile.exists(scratch):
            tf.io.gfile.rmtree(scratch)
    return RunResult(results=results, model=model, task=task, train_losses=train_losses)


def _current_lr(optimizer) -> float:
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    try:
        return float(keras.ops.convert_to_numpy(inner._get_current_learning_rate()))
    except (AttributeError, TypeError, ValueError):
        return float(keras.ops.convert_to_numpy(inner.learning_rate))


def make_train_loop(task: Task, model: keras.Model, optimizer, strategy: tf.distribute.Strategy,
                    *, global_batch: int, clip_norm: float | None, jit_compile: bool = False):
    """Returns ``train_loop(iterator, num_steps) -> (loss sum, steps taken)``.

    One ``tf.function`` call takes up to ``num_steps`` (a scalar tensor) steps of the task's
    ``train_step`` from a distributed iterator, fewer when the data ends; with ``jit_compile``
    each step (the optimiser's update included) is compiled with XLA. ``bench/`` times this
    same function.
    """

    def train_step(inputs):
        return task.train_step(inputs, model, optimizer, global_batch_size=global_batch,
                               clip_norm=clip_norm)

    step_fn = tf.function(train_step, jit_compile=True) if jit_compile else train_step

    @tf.function
    def train_loop(iterator, num_steps):
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

    return train_loop


def uses_selection_step_for_final(task: Task) -> bool:
    """Whether the task's final evaluation runs its selection step (the default)."""
    return getattr(type(task).final_eval_step, "__code__", None) is \
        Task.final_eval_step.__code__


def make_evaluator(task: Task, model: keras.Model, strategy: tf.distribute.Strategy, *,
                   per_replica_batch: int, seed: int = 0, static_shapes: bool = False):
    """Returns ``evaluate(split, final=False) -> (metrics, outputs)``.

    Runs the task's selection evaluation (or, with ``final``, its final evaluation) over every
    batch of the split on all replicas, gathers the per-example outputs in the split's order
    (see :mod:`training.task`) and computes the metrics over the whole split.

    Each step is traced once, for the pipeline's element spec (batches are as long as their
    longest example: the lengths are left unknown), and a final evaluation that runs the
    selection step reuses the selection's traced function.
    """
    traced = {}

    def eval_fn(step, inputs, spec):
        key = (step.__func__, str(spec))
        if key not in traced:
            @tf.function(input_signature=[spec])
            def run(inputs):
                out = strategy.run(lambda batch: _common_shapes(step(batch, model)),
                                   args=(inputs,))
                return {k: strategy.gather(v, axis=0) for k, v in out.items()}

            traced[key] = run
        return traced[key](inputs)

    def evaluate(split: str, final: bool = False
                 ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        step = (task.final_eval_step if final and not uses_selection_step_for_final(task)
                else task.eval_step)
        compute = task.compute_final_metrics if final else task.compute_metrics

        def dataset_fn(ctx):
            return task.dataset(split, batch_size=per_replica_batch, training=False, seed=seed,
                                input_context=ctx, static_shapes=static_shapes)

        batches = strategy.distribute_datasets_from_function(dataset_fn)
        chunks = [{k: v.numpy() for k, v in eval_fn(step, batch, batches.element_spec).items()}
                  for batch in batches]
        outputs = _concat(chunks)
        return compute(outputs, split), outputs

    return evaluate


def restore_best(experiment, params: dict, model_dir: str, data_dir: str | None,
                 strategy: tf.distribute.Strategy | None = None,
                 cache_dir: str | None = None) -> tuple[Task, keras.Model]:
    """Rebuilds the task and model of a finished run and loads its best checkpoint."""
    strategy = strategy or tf.distribute.get_strategy()
    best_dir = os.path.join(model_dir, "best")
    latest = tf.train.latest_checkpoint(best_dir)
    if latest is None:
        raise run_dir.RunDirError(f"no best checkpoint in {best_dir}: train the run first")
    task: Task = experiment.make_task(params, data_dir, model_dir)
    task.prepare(RunEnv(cache_dir=cache_dir or default_cache_dir()))
    with strategy.scope():
        model = build_model(task)
    try:
        tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    except Exception as e:
        raise run_dir.RunDirError(f"the best checkpoint {latest} does not restore: "
                                  f"{type(e).__name__}: {e}") from None
    return task, model
