"""What changes when a step runs on several replicas: gradients, inputs, and gathered outputs.

- :func:`apply_gradients`: each replica's gradient is its share of the global-batch gradient
  (the loss is divided by the global batch size); clipping is of the summed gradient, as one
  replica would clip it.
- :func:`distributed_batches`: a task's batches for every replica, from
  ``distribute_datasets_from_function``; each batch is formed at the global batch size and cut
  per replica (:mod:`datasets.batching`), so the batches are the same on any layout.
- :func:`make_train_loop`: the function that takes several training steps per call.
- :func:`pad_to_common_shape` and :func:`concat_outputs`: per-example evaluation outputs
  gathered from every replica and worker, in the split's order, even when their shapes vary
  from batch to batch.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from datasets.batching import DataRequest


def apply_gradients(optimizer, grads, variables, clip_norm: float | None) -> None:
    """Applies per-replica gradients, clipping the *global-batch* gradient by its global norm.

    Keras 3 optimizers all-reduce (sum) gradients inside ``apply_gradients``, after their own
    ``clipnorm``: clipping there would clip each replica's partial gradient. To clip the summed
    gradient, as a one-replica run would, we all-reduce here, clip, and hand each replica
    ``clipped / replicas``; the optimizer's own sum then restores exactly ``clipped``. Under
    loss scaling (``LossScaleOptimizer``) the gradients are unscaled before the norm and scaled
    again after, so the clipping threshold is in the true gradient's units.
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


def distributed_batches(strategy: tf.distribute.Strategy, task, request: DataRequest,
                        skip_steps: int = 0) -> tf.distribute.DistributedDataset:
    """The task's batches for ``request`` on every replica (``request.batch_size`` is the
    per-replica size), without the first ``skip_steps`` global steps."""
    def dataset_fn(ctx):
        ds = task.dataset(request.with_context(ctx))
        per_pipeline = ctx.num_replicas_in_sync // ctx.num_input_pipelines
        return ds.skip(skip_steps * per_pipeline) if skip_steps else ds

    return strategy.distribute_datasets_from_function(dataset_fn)


def make_train_loop(task, model, optimizer, strategy: tf.distribute.Strategy, *,
                    global_batch: int, clip_norm: float | None, jit_compile: bool = False,
                    on_step: Callable[[tf.Tensor], None] | None = None) -> Callable:
    """Returns ``train_loop(iterator, num_steps) -> (loss sum, steps taken)``.

    One ``tf.function`` call takes up to ``num_steps`` (a scalar tensor) steps of the task's
    ``train_step`` from a distributed iterator, fewer when the data ends; with ``jit_compile``
    each step (the optimiser's update included) is compiled with XLA. ``on_step`` (a progress
    line's update) is called on the host after each step with the steps this call has taken,
    so a progress line moves step by step whatever ``num_steps`` is; it changes no number.
    ``bench/`` times this same function.
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
            if on_step is not None:
                tf.py_function(on_step, [done], [])
        return total, done

    return train_loop


def pad_to_common_shape(outputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Pads each replica's outputs to the largest shape over the replicas (for ``gather``).

    Called in a replica context; outputs of rank 2 or more whose shape past the batch axis is
    not static are zero-padded at the end of each axis.
    """
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


def concat_outputs(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
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
