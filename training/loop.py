"""The one training loop every paper in the suite runs on, in parts a reader can hold.

:func:`train` runs an experiment's :class:`~training.task.Task` under a ``tf.distribute``
strategy. The parts, in the order a run meets them:

1. **Settings** (:mod:`training.settings`): how the run is executed (:class:`RunConfig`), each
   setting declared once, with whether it may change when the run resumes. The
   hyperparameters (batch size, length, clipping, patience included) come from the experiment.
2. **Setup** (:func:`training.run.start`): seeds and precision, the task, the run's identity
   checked against the model dir (:mod:`training.run_dir`), the task's preparation, the model
   and optimiser, the checkpoints (:mod:`training.checkpoints`) and the newest good one
   restored, before anything is written.
3. **Training** (:class:`Training`, below): epochs of calls of the training function
   (:func:`training.distribute.make_train_loop`: several steps per ``tf.function`` call, the
   per-replica loss scaled to the global batch, the global-batch gradient clipped), with the
   **schedule** (:mod:`training.schedule`) saying how many steps each call takes and when to
   evaluate, checkpoint and stop. A loss or weights that stop being finite stop the run
   (``diverged.json``), and only finite weights are checkpointed.
4. **Selection** (:mod:`training.selection`): after each selection evaluation on dev
   (:func:`training.evaluation.make_evaluator`, outputs gathered from every replica and worker),
   the best checkpoint and early stopping.
5. **Final evaluation** (:func:`training.evaluation.final_evaluation`): the best checkpoint on
   every evaluation split, by the paper's protocol (beam search, corpus-level metrics), and the
   task's pictures. A run that had finished before this call is not evaluated again (its
   ``results.json`` is returned as it is) unless ``--reevaluate`` or ``--extend``.
6. **Results** (:meth:`training.run.Run.write_results`): ``results.json``, written atomically,
   never over a finished run's when an extension diverges.

Resuming: the checkpoint holds the model, the optimiser (with its step), the random-seed states
and the data position (epoch and step within the epoch). The training order of an epoch is a
pure function of ``(seed, epoch)``, so a run killed at any point (even with SIGKILL) and
restarted skips the batches it has already seen and ends with the same weights as a run never
interrupted, and with the same ``history.json`` (the training losses since the last evaluation
are recorded beside each checkpoint). Every worker of a multi-worker job restores from the
chief's checkpoints. A lock keeps a second process out of a model dir
(:class:`training.run_dir.Lock`). SIGTERM and Ctrl-C stop a run after a checkpoint at the step
it reached (:mod:`training.preemption`).

Model dir layout::

    model_dir/
      config.json          the run's identity, command and extensions (training.run_dir)
      LOCK                 while a process trains in it
      checkpoints/         the latest checkpoints (resume), and recent_losses.json: the
                           training losses since the last evaluation, per checkpoint
      best/                the checkpoint with the best dev metric
      summaries/           TensorBoard: train/ and eval/
      history.json         one entry per evaluation
      learning_curve.png   train loss and dev metric per epoch
      results.json         the final metrics per split and the run's metadata
      model_inputs.json    the shapes and dtypes the model is built on (prediction without data)
      diverged.json        only if the loss or the weights stopped being finite
"""

from __future__ import annotations

import contextlib
import math
import os
import time

import tensorflow as tf

from datasets.batching import DataRequest
from training import checkpoints, distribute, evaluation, io, run_dir, strategies
from training.distribute import make_train_loop
from training.evaluation import make_evaluator
from training.params import check_params
from training.preemption import Preempted, Preemption
from training.progress import Progress
from training.checkpoints import check_checkpointed
from training.run import (Run, RunResult, TrainingDiverged, build_model, mean_since,
                          restore_best, start)
from training.settings import RunConfig, default_cache_dir

__all__ = ["Preempted", "RunConfig", "RunResult", "Training", "TrainingDiverged", "build_model",
           "check_checkpointed",
           "default_cache_dir", "make_evaluator", "make_train_loop", "restore_best", "train"]


