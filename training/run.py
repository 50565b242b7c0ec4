"""A run's setup and its records: everything before the first step and after the last.

:func:`start` sets up a run in its model dir, in this order (the order matters: it decides the
random numbers a run draws, and a run resumed by a later version of the suite must draw the
same ones):

1. seeds (Python, NumPy, TensorFlow, Keras), Grappler's ``AddN`` scheduling off
   (:mod:`training.grappler`), op determinism and the precision policy;
2. the task, and the run's identity checked against ``config.json`` (:mod:`training.run_dir`);
3. the task's preparation (vocabulary, cached features), then the seeds again, so the model
   starts from the same weights whether or not a cache was filled;
4. in the strategy's scope: the model, the optimiser (with loss scaling for ``mixed_float16``)
   and the progress variables; then the checkpoints (:mod:`training.checkpoints`);
5. the newest good checkpoint restored; only then is anything written: ``config.json``, the
   TensorBoard writers.

While the run trains, :class:`Run` writes its records: the training loss and learning rate
(TensorBoard ``train/``), each selection evaluation (``eval/``, ``history.json``,
``learning_curve.png``), ``diverged.json`` when the loss or the weights stop being finite
(:meth:`Run.diverged`), and at the end ``results.json`` (:meth:`Run.write_results`). Only the
chief writes; every other worker writes its share of each checkpoint into a scratch folder,
removed at the end.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from datasets.batching import DataRequest
from datasets.errors import UserError
from training import checkpoints, curves, grappler, io, run_dir, strategies
from training.schedule import Schedule
from training.selection import Selection
from training.settings import RunConfig, default_cache_dir
from training.task import RunEnv, Task, steps_per_epoch


class TrainingDiverged(UserError, RuntimeError):
    """The training loss or the weights became NaN or Inf."""

    verb = "stopped"
    exit_status = 1


class NoBestCheckpoint(run_dir.RunDirError):
    """The run has no best checkpoint yet (it has not been evaluated once)."""


@dataclasses.dataclass
class RunResult:
    results: dict[str, Any]
    model: keras.Model
    task: Task
    train_losses: list[tuple[int, float]]
    #: the run had finished before this call: ``results`` are its ``results.json``, nothing
    #: was trained or evaluated (``model`` and ``task`` are ``None``)
    finished_before: bool = False


#: The shapes and dtypes of a model's input, for a model built by its first call: written into
#: the model dir when a run starts, read to build the model for prediction without the data.
MODEL_INPUTS = "model_inputs.json"


def build_model(task: Task, static_shapes: bool = False, inputs: dict | None = None
                ) -> keras.Model:
    """``task.build_model()``, called once if it has no weights yet: on a dev batch (whose
    shapes and dtypes are kept in ``task.model_inputs``), or on ones of the ``inputs`` recorded
    in :data:`MODEL_INPUTS`. Every weight must be in the model's checkpoint
    (:func:`training.checkpoints.check_checkpointed`)."""
    model = task.build_model()
    if not model.built:
        if inputs is None:
            request = DataRequest("dev", batch_size=2, static_shapes=static_shapes)
            features, _, _ = next(iter(task.dataset(request)))
            task.model_inputs = {"features": tf.nest.map_structure(
                lambda t: [t.dtype.name, t.shape.as_list()], features)}
        else:
            features = _ones_like_spec(inputs["features"])
        model(features, training=False)
    checkpoints.check_checkpointed(model)
    return model


def _ones_like_spec(spec):
    if isinstance(spec, dict):
        return {k: _ones_like_spec(v) for k, v in spec.items()}
    dtype, shape = spec
    return tf.ones(shape, tf.as_dtype(dtype))


def current_learning_rate(optimizer) -> float:
    """The learning rate of the optimiser's next step (its schedule at ``iterations``)."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


