"""The contract between an experiment and the shared training loop.

A :class:`Task` owns an experiment's data, model, loss and metrics; :mod:`training.loop` owns
strategies, distribution, checkpoints, early stopping, summaries and results. A paper that needs
its own step (teacher forcing, REINFORCE, decoding) overrides :meth:`Task.train_step` or the
evaluation steps; it never forks the loop. This mirrors the Task/Trainer split of the
TensorFlow Model Garden (``official.core.base_task``), reduced to what the suite needs.

Batches are tuples ``(features, labels, weights)`` (see :mod:`datasets.batching`):

- ``features``: a tensor or a dict of tensors, the model's input.
- ``labels``: a tensor (or dict) the loss reads.
- ``weights``: float32 ``[batch]``; 1.0 for a real example and 0.0 for evaluation padding, so
  padding a split to a multiple of the batch size neither drops nor double-counts an example.

A model may return one tensor (the logits) or a dict of outputs (``logits``, ``attention``,
...); :meth:`Task.loss` sees the features, labels and outputs, so a penalty on activations that
needs the inputs' mask is a per-example loss term like any other.

Two evaluations:

- the **selection** evaluation (:meth:`Task.eval_step` → :meth:`Task.compute_metrics`), cheap,
  run on dev during training; :attr:`Task.metric` from it chooses the best checkpoint and drives
  early stopping;
- the **final** evaluation (:meth:`Task.final_eval_step` → :meth:`Task.compute_final_metrics`),
  the paper's test protocol (beam search, corpus-level scores), run on the best checkpoint for
  every split of :attr:`Task.eval_splits` and by ``evaluate.py``. By default it is the
  selection evaluation.

The loop gathers the per-example outputs of every step from all replicas and workers; outputs
whose shape varies from batch to batch (a decoded sequence, an attention map) are padded with
zeros to a common shape first. Row *i* of every gathered array is example *i* of the split
(rows past the split's end have weight 0), so a metric over the whole split (BLEU) can look up
each example's references. After the final evaluation, on the chief only,
:meth:`Task.write_artifacts` may write files (heat maps, sample outputs) into the model dir.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf


@dataclasses.dataclass
class RunEnv:
    """What :meth:`Task.prepare` may use beyond its own data.

    Args:
        cache_dir: a folder shared by runs (``--cache_dir``) for expensive, reusable work such
            as a frozen CNN's image features (:mod:`training.cache`).
        is_chief: whether this process writes shared files.
        barrier: blocks until every worker has called it (a no-op in one process).
    """

    cache_dir: str
    is_chief: bool = True
    barrier: Callable[[], None] = lambda: None


class PredictionNotSupported(NotImplementedError):
    """The task cannot label raw input (``evaluate.py --predict``)."""


class Task:
    """Base class for one experiment.

    Args:
        params: the experiment's hyperparameters (defaults merged with ``--params``).
        data_dir: where the raw datasets live (``None``: the online source, e.g. TFDS).
        model_dir: the run's directory; vocabularies and other artefacts are written here.

    Subclasses implement :meth:`num_examples`, :meth:`dataset`, :meth:`build_model` and
    :meth:`loss`, and usually :meth:`compute_metrics`.
    """

    #: name of the selection metric (early stopping and the best checkpoint).
    metric: str = "accuracy"
    #: "max" if a larger metric is better.
    metric_mode: str = "max"
    #: splits given the final evaluation after training (on the best checkpoint).
    eval_splits: tuple[str, ...] = ("dev", "test")

    def __init__(self, params: dict, data_dir: str | None, model_dir: str):
        self.params = dict(params)
        self.data_dir = data_dir
        self.model_dir = model_dir

    # ----------------------------------------------------------------------------- data
    def data_identity(self) -> dict[str, Any]:
        """What identifies the data a run trains and selects on (part of the run's identity).

        Default: nothing beyond the hyperparameters (synthetic data). Tasks that read files
        return fingerprints of their train and dev examples (``LoadedSplit.fingerprint``).
        """
        return {}

    def prepare(self, env: RunEnv) -> None:
        """Runs once before the model is built: vocabularies, cached features and the like.

        Every worker of a multi-worker run calls it; what only one process should compute goes
        through ``env`` (:mod:`training.cache`). Per-run artefacts go into ``self.model_dir``,
        written only when absent, so a restart rewrites nothing.
        """

    def num_examples(self, split: str) -> int:
        """Number of examples in ``split`` (for steps per epoch and schedules)."""
        raise NotImplementedError

    def dataset(self, split: str, *, batch_size: int, training: bool, seed: int, epoch: int = 0,
                input_context: tf.distribute.InputContext | None = None,
                static_shapes: bool = False) -> tf.data.Dataset:
        """Returns batches ``(features, labels, weights)`` of ``split``.

        Args:
            batch_size: the per-replica batch size.
            training: shuffle (seeded by ``seed`` and ``epoch``) and drop the remainder; else
                keep order and pad the last batch with weight-0 examples.
            seed, epoch: the shuffle order is a function of both, so a resumed run sees the
                same order as an uninterrupted one.
            input_context: from ``distribute_datasets_from_function``.
            static_shapes: pad every batch to fixed lengths (TPU / XLA), no length grouping.
        """
        raise NotImplementedError

    # ----------------------------------------------------------------------------- model
    def build_model(self) -> keras.Model:
        raise NotImplementedError

    def build_optimizer(self, total_steps: int) -> keras.optimizers.Optimizer:
        """Default: ``params['optimizer']`` (sgd, adam, adagrad, adadelta, rmsprop) at
        ``params['learning_rate']``."""
        name = self.params.get("optimizer", "adam")
        lr = self.params.get("learning_rate", 1e-3)
        kinds = {
            "sgd": lambda: keras.optimizers.SGD(lr, momentum=self.params.get("momentum", 0.0)),
            "adam": lambda: keras.optimizers.Adam(lr),
            "adagrad": lambda: keras.optimizers.Adagrad(lr),
            "adadelta": lambda: keras.optimizers.Adadelta(lr, rho=0.95, epsilon=1e-6),
            "rmsprop": lambda: keras.optimizers.RMSprop(lr),
        }
        if name not in kinds:
            raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(kinds)}")
        return kinds[name]()

    def loss(self, features: Any, labels: Any, outputs: Any) -> tf.Tensor:
        """Per-example loss ``[batch]`` (before weighting and averaging)."""
        raise NotImplementedError

    def regularization_loss(self, model: keras.Model) -> tf.Tensor:
        """A per-step penalty (for example λΣW²) added once per global batch."""
        return tf.add_n(model.losses) if model.losses else tf.constant(0.0)

    @staticmethod
    def logits(outputs: Any) -> tf.Tensor:
        """The logits of a model's outputs (the tensor itself, or ``outputs["logits"]``)."""
        return outputs["logits"] if isinstance(outputs, dict) else outputs

    # ----------------------------------------------------------------------------- steps
    def train_step(self, inputs, model: keras.Model, optimizer, *, global_batch_size: int,
                   clip_norm: float | None) -> dict[str, tf.Tensor]:
        """One replica's training step; returns scalars to sum over replicas.

        The loss is the sum of weighted per-example losses divided by the *global* batch size,
        so summing gradients over replicas gives the gradient of the global-batch mean.
        """
        features, labels, weights = inputs
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            outputs = model(features, training=True)
            per_example = tf.cast(self.loss(features, labels, outputs), tf.float32)
            data_loss = tf.reduce_sum(per_example * weights) / global_batch_size
            loss = data_loss + tf.cast(self.regularization_loss(model), tf.float32) / replicas
            scaled = optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
        variables = model.trainable_variables
        grads = tape.gradient(scaled, variables)
        apply_gradients(optimizer, grads, variables, clip_norm)
        return {"loss": loss, "data_loss": data_loss}

    def eval_step(self, inputs, model: keras.Model) -> dict[str, tf.Tensor]:
        """One replica's selection-evaluation step; returns per-example tensors.

        Default: ``logits``, ``labels``, ``weights`` and the per-example ``loss``.
        """
        features, labels, weights = inputs
        outputs = model(features, training=False)
        return {"logits": tf.cast(self.logits(outputs), tf.float32), "labels": labels,
                "weights": weights,
                "loss": tf.cast(self.loss(features, labels, outputs), tf.float32)}

    def compute_metrics(self, gathered: dict[str, np.ndarray], split: str) -> dict[str, float]:
        """Metrics from the gathered outputs of a whole split; weight-0 rows are ignored.

        Default: accuracy of ``argmax(logits)`` (percent), the mean loss and the example count.
        """
        keep = gathered["weights"] > 0
        labels = gathered["labels"][keep]
        predictions = gathered["logits"][keep].argmax(-1)
        return {"accuracy": 100.0 * float(np.mean(predictions == labels)),
                "loss": float(np.mean(gathered["loss"][keep])),
                "examples": int(keep.sum())}

    def final_eval_step(self, inputs, model: keras.Model) -> dict[str, tf.Tensor]:
        """The final evaluation's step (the paper's test protocol); default :meth:`eval_step`."""
        return self.eval_step(inputs, model)

    def compute_final_metrics(self, gathered: dict[str, np.ndarray], split: str
                              ) -> dict[str, float]:
        """The final evaluation's metrics; default :meth:`compute_metrics`."""
        return self.compute_metrics(gathered, split)

    def write_artifacts(self, model: keras.Model, split: str, gathered: dict[str, np.ndarray],
                        directory: str) -> list[str]:
        """Writes files about a finished final evaluation (chief only); returns their paths."""
        return []

    # ----------------------------------------------------------------------------- predict
    def predict(self, model: keras.Model, inputs: Sequence[str], output_dir: str
                ) -> list[dict[str, Any]]:
        """Labels raw inputs (a text, ``"a<TAB>b"``, an image path); one dict per input.

        A dict may name files it wrote into ``output_dir`` (``"files"``). Tasks that cannot
        raise :class:`PredictionNotSupported`.
        """
        raise PredictionNotSupported(f"{type(self).__name__} does not support prediction "
                                     "from raw input")

    def serving_endpoint(self, model: keras.Model):
        """``(fn, input_signature, resources)`` of a SavedModel signature on raw input
        (:mod:`training.export`): ``fn`` maps the raw inputs to a dict of outputs; resources
        are the lookup tables it uses (the variables it reads, an image encoder's included,
        are found from ``fn`` itself). Tasks that cannot raise :class:`PredictionNotSupported`."""
        raise PredictionNotSupported(f"{type(self).__name__} cannot be exported for serving "
                                     "on raw input")


def text_columns(inputs: Sequence[str], count: int) -> list[list[str]]:
    """Splits raw prediction inputs into ``count`` text columns (pairs are ``"a<TAB>b"``).

    Raises:
        ValueError: an input is empty or does not have ``count`` tab-separated parts; the
            message names the input's position.
    """
    columns: list[list[str]] = [[] for _ in range(count)]
    for n, text in enumerate(inputs, start=1):
        parts = text.split("\t") if count > 1 else [text]
        if len(parts) != count or not all(p.strip() for p in parts):
            what = ("two non-empty texts separated by a tab (premise/sentence 1, "
                    "hypothesis/sentence 2)" if count == 2 else "a non-empty text")
            raise ValueError(f"input {n} must be {what}: {text!r}")
        for column, part in zip(columns, parts):
            column.append(part.strip())
    return columns


def apply_gradients(optimizer, grads, variables, clip_norm: float | None) -> None:
    """Applies per-replica gradients, clipping the *global-batch* gradient by its global norm.

    Keras 3 optimizers all-reduce (sum) gradients inside ``apply_gradients``, after their own
    ``clipnorm``: clipping there would clip each replica's partial gradient. To clip the summed
    gradient, as a one-replica run would, we all-reduce here, clip, and hand each replica
    ``clipped / replicas``; the optimizer's own sum then restores exactly ``clipped``.
    """
    grads_and_vars = [(g, v) for g, v in zip(grads, variables) if g is not None]
    grads = [tf.convert_to_tensor(g) for g, _ in grads_and_vars]
    variables = [v for _, v in grads_and_vars]
    if clip_norm:
        ctx = tf.distribute.get_replica_context()
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if hasattr(optimizer, "scale_loss") and hasattr(optimizer, "dynamic_scale"):
            grads = [g / optimizer.dynamic_scale for g in grads]  # unscale before the norm
            unscaled = True
        else:
            unscaled = False
        if ctx is not None and replicas > 1:
            grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        grads, _ = tf.clip_by_global_norm(grads, clip_norm)
        if replicas > 1:
            grads = [g / replicas for g in grads]
        if unscaled:
            grads = [g * optimizer.dynamic_scale for g in grads]
    optimizer.apply_gradients(zip(grads, variables))


def steps_per_epoch(num_examples: int, global_batch_size: int) -> int:
    """Training steps per epoch: every whole global batch (at least 1)."""
    return max(1, num_examples // global_batch_size)


def eval_steps(num_examples: int, global_batch_size: int) -> int:
    """Evaluation steps that cover every example once (the last batch padded)."""
    return max(1, math.ceil(num_examples / global_batch_size))
