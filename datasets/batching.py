"""Batches for the training loop: ``(features, labels, weights)`` per replica.

This is the data side of the contract in :mod:`training.task` (``Task.dataset``):

- :func:`train_batches` shards on the ``tf.distribute.InputContext``, shuffles with a seed that is
  a function of ``(seed, epoch)`` (``reshuffle_each_iteration=False``, so epoch *e* has the same
  order in a resumed run as in an uninterrupted one), then either buckets examples by length
  (``Dataset.bucket_by_sequence_length``: little padding, for CPU/GPU) or pads every batch to
  fixed lengths (``static_shapes=True``: static shapes for TPU/XLA), dropping the remainder.
- :func:`eval_batches` keeps the order and appends weight-0 copies of the first example until the
  number of examples is exactly ``eval_steps × global batch size``, so every pipeline yields the
  same number of full batches and no example is dropped or counted twice.

``weights`` is float32 ``[batch]``: 1.0 for a real example, 0.0 for padding.

Input datasets are dicts of tensors (e.g. from :func:`datasets.text.encode_text`): scalars, or
sequences whose first dimension varies. By default ``labels`` is the ``label_key`` entry and
``features`` the dict of the others; ``split_fn(batch) -> (features, labels)``, applied to each
padded batch (a dict of batched tensors), replaces that.
Sequences are padded with 0 (the vocabulary's PAD id) and strings with ``""``.

Example:

```python
def dataset(self, split, *, batch_size, training, seed, epoch=0, input_context=None,
            static_shapes=False):
    ds = encode_text(self.splits[split].dataset, self.tokenizer, self.vocab, max_length=64)
    if training:
        return batching.train_batches(
            ds, batch_size, seed=seed, epoch=epoch, input_context=input_context,
            bucket_boundaries=[10, 20, 30, 40], static_shapes=static_shapes,
            static_lengths={"text_ids": 64})
    return batching.eval_batches(ds, batch_size, input_context=input_context,
                                 static_shapes=static_shapes, static_lengths={"text_ids": 64})
```
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf

SplitFn = Callable[[dict], tuple[Any, Any]]
LengthFn = Callable[[dict], tf.Tensor]


def derive_seed(seed: int, epoch: int) -> int:
    """A shuffle seed that is a well-mixed function of ``(seed, epoch)``."""
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, np.uint64)[0]
    return int(state & np.uint64(2**63 - 1))


def shard(ds: tf.data.Dataset, input_context: tf.distribute.InputContext | None
          ) -> tf.data.Dataset:
    """``ds.shard(num_input_pipelines, input_pipeline_id)`` when there is more than one pipeline."""
    if input_context is not None and input_context.num_input_pipelines > 1:
        return ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    return ds


def padded_shapes(element_spec: Mapping[str, tf.TensorSpec], *, static_shapes: bool = False,
                  static_lengths: Mapping[str, int | Sequence[int]] | None = None
                  ) -> dict[str, tf.TensorShape]:
    """The ``padded_shapes`` of ``padded_batch`` for a dict element.

    Args:
        element_spec: the dataset's ``element_spec`` (a dict of ``tf.TensorSpec``).
        static_shapes: replace every unknown dimension by its length from ``static_lengths``.
        static_lengths: feature → an int (for every unknown dimension) or a full shape.

    Raises:
        ValueError: ``static_shapes`` and a feature with an unknown dimension has no length.
    """
    shapes = {}
    for key, spec in element_spec.items():
        shape = spec.shape
        if static_shapes and not shape.is_fully_defined():
            if not static_lengths or key not in static_lengths:
                raise ValueError(f"static_shapes needs a length for feature {key!r} "
                                 f"(shape {shape}): pass static_lengths={{{key!r}: N}}")
            length = static_lengths[key]
            if isinstance(length, int):
                shape = tf.TensorShape([length if d is None else d for d in shape.as_list()])
            else:
                shape = tf.TensorShape(length)
                if not spec.shape.is_compatible_with(shape):
                    raise ValueError(f"static length {list(length)} of {key!r} does not fit "
                                     f"its shape {spec.shape}")
        shapes[key] = shape
    return shapes


def max_length(example: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """The longest first dimension among the variable-length features of ``example``."""
    lengths = [tf.shape(v)[0] for v in example.values() if v.shape.rank and v.shape[0] is None]
    if not lengths:
        raise ValueError("bucketing needs a variable-length feature (or pass length_fn)")
    return tf.reduce_max(tf.stack(lengths))


def _triples(label_key: str | None, split_fn: SplitFn | None):
    if split_fn is None and label_key is None:
        raise ValueError("pass label_key or split_fn")

    def to_triple(batch, weight):
        if split_fn is not None:
            features, labels = split_fn(batch)
        else:
            if label_key not in batch:
                raise ValueError(f"label_key {label_key!r} not in the features {sorted(batch)}")
            features = dict(batch)
            labels = features.pop(label_key)
        return features, labels, weight

    return to_triple


def _check_dict(ds: tf.data.Dataset) -> None:
    if not isinstance(ds.element_spec, dict):
        raise TypeError(f"expected a dataset of dicts, got {ds.element_spec}")


def train_batches(ds: tf.data.Dataset, batch_size: int, *, seed: int, epoch: int = 0,
                  shuffle_buffer: int | None = None, label_key: str | None = "label",
                  split_fn: SplitFn | None = None,
                  bucket_boundaries: Sequence[int] | None = None,
                  length_fn: LengthFn | None = None, static_shapes: bool = False,
                  static_lengths: Mapping[str, int | Sequence[int]] | None = None,
                  drop_remainder: bool = True,
                  input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """One epoch of shuffled training batches ``(features, labels, weights)``.

    Args:
        ds: a dataset of dicts (one example each), in a fixed order.
        batch_size: the per-replica batch size.
        seed, epoch: the shuffle order is a function of both (:func:`derive_seed`).
        shuffle_buffer: the shuffle buffer; ``None``: the whole (sharded) dataset, a uniform
            shuffle (needs a known cardinality).
        label_key: the entry that becomes ``labels``; the rest are ``features``.
        split_fn: ``batch -> (features, labels)`` on each padded batch (a dict of batched
            tensors), instead of ``label_key``.
        bucket_boundaries: sequence-length boundaries for ``bucket_by_sequence_length``;
            ignored when ``static_shapes``.
        length_fn: ``example -> length`` for bucketing; default: :func:`max_length`.
        static_shapes: pad every batch to ``static_lengths`` (TPU/XLA); no bucketing.
        static_lengths: feature → padded length (or shape) for ``static_shapes``.
        drop_remainder: drop the last partial batch (of each bucket); always true with
            ``static_shapes``.
        input_context: shard on it (``distribute_datasets_from_function``).

    Returns:
        A dataset of ``(features, labels, weights)`` with ``weights`` all 1.0.
    """
    _check_dict(ds)
    ds = shard(ds, input_context)
    if shuffle_buffer is None:
        shuffle_buffer = int(ds.cardinality())
        if shuffle_buffer < 0:
            raise ValueError("the dataset's cardinality is unknown: pass shuffle_buffer")
    ds = ds.shuffle(max(1, shuffle_buffer), seed=derive_seed(seed, epoch),
                    reshuffle_each_iteration=False)
    shapes = padded_shapes(ds.element_spec, static_shapes=static_shapes,
                           static_lengths=static_lengths)
    ds = ds.map(lambda example: (example, tf.constant(1.0, tf.float32)))
    if bucket_boundaries and not static_shapes:
        length_fn = length_fn or max_length
        ds = ds.bucket_by_sequence_length(
            lambda example, weight: tf.cast(length_fn(example), tf.int32),
            bucket_boundaries=list(bucket_boundaries),
            bucket_batch_sizes=[batch_size] * (len(bucket_boundaries) + 1),
            padded_shapes=(shapes, tf.TensorShape([])), drop_remainder=drop_remainder)
    else:
        ds = ds.padded_batch(batch_size, padded_shapes=(shapes, tf.TensorShape([])),
                             drop_remainder=drop_remainder or static_shapes)
    return ds.map(_triples(label_key, split_fn)).prefetch(tf.data.AUTOTUNE)


def eval_batches(ds: tf.data.Dataset, batch_size: int, *, num_examples: int | None = None,
                 label_key: str | None = "label", split_fn: SplitFn | None = None,
                 static_shapes: bool = False,
                 static_lengths: Mapping[str, int | Sequence[int]] | None = None,
                 input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """Evaluation batches ``(features, labels, weights)`` covering every example exactly once.

    The examples keep their order. Each input pipeline is padded with weight-0 copies of the
    split's first example to ``steps × batch_size × replicas_per_pipeline`` examples, where
    ``steps = max(1, ceil(num_examples / (batch_size × num_replicas_in_sync)))`` is
    :func:`training.task.eval_steps`; every batch is therefore full (static batch dimension).

    Args:
        ds: a dataset of dicts, in order.
        batch_size: the per-replica batch size.
        num_examples: the number of examples before sharding; default: ``ds.cardinality()``.
        label_key, split_fn: as in :func:`train_batches`.
        static_shapes, static_lengths: as in :func:`train_batches`.
        input_context: shard on it.

    Returns:
        A dataset of ``(features, labels, weights)``.

    Raises:
        ValueError: the number of examples is unknown, zero, or contradicts the cardinality.
    """
    _check_dict(ds)
    known = int(ds.cardinality())
    if num_examples is None:
        if known < 0:
            raise ValueError("the dataset's cardinality is unknown: pass num_examples")
        num_examples = known
    elif known >= 0 and known != num_examples:
        raise ValueError(f"num_examples={num_examples} but the dataset has {known} elements")
    if num_examples <= 0:
        raise ValueError("cannot evaluate an empty split")
    pipelines, pipeline_id, replicas = 1, 0, 1
    if input_context is not None:
        pipelines = input_context.num_input_pipelines
        pipeline_id = input_context.input_pipeline_id
        replicas = input_context.num_replicas_in_sync
    steps = max(1, math.ceil(num_examples / (batch_size * replicas)))
    target = steps * batch_size * (replicas // pipelines)
    in_shard = len(range(pipeline_id, num_examples, pipelines))

    shapes = padded_shapes(ds.element_spec, static_shapes=static_shapes,
                           static_lengths=static_lengths)
    dummy = ds.take(1).map(lambda example: (example, tf.constant(0.0, tf.float32)))
    ds = shard(ds, input_context).apply(tf.data.experimental.assert_cardinality(in_shard))
    ds = ds.map(lambda example: (example, tf.constant(1.0, tf.float32)))
    ds = ds.concatenate(dummy.repeat(target - in_shard))
    ds = ds.padded_batch(batch_size, padded_shapes=(shapes, tf.TensorShape([])),
                         drop_remainder=True)
    return ds.map(_triples(label_key, split_fn)).prefetch(tf.data.AUTOTUNE)