@dataclasses.dataclass
class Run:
    """A run set up by :func:`start`: its settings, task, model and records."""

    experiment: Any
    params: dict
    config: RunConfig
    strategy: tf.distribute.Strategy
    task: Task
    identity: dict
    schedule: Schedule
    static_shapes: bool
    model: keras.Model = None
    optimizer: Any = None
    progress: dict[str, tf.Variable] = None
    manager: tf.train.CheckpointManager = None
    best_manager: tf.train.CheckpointManager = None
    history: list[dict] = dataclasses.field(default_factory=list)
    writers: dict[str, Any] = dataclasses.field(default_factory=dict)
    started: float = dataclasses.field(default_factory=time.time)

    @property
    def chief(self) -> bool:
        return strategies.is_chief(self.strategy)

    @property
    def verbose(self) -> bool:
        return self.config.verbose and self.chief

    @property
    def global_batch(self) -> int:
        return int(self.params["batch_size"])

    @property
    def per_replica_batch(self) -> int:
        return self.global_batch // self.strategy.num_replicas_in_sync

    @property
    def clip_norm(self) -> float | None:
        return float(self.params["clip_norm"]) or None

    @property
    def step(self) -> int:
        return checkpoints.read(self.optimizer.iterations)

    def path(self, name: str) -> str:
        return os.path.join(self.config.model_dir, name)

    def selection(self) -> Selection:
        """Best checkpoint and early stopping on the task's metric."""
        return Selection(self.task.metric, self.task.metric_mode, int(self.params["patience"]),
                         best_value=self.progress["best_metric"],
                         evals_since_best=self.progress["evals_since_best"],
                         save_best=lambda step: checkpoints.save(self.best_manager, step))

    # ------------------------------------------------------------------------ records
    def log_train(self, step: int, loss: float) -> None:
        if self.chief:
            with self.writers["train"].as_default(step=step):
                tf.summary.scalar("loss", loss)
                tf.summary.scalar("learning_rate", current_learning_rate(self.optimizer))

    def log_evaluation(self, entry: dict) -> None:
        """Records a selection evaluation: TensorBoard, ``history.json``, the curve."""
        self.history.append(entry)
        if not self.chief:
            return
        with self.writers["eval"].as_default(step=entry["step"]):
            for key, value in entry["dev"].items():
                if isinstance(value, (int, float)):
                    tf.summary.scalar(f"dev/{key}", value)
        io.atomic_write_json(self.path("history.json"), self.history)
        curves.plot_learning_curve(
            self.history, self.path("learning_curve.png"),
            title=f"{self.experiment.name} (seed {self.config.seed})", metric=self.task.metric,
            mode=self.task.metric_mode)

    def diverged(self, what: str, first: int, last: int, epoch: int):
        """Records that training diverged (``diverged.json``) and raises
        :class:`TrainingDiverged` naming the last good checkpoint."""
        latest = self.manager.latest_checkpoint
        message = (f"{self.experiment.name}: {what} in steps {first}-{last} (epoch "
                   f"{epoch + 1}). Training stopped; the last good checkpoint is "
                   f"{latest or 'none'}. Try a lower learning rate or --clip_norm.")
        if self.chief:
            io.atomic_write_json(self.path("diverged.json"), {
                "experiment": self.experiment.name, "status": "diverged", "message": message,
                "step": last, "identity": self.identity, "last_good_checkpoint": latest})
            finished = run_dir.revert_diverged_extension(self.config.model_dir, message)
            if finished is not None:
                length = ", ".join(f"{k}={finished['params'][k]}" for k in ("epochs",
                                                                            "train_steps"))
                message += (f" The run this extended stands: config.json is back at its "
                            f"length ({length}), and its command shows its results.")
        raise TrainingDiverged(message)

    def results(self, *, metrics: dict, artifacts: list[str], best: dict | None, step: int,
                epochs: float, stopped_early: bool) -> dict[str, Any]:
        """The contents of ``results.json``."""
        train_seconds = checkpoints.read(self.progress["train_seconds"])
        return {
            "experiment": self.experiment.name,
            "paper": self.experiment.paper,
            "status": "ok",
            "metric": self.task.metric,
            "params": self.params,
            "identity": self.identity,
            "config": dataclasses.asdict(self.config),
            "metrics": metrics,
            "artifacts": artifacts,
            "best": {"step": best["step"], "epoch": best["epoch"]} if best else None,
            "steps": step,
            "epochs": epochs,
            "stopped_early": stopped_early,
            "global_batch_size": self.global_batch,
            "train_seconds": train_seconds,
            "wall_seconds": time.time() - self.started,
            # over all of the run's training segments (a resumed run included), evaluation
            # excluded
            "examples_per_second": (step * self.global_batch / train_seconds
                                    if step and train_seconds > 0 else None),
            "hardware": io.hardware(self.strategy),
            "versions": io.package_versions(),
            "git_commit": io.git_commit(),
            "reported": [dataclasses.asdict(r) for r in self.experiment.reported],
        }

    def write_results(self, results: dict[str, Any]) -> None:
        """Writes ``results.json`` (the chief) or removes this worker's scratch folder; with
        ``--keep_checkpoints=0`` the chief then removes the run's latest checkpoints."""
        if self.chief:
            try:
                io.atomic_write_json(self.path("results.json"), results)
            except OSError as e:
                raise run_dir.RunDirError(
                    f"could not write {self.path('results.json')} ({e.strerror or e}); the "
                    "checkpoints are kept: free space and run the same command again to "
                    "evaluate and write it") from None
            for writer in self.writers.values():
                writer.flush()
            if self.config.keep_checkpoints == 0 and tf.io.gfile.exists(
                    self.path(checkpoints.LATEST)):
                tf.io.gfile.rmtree(self.path(checkpoints.LATEST))
            return
        scratch = checkpoints.scratch_dir(self.config.model_dir, self.strategy)
        if tf.io.gfile.exists(scratch):
            tf.io.gfile.rmtree(scratch)


