"""A run's checkpoints: what they hold, where they go, and restoring the newest good one.

**The object graph is a compatibility contract.** Runs that were started by an earlier version
of the suite resume from their checkpoints, which ``tf.train.Checkpoint`` matches by name. A
run's checkpoint (:func:`run_checkpoint`) has exactly these children, and they must keep their
names:

- ``model``: the Keras model; ``optimizer``: the optimiser (its ``iterations`` is the step);
- ``rng``: the states of the model's random seed generators, ``s0``, ``s1``, ... in the order
  of :func:`rng_states`;
- ``epoch``, ``step_in_epoch``: the data position (an epoch's order is a function of the seed
  and the epoch, so the run skips what it has seen);
- ``best_metric``, ``evals_since_best``: model selection (:mod:`training.selection`);
- ``train_seconds``: training time over all of the run's segments.

The best checkpoint holds ``model`` only. ``tests/test_loop.py`` pins these names.

Restoring (:func:`restore_newest`) falls back to the newest checkpoint that restores cleanly,
naming the ones it skipped. Only weights that are all finite are written
(:func:`weights_finite`), so "the last good checkpoint" is one. In a multi-worker job every
worker restores from the chief's directory and writes its share of each (collective) save into
a scratch directory of its own (:func:`write_root`).
"""

from __future__ import annotations

import os
from typing import Any

import keras
import tensorflow as tf

from training import io, run_dir, strategies

LATEST = "checkpoints"
BEST = "best"
#: How many of the latest checkpoints are kept by default (the newest may be cut short by a
#: crash); ``--keep_checkpoints`` sets it.
KEEP = 2
#: Beside the latest checkpoints: the training losses since the last evaluation, per checkpoint.
RECENT_LOSSES = "recent_losses.json"


