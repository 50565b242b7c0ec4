"""The contract between an experiment and the shared training loop.

A :class:`Task` owns an experiment's data, model, loss and metrics; :mod:`training.loop` owns
strategies, distribution, checkpoints, early stopping, summaries and results. A paper that needs
its own step (teacher forcing, beam-search evaluation) overrides :meth:`Task.train_step` or
:meth:`Task.eval_step`; it never forks the loop. This mirrors the Task/Trainer split of the
TensorFlow Model Garden (``official.core.base_task``), reduced to what the suite needs.

Batches are tuples ``(features, labels, weights)``:

- ``features``: a tensor or a dict of tensors, the model's input.
- ``labels``: a tensor (or dict) the loss reads.
- ``weights``: float32 ``[batch]``; 1.0 for a real example and 0.0 for evaluation padding, so
  padding a split to a multiple of the batch size neither drops nor double-counts an example.

Evaluation runs :meth:`Task.eval_step` on every batch; the loop gathers the returned per-example
tensors from all replicas (and workers) and hands numpy arrays to :meth:`Task.compute_metrics`.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf


class Task:
    """Base class for one experiment.

    Args:
        params: the experiment's hyperparameters (defaults merged with ``--params``).
        data_dir: where the raw datasets live (``None``: the online source, e.g. TFDS).
        model_dir: the run's directory; vocabularies and other artefacts are written here.

    Subclasses implement :meth:`dataset`, :meth:`build_model` and :meth:`loss`, and usually
    :meth:`compute_metrics`.
    """

    #: name of the metric used for early stopping and the best checkpoint.
    metric: str = "accuracy"
    #: "max" if a larger metric is better.
    metric_mode: str = "max"
    #: splits evaluated after training (the best checkpoint is restored first).
    eval_splits: tuple[str, ...] = ("dev", "test")

    def __init__(self, params: dict, data_dir: str | None, model_dir: str):
        self.params = dict(params)
        self.data_dir = data_dir
        self.model_dir = model_dir

    # ----------------------------------------------------------------------------- data
    def prepare(self) -> None:
        """Runs once before the model is built: builds vocabularies and the like.

        Must be deterministic given the training data, because every worker of a multi-worker
        run calls it. Artefacts go into ``self.model_dir``.
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
            input_context: from ``distribute_datasets_from_function``; shard on it.
            static_shapes: pad every batch to fixed lengths (TPU / XLA), no length bucketing.
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

    def loss(self, labels: Any, outputs: Any) -> tf.Tensor:
        """Per-example loss ``[batch]`` (before weighting and averaging)."""
        raise NotImplementedError

    def regularization_loss(self, model: keras.Model) -> tf.Tensor:
        """A per-step penalty (for example λΣW²) added once per global batch."""
        return tf.add_n(model.losses) if model.losses else tf.constant(0.0)

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
            per_example = tf.cast(self.loss(labels, outputs), tf.float32)
            data_loss = tf.reduce_sum(per_example * weights) / global_batch_size
            loss = data_loss + tf.cast(self.regularization_loss(model), tf.float32) / replicas
            scaled = optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
        variables = model.trainable_variables
        grads = tape.gradient(scaled, variables)
        apply_gradients(optimizer, grads, variables, clip_norm)
        return {"loss": loss, "data_loss": data_loss}

    def eval_step(self, inputs, model: keras.Model) -> dict[str, tf.Tensor]:
        """One replica's evaluation step; returns per-example tensors (leading batch axis).

        Default: ``logits``, ``labels``, ``weights`` and the per-example ``loss``.
        """
        features, labels, weights = inputs
        outputs = model(features, training=False)
        return {"logits": tf.cast(outputs, tf.float32), "labels": labels, "weights": weights,
                "loss": tf.cast(self.loss(labels, outputs), tf.float32)}

    def compute_metrics(self, gathered: dict[str, np.ndarray]) -> dict[str, float]:
        """Metrics from the gathered eval outputs; examples with weight 0 are ignored.

        Default: accuracy of ``argmax(logits)`` and the mean loss, in percent / nats.
        """
        keep = gathered["weights"] > 0
        labels = gathered["labels"][keep]
        predictions = gathered["logits"][keep].argmax(-1)
        return {"accuracy": 100.0 * float(np.mean(predictions == labels)),
                "loss": float(np.mean(gathered["loss"][keep])),
                "examples": int(keep.sum())}


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
    """Training steps per epoch with ``drop_remainder`` (at least 1)."""
    return max(1, num_examples // global_batch_size)


def eval_steps(num_examples: int, global_batch_size: int) -> int:
    """Evaluation steps that cover every example once (the last batch padded)."""
    return max(1, math.ceil(num_examples / global_batch_size))