def train(experiment, params: dict, config: RunConfig,
          strategy: tf.distribute.Strategy | None = None) -> RunResult:
    """Trains ``experiment`` with ``params`` and returns its results (also in results.json).

    Raises:
        ValueError: an invalid setting (the message names it).
        run_dir.RunDirError: the model dir holds another run, is in use, or its checkpoints do
            not restore.
        TrainingDiverged: the loss or the weights became NaN or Inf.
        Preempted: SIGTERM or SIGINT stopped the run (after a checkpoint at the current step
            while it trains; :mod:`training.preemption`).
    """
    config.validate()
    check_params(params, experiment.name)
    if strategy is None:
        strategy = strategies.get_strategy(config.strategy, tpu=config.tpu,
                                           num_cpu_devices=config.num_cpu_devices,
                                           timeout=config.tpu_timeout)
    if not (config.reevaluate or config.extend):
        results = finished_results(experiment, params, config, strategy)
        if results is not None:
            return RunResult(results=results, model=None, task=None, train_losses=[],
                             finished_before=True)
    chief = strategies.is_chief(strategy)
    created = _missing_folders(config.model_dir) if chief else []
    lock = run_dir.Lock(config.model_dir, config.command) if chief else contextlib.nullcontext()
    try:
        with Preemption() as stop, lock:
            run = start(experiment, params, config, strategy)
            stop.position = lambda: (run.step, run.manager.latest_checkpoint)
            training = Training(run, stop)
            training.train()
            return finish(run, training)
    except BaseException:
        # A run that failed before writing anything (its data not found, a bad setting)
        # leaves no folder behind: the ones the lock created are removed while empty.
        for folder in created:
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        raise


def _missing_folders(model_dir: str) -> list[str]:
    """The local folders of ``model_dir`` that do not exist yet, deepest first."""
    missing = []
    folder = os.path.abspath(model_dir)
    while not io.is_remote(model_dir) and not os.path.exists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    return missing


def finished_results(experiment, params: dict, config: RunConfig,
                     strategy: tf.distribute.Strategy) -> dict | None:
    """The ``results.json`` of ``config.model_dir`` when it holds this run, finished; read
    without the data (see :func:`training.run_dir.finished_results`)."""
    static = config.static_shapes or isinstance(strategy, tf.distribute.TPUStrategy)
    new = run_dir.identity(experiment.name, params, seed=config.seed,
                           mixed_precision=config.mixed_precision, eval_every=config.eval_every,
                           static_shapes=static, data={})
    return run_dir.finished_results(config.model_dir, run_dir.read_config(config.model_dir),
                                    new)