def progress_variables() -> dict[str, tf.Variable]:
    """The run's position and selection state, one variable each (created in the strategy's
    scope; the first replica's value is the one kept)."""
    def var(value, dtype):
        return tf.Variable(value, dtype=dtype, trainable=False,
                           synchronization=tf.VariableSynchronization.ON_WRITE,
                           aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    return {"epoch": var(0, tf.int64), "step_in_epoch": var(0, tf.int64),
            "best_metric": var(float("nan"), tf.float64),
            "evals_since_best": var(0, tf.int64), "train_seconds": var(0.0, tf.float64)}


def read(variable) -> Any:
    """The value of a (possibly mirrored, possibly Keras) scalar variable as a Python number."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.numpy().item()


def rng_states(model: keras.Model) -> tf.train.Checkpoint:
    """The states of the model's random seed generators (dropout masks and the like).

    Keras 3 does not put them in a ``tf.train.Checkpoint`` of the model; without them a resumed
    run would draw other dropout masks than an uninterrupted one.

    Two private Keras attributes are read here, on purpose: ``Layer._flatten_layers`` and
    ``Layer._seed_generators``. The public ``Layer.variables`` lists the same states, but in
    another order (depth first, each layer's children in order, where ``_flatten_layers`` takes
    a layer's children last first), and the order names the checkpoint's ``s0``, ``s1``, ...:
    taking it from ``variables`` would give a running run's saved states to other generators
    when it resumes.
    """
    states = {}
    for layer in model._flatten_layers(include_self=True):
        for generator in getattr(layer, "_seed_generators", []):
            states[f"s{len(states)}"] = generator.state.value
    return tf.train.Checkpoint(**states)


def run_checkpoint(model: keras.Model, optimizer, progress: dict[str, tf.Variable]
                   ) -> tf.train.Checkpoint:
    """Everything a run resumes from (see the module docstring for the names)."""
    return tf.train.Checkpoint(model=model, optimizer=optimizer, rng=rng_states(model),
                               **progress)


def scratch_dir(model_dir: str, strategy: tf.distribute.Strategy) -> str:
    """Where a non-chief worker writes its share of every (collective) save."""
    return os.path.join(model_dir, ".worker_tmp", str(strategies.worker_id(strategy)))


def write_root(model_dir: str, strategy: tf.distribute.Strategy) -> str:
    """The folder this process saves into: the model dir on the chief, else its scratch."""
    return model_dir if strategies.is_chief(strategy) else scratch_dir(model_dir, strategy)


def managers(checkpoint: tf.train.Checkpoint, model: keras.Model, root: str, keep: int = KEEP
             ) -> tuple[tf.train.CheckpointManager, tf.train.CheckpointManager]:
    """``(latest, best)``: the latest ``keep`` checkpoints, and the best model's (the model
    only: no optimiser state, which nothing after training needs)."""
    latest = tf.train.CheckpointManager(checkpoint, os.path.join(root, LATEST),
                                        max_to_keep=keep)
    best = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                      os.path.join(root, BEST), max_to_keep=1)
    return latest, best


def save(manager: tf.train.CheckpointManager, step: int) -> str:
    """``manager.save`` at ``step``. A disk that is full or a dir that cannot be written is a
    :class:`~training.run_dir.RunDirError` naming the checkpoint, and the save's half-written
    files (``ckpt-N_temp``) are removed; the checkpoints written before it are kept."""
    try:
        return manager.save(checkpoint_number=step)
    except (tf.errors.ResourceExhaustedError, tf.errors.PermissionDeniedError, OSError) as e:
        prefix = os.path.join(manager.directory, f"ckpt-{step}")
        for leftover in tf.io.gfile.glob(prefix + "_temp*"):
            if tf.io.gfile.isdir(leftover):
                tf.io.gfile.rmtree(leftover)
            else:
                tf.io.gfile.remove(leftover)
        reason = getattr(e, "strerror", None) or getattr(e, "message", None) or str(e)
        raise run_dir.RunDirError(
            f"could not write the checkpoint {prefix} ({' '.join(str(reason).split())}); free "
            "space (or make the dir writable) and run the same command again: it resumes from "
            "the newest checkpoint") from None


def write_recent_losses(directory: str, step: int, losses: list[tuple[int, float]]) -> None:
    """Records, before the checkpoint at ``step`` is written, the training losses of the calls
    since the last evaluation (``RECENT_LOSSES`` in ``directory``, one entry per checkpoint
    kept), so a run resumed from it reports the same mean training loss at its next evaluation
    as a run never interrupted. A file beside the checkpoints, not in them: the checkpoint's
    object graph stays what earlier runs saved."""
    path = os.path.join(directory, RECENT_LOSSES)
    recent = _read_recent(path)
    recent[str(step)] = [[int(s), float(loss)] for s, loss in losses]
    keep = sorted(recent, key=int)[-(KEEP + 1):]
    try:
        io.atomic_write_json(path, {k: recent[k] for k in keep})
    except OSError as e:
        raise run_dir.RunDirError(
            f"could not write {path} ({e.strerror or e}); free space (or make the dir "
            "writable) and run the same command again: it resumes from the newest "
            "checkpoint") from None


def read_recent_losses(directory: str, step: int) -> list[tuple[int, float]]:
    """The losses :func:`write_recent_losses` recorded with the checkpoint at ``step`` (none for
    a run started before they were recorded)."""
    return [(int(s), float(loss))
            for s, loss in _read_recent(os.path.join(directory, RECENT_LOSSES)).get(str(step), [])]


def _read_recent(path: str) -> dict:
    try:
        recent = io.read_json(path) if io.exists(path) else {}
    except ValueError:  # cut short: the losses are only a record, the run goes on without them
        recent = {}
    return recent if isinstance(recent, dict) else {}


def restore_newest(checkpoint: tf.train.Checkpoint, directory: str, verbose: bool) -> str | None:
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


def restore_model(model: keras.Model, path: str) -> None:
    """Loads the weights of a model-only checkpoint (``best/``) into ``model``, every one of them.

    Raises:
        run_dir.RunDirError: the checkpoint does not restore, or lacks some of the model's
            weights (a run dir written before :func:`check_checkpointed` existed: its best
            checkpoint misses the layers a model kept in a list; train the run again).
    """
    try:
        tf.train.Checkpoint(model=model).restore(path).assert_existing_objects_matched(
        ).expect_partial()
    except AssertionError as e:
        missing = " ".join(str(e).split())[:200]
        raise run_dir.RunDirError(f"the checkpoint {path} lacks some of the model's weights "
                                  f"({missing}): it was written by an older version that did "
                                  "not save them; train the run again") from None
    except Exception as e:
        raise run_dir.RunDirError(f"the checkpoint {path} does not restore: "
                                  f"{type(e).__name__}: {e}") from None


def load_best(model: keras.Model, model_dir: str, attempts: int = 3) -> str | None:
    """Loads the best checkpoint's weights into ``model``; returns its path (``None``: none).

    A run that is still training replaces its best checkpoint (and deletes the one before) at
    each improvement, possibly while it is being read: the newer one is read then.
    """
    best_dir = os.path.join(model_dir, BEST)
    for attempt in range(attempts):
        best = tf.train.latest_checkpoint(best_dir)
        if best is None:
            return None
        try:
            restore_model(model, best)
            return best
        except run_dir.RunDirError:
            if attempt + 1 == attempts or tf.train.latest_checkpoint(best_dir) == best:
                raise
    raise AssertionError("unreachable")


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


def step_of(path: str) -> int:
    """The step a checkpoint was saved at (its number)."""
    return int(path.rsplit("-", 1)[-1])


def weights_finite(model: keras.Model):
    """Returns a function that says whether every floating-point weight is finite."""
    variables = [v.value if isinstance(v, keras.Variable) else v for v in model.weights]

    @tf.function
    def check():
        return tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in variables
                              if v.dtype.is_floating])

    return check