# ---------------------------------------------------------------------------------- setup
def start(experiment, params: dict, config: RunConfig,
          strategy: tf.distribute.Strategy) -> Run:
    """Sets up a run (see the module docstring for the order) and restores its state."""
    started = time.time()
    _seed(config)
    run, saved_config, state = _task_and_identity(experiment, params, config, strategy)
    run.started = started
    run.task.prepare(RunEnv(cache_dir=config.cache_dir or default_cache_dir(),
                            is_chief=run.chief, barrier=lambda: strategies.barrier(strategy)))
    # prepare() may draw random numbers (a frozen encoder built to fill a feature cache): seed
    # again, so the model starts from the same weights whether or not the cache was there.
    keras.utils.set_random_seed(config.seed)
    _build(run)
    checkpoint = checkpoints.run_checkpoint(run.model, run.optimizer, run.progress)
    root = checkpoints.write_root(config.model_dir, strategy)
    run.manager, run.best_manager = checkpoints.managers(checkpoint, run.model, root,
                                                         keep=max(1, config.keep_checkpoints))
    # Every worker restores from the chief's checkpoints; nothing is written before this.
    _restore(run, checkpoint)
    if run.chief and state != "same":
        run_dir.write_config(config.model_dir, run.identity, command=config.command,
                             saved=saved_config, extended=state == "extend")
        if state == "extend" and run.verbose:
            print(f"extending the run to epochs={run.schedule.epochs}, "
                  f"train_steps={run.schedule.train_steps}", flush=True)
    if run.chief:
        run.writers = {name: tf.summary.create_file_writer(run.path(f"summaries/{name}"))
                       for name in ("train", "eval")}
        inputs = getattr(run.task, "model_inputs", None)
        if inputs is not None and not io.exists(run.path(MODEL_INPUTS)):
            io.atomic_write_json(run.path(MODEL_INPUTS), inputs)
    return run


def _seed(config: RunConfig) -> None:
    set_up_process(config.seed, deterministic=config.deterministic,
                   mixed_precision=config.mixed_precision)


def set_up_process(seed: int, *, deterministic: bool, mixed_precision: str) -> None:
    """Step 1 of :func:`start`: the seeds, Grappler's ``AddN`` scheduling off, op determinism
    and the precision policy; also what ``bench/`` calls to step a model as a run does."""
    keras.utils.set_random_seed(seed)
    grappler.disable_addn_scheduling()
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(mixed_precision)


def _task_and_identity(experiment, params: dict, config: RunConfig, strategy
                       ) -> tuple[Run, dict | None, str]:
    """The task, and the run's identity checked against the model dir's."""
    static = config.static_shapes or isinstance(strategy, tf.distribute.TPUStrategy)
    task: Task = experiment.make_task(params, config.data_dir, config.model_dir)
    identity = run_dir.identity(experiment.name, params, seed=config.seed,
                                mixed_precision=config.mixed_precision,
                                eval_every=config.eval_every, static_shapes=static,
                                data=task.data_identity())
    saved_config = run_dir.read_config(config.model_dir)
    state = run_dir.check(config.model_dir, saved_config, identity, extend=config.extend)
    if state == "new" and tf.train.latest_checkpoint(os.path.join(config.model_dir,
                                                                  checkpoints.LATEST)):
        raise run_dir.RunDirError(f"{config.model_dir} holds checkpoints but no config.json; "
                                  "use another --model_dir")
    schedule = Schedule(steps_per_epoch=1, epochs=int(params["epochs"]),
                        train_steps=int(params["train_steps"]), eval_every=config.eval_every,
                        checkpoint_every=config.checkpoint_every,
                        steps_per_loop=config.steps_per_loop)
    run = Run(experiment=experiment, params=params, config=config, strategy=strategy,
              task=task, identity=identity, schedule=schedule, static_shapes=static)
    return run, saved_config, state