class Training:
    """The training phase of a run: epochs of training calls, each followed by the evaluation
    or checkpoint the schedule says is due, until the run ends or stops early.

    The data position (``epoch``, ``in_epoch``) and the training time are written to the
    checkpoint's progress variables after every call, so any checkpoint resumes exactly. A stop
    requested by a signal (``stop``, :mod:`training.preemption`) is acted on after the call
    (and the evaluation) in progress: a checkpoint at the current step, then
    :class:`~training.preemption.Preempted`.
    """

    def __init__(self, run: Run, stop: Preemption | None = None):
        self.run = run
        self.stop = stop or Preemption()
        # The progress line follows each step from the host (not on a TPU: no host calls
        # inside its loop; there --steps_per_loop sets how often the line moves).
        stepwise = run.verbose and not isinstance(run.strategy, tf.distribute.TPUStrategy)
        self.train_loop = make_train_loop(run.task, run.model, run.optimizer, run.strategy,
                                          global_batch=run.global_batch,
                                          clip_norm=run.clip_norm,
                                          jit_compile=run.config.jit_compile,
                                          on_step=self._on_step if stepwise else None)
        self.evaluate = make_evaluator(run.task, run.model, run.strategy,
                                       per_replica_batch=run.per_replica_batch,
                                       seed=run.config.seed, static_shapes=run.static_shapes,
                                       verbose=run.verbose)
        #: the progress line of the epoch in training, and the loss of the last call
        self.bar: Progress | None = None
        self.last_loss: float | None = None
        self.weights_finite = checkpoints.weights_finite(run.model)
        self.selection = run.selection()
        #: (step, mean loss) of every call this process ran
        self.losses: list[tuple[int, float]] = []
        #: the calls since the last evaluation before the run resumed (history's train_loss)
        self.carried = checkpoints.read_recent_losses(run.path(checkpoints.LATEST), run.step)
        #: (step, gathered dev outputs) of this process's latest selection evaluation
        self.last_selection: tuple[int, dict] | None = None
        # A run that had already stopped early and is started again does not train further.
        self.stopped_early = self.selection.stopped
        self.last_eval = run.history[-1]["step"] if run.history else -1
        self.segment_start = time.time()
        self.step = run.step
        self.epoch = checkpoints.read(run.progress["epoch"])
        self.in_epoch = checkpoints.read(run.progress["step_in_epoch"])

    @property
    def position(self) -> float:
        """Epochs trained, fractional within an epoch."""
        return self.epoch + self.in_epoch / self.run.schedule.steps_per_epoch

    def train(self) -> None:
        """Trains until the schedule's end, an early stop, or a stop requested by a signal."""
        self.stop.deferred = True
        try:
            while (not self.run.schedule.finished(self.step, self.epoch)
                   and not self.stopped_early):
                self._train_epoch()
        finally:
            self.stop.deferred = False

    def _train_epoch(self) -> None:
        """The rest of the current epoch (all of it, unless the run ends or stops in it)."""
        run, schedule = self.run, self.run.schedule
        request = DataRequest("train", batch_size=run.per_replica_batch, training=True,
                              seed=run.config.seed, epoch=self.epoch,
                              static_shapes=run.static_shapes)
        iterator = iter(distribute.distributed_batches(run.strategy, run.task, request,
                                                       skip_steps=self.in_epoch))
        target = schedule.epoch_target(self.step, self.in_epoch)
        bar = self.bar = self._progress(target)
        bar.update(self._bar_position())
        while True:
            done, epoch_done = self._call(iterator, bar)
            self._record_position(epoch_done)
            if (schedule.evaluates(self.step, done, epoch_done, self.epoch)
                    and self.step != self.last_eval):
                bar.close()
                self._select()
                if self.stopped_early:
                    break
                if not (epoch_done or schedule.finished(self.step, self.epoch)):
                    bar = self.bar = self._progress(target)  # the rest of the epoch
                    bar.update(self._bar_position())
            elif schedule.checkpoints(self.step, done, epoch_done):
                self._save()
            if strategies.any_worker(run.strategy, self.stop.requested):
                bar.close()
                self._stop()
            if self.stopped_early or epoch_done or schedule.finished(self.step, self.epoch):
                break
        bar.close()
        self.bar = None

    def _progress(self, target: int) -> Progress:
        """The epoch's progress line: ``training, epoch 2/10: step 40/250`` counts the epoch's
        steps; with ``train_steps``, ``training (epoch 1): step 40/200`` counts the run's."""
        schedule = self.run.schedule
        if schedule.train_steps:
            label, total = f"training (epoch {self.epoch + 1}): step", schedule.train_steps
        else:
            label, total = f"training, epoch {self.epoch + 1}/{schedule.epochs}: step", target
        return Progress(total, label, enabled=self.run.verbose)

    def _bar_position(self, in_call: int = 0) -> int:
        position = self.step if self.run.schedule.train_steps else self.in_epoch
        return position + in_call

    def _on_step(self, done: tf.Tensor) -> None:
        """Called from inside a training call after each step (see ``make_train_loop``)."""
        position = self._bar_position(int(done))
        # the line's last update (with this call's loss) comes after the call
        if self.bar is not None and position < self.bar.total:
            values = {} if self.last_loss is None else {"loss": self.last_loss}
            self.bar.update(position, **values)

    def _call(self, iterator, bar: Progress) -> tuple[int, bool]:
        """One call of the training function; returns ``(steps taken, end of the epoch)``."""
        n = self.run.schedule.next_call(self.step)
        total, done = self.train_loop(iterator, tf.constant(n, tf.int32))
        done = int(done)
        if done:
            loss = float(total) / done
            if not math.isfinite(loss):
                bar.close()
                self.run.diverged(f"the training loss became {loss}", self.step + 1,
                                  self.step + done, self.epoch)
            self.step += done
            self.in_epoch += done
            self.losses.append((self.step, loss))
            self.last_loss = loss
            bar.update(self._bar_position(), loss=loss)
            self.run.log_train(self.step, loss)
        return done, done < n

    def _record_position(self, epoch_done: bool) -> None:
        """The data position and training time, into the progress variables."""
        if epoch_done:
            self.epoch, self.in_epoch = self.epoch + 1, 0
        progress = self.run.progress
        progress["epoch"].assign(self.epoch)
        progress["step_in_epoch"].assign(self.in_epoch)
        now = time.time()
        progress["train_seconds"].assign(checkpoints.read(progress["train_seconds"]) + now -
                                         self.segment_start)
        self.segment_start = now

    def _select(self) -> None:
        """The selection evaluation on dev, its records, the best checkpoint, a checkpoint,
        and early stopping."""
        run = self.run
        self.last_eval = self.step
        eval_start = time.time()
        dev, dev_outputs = self.evaluate("dev")
        self.last_selection = (self.step, dev_outputs)
        if not bool(self.weights_finite()):
            run.diverged("the weights stopped being finite", self.step, self.step, self.epoch)
        self.selection.update(self.step, dev[run.task.metric])
        previous = run.history[-1]["step"] if run.history else 0
        run.log_evaluation({"step": self.step, "epoch": self.position,
                            "train_loss": mean_since(self.carried + self.losses, previous),
                            "dev": dev})
        if run.verbose:
            metrics = ", ".join(f"{k}={v}" if isinstance(v, int) or v is None else
                                f"{k}={v:.4f}" for k, v in dev.items())
            print(f"  step {self.step} (epoch {self.position:.2f}): dev {metrics}", flush=True)
        self._save()
        self.segment_start += time.time() - eval_start
        if self.selection.stopped:
            self.stopped_early = True
            if run.verbose:
                print(f"early stopping: no better dev {run.task.metric} in "
                      f"{self.selection.patience} evaluations", flush=True)

    def _save(self) -> None:
        """A checkpoint at the current step, if every weight is finite."""
        if not bool(self.weights_finite()):
            self.run.diverged("the weights stopped being finite", self.step, self.step,
                              self.epoch)
        if self.run.chief:
            since = self.run.history[-1]["step"] if self.run.history else 0
            checkpoints.write_recent_losses(
                self.run.path(checkpoints.LATEST), self.step,
                [(s, loss) for s, loss in self.carried + self.losses if s > since])
        checkpoints.save(self.run.manager, self.step)

    def _stop(self) -> None:
        """A checkpoint at the current step (unless one was just written), then
        :class:`~training.preemption.Preempted` naming it."""
        latest = self.run.manager.latest_checkpoint
        if latest is None or checkpoints.step_of(latest) != self.step:
            self._save()
        raise self.stop.error(self.step, self.run.manager.latest_checkpoint)


def finish(run: Run, training: Training) -> RunResult:
    """The final evaluation of the best checkpoint, then ``results.json``."""
    # Every worker restores the best weights from the chief's directory: wait until the chief's
    # last save is on disk, or a worker ahead of it reads an older best checkpoint.
    strategies.barrier(run.strategy)
    best = checkpoints.load_best(run.model, run.config.model_dir)
    metrics, artifacts = evaluation.final_evaluation(
        run.task, run.model, training.evaluate, model_dir=run.config.model_dir,
        best_step=checkpoints.step_of(best) if best else None,
        last_selection=training.last_selection, write_artifacts=run.chief)
    results = run.results(metrics=metrics, artifacts=artifacts,
                          best=training.selection.best_entry(run.history), step=training.step,
                          epochs=training.position, stopped_early=training.stopped_early)
    run.write_results(results)
    return RunResult(results=results, model=run.model, task=run.task,
                     train_losses=training.losses)