def _build(run: Run) -> None:
    """The model, optimiser and progress variables, in the strategy's scope."""
    replicas = run.strategy.num_replicas_in_sync
    if run.global_batch % replicas:
        raise ValueError(f"the global batch size {run.global_batch} is not divisible by the "
                         f"{replicas} replicas")
    per_epoch = steps_per_epoch(run.task.num_examples("train"), run.global_batch)
    run.schedule = dataclasses.replace(run.schedule, steps_per_epoch=per_epoch)
    with run.strategy.scope():
        run.model = build_model(run.task, static_shapes=run.static_shapes)
        # the horizon of learning-rate schedules
        optimizer = run.task.build_optimizer(run.schedule.total_steps)
        if run.config.mixed_precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(run.model.trainable_variables)
        run.optimizer = optimizer
        run.progress = checkpoints.progress_variables()


def _restore(run: Run, checkpoint: tf.train.Checkpoint) -> None:
    """Restores the newest good checkpoint of the chief, and the history up to its step."""
    restored = checkpoints.restore_newest(checkpoint, run.path(checkpoints.LATEST),
                                          verbose=run.verbose)
    if not restored and io.exists(run.path("results.json")):
        raise run_dir.RunDirError(
            f"{run.config.model_dir} holds a finished run whose checkpoints were removed "
            "(--keep_checkpoints=0): it cannot be trained on or evaluated again by train.py "
            "(evaluate.py reads its best/); use a new --model_dir")
    if not restored:
        return
    step = run.step
    if io.exists(run.path("history.json")):
        run.history = [h for h in io.read_json(run.path("history.json")) if h["step"] <= step]
    if run.verbose:
        print(f"resumed from {restored} at step {step} (epoch "
              f"{checkpoints.read(run.progress['epoch'])}, step "
              f"{checkpoints.read(run.progress['step_in_epoch'])} of it)", flush=True)


def mean_since(losses: list[tuple[int, float]], step: int) -> float | None:
    """The mean of the training losses recorded after ``step`` (``None``: none)."""
    recent = [loss for s, loss in losses if s > step]
    return float(np.mean(recent)) if recent else None


def restore_best(experiment, params: dict, model_dir: str, data_dir: str | None,
                 strategy: tf.distribute.Strategy | None = None,
                 cache_dir: str | None = None, task: Task | None = None,
                 read_data: bool = True) -> tuple[Task, keras.Model]:
    """Rebuilds the task (or takes ``task``, made but not prepared) and model of a finished
    run and loads its best checkpoint.

    Without ``read_data`` (prediction, export) the task and the model are built from what the
    model dir holds (:class:`~training.task.RunEnv`, :data:`MODEL_INPUTS`), and no dataset is
    read; a run dir written before it held those files falls back on the data.
    """
    strategy = strategy or tf.distribute.get_strategy()
    best_dir = os.path.join(model_dir, checkpoints.BEST)
    if tf.train.latest_checkpoint(best_dir) is None:
        raise NoBestCheckpoint(f"no best checkpoint in {best_dir}: train the run first")
    task = task or experiment.make_task(params, data_dir, model_dir)
    task.prepare(RunEnv(cache_dir=cache_dir or default_cache_dir(), read_data=read_data))
    recorded = os.path.join(model_dir, MODEL_INPUTS)
    inputs = io.read_json(recorded) if not read_data and io.exists(recorded) else None
    with strategy.scope():
        model = build_model(task, inputs=inputs)
    if checkpoints.load_best(model, model_dir) is None:
        raise NoBestCheckpoint(f"no best checkpoint in {best_dir}: train the run first")
    return task, model
