"""Batches for the training loop: ``(features, labels, weights)`` per replica.

This is the data side of the contract in :mod:`training.task`: the loop asks a task for batches
with a :class:`DataRequest` (``Task.dataset(request)``), and the task builds them with
:func:`batches`, which is :func:`train_batches` for a training request and :func:`eval_batches`
otherwise. Every batch is
first formed at the **global** batch size (per-replica size × replicas in sync, from the
``tf.distribute.InputContext``) and only then cut into this input pipeline's share, one
per-replica batch after another. The examples of a training step, their order and their padded
length are therefore the same whatever the layout: one replica, several replicas on one
machine, or several workers (each worker reads the whole split and keeps its slice). A run
resumed with another number of replicas at the same global batch size sees the same batches.

- :func:`train_batches` shuffles with a seed that is a function of ``(seed, epoch)``
  (``reshuffle_each_iteration=False``: epoch *e* has the same order in a resumed run as in an
  uninterrupted one), optionally groups examples of similar length (each chunk of
  ``sort_chunk_batches`` global batches is sorted by length, cut into batches, and the batches
  are shuffled: every example of the epoch is kept and an epoch has exactly
  ``examples // global_batch`` steps), pads each global batch to its longest example or, with
  ``static_shapes=True``, to fixed lengths (TPU/XLA), and drops only the epoch's remainder.
- :func:`eval_batches` keeps the split's order and appends weight-0 copies of the first example
  up to a whole number of global batches. Gathering the per-replica outputs of each step in
  replica order therefore gives the split back in order: row *i* of the gathered outputs is
  example *i* (rows past the end have weight 0), on one replica or many.

``weights`` is float32 ``[batch]``: 1.0 for a real example, 0.0 for padding.

Input datasets are dicts of tensors (e.g. from :func:`datasets.text.encode_text`): scalars, or
sequences whose first dimension varies. By default ``labels`` is the ``label_key`` entry and
``features`` the dict of the others; ``split_fn(batch) -> (features, labels)``, applied to each
padded batch (a dict of batched tensors), replaces that. Sequences are padded with 0 (the
vocabularies' PAD id) and strings with ``""``.

Example:

```python
def dataset(self, request: DataRequest) -> tf.data.Dataset:
    ds = encode_text(self.split(request.split).dataset, self.tokenizer, self.vocab,
                     max_length=64)
    return batching.batches(ds, request, static_lengths={"text_ids": 64},
                            group_by_length=True)
```
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf

SplitFn = Callable[[dict], tuple[Any, Any]]
LengthFn = Callable[[dict], tf.Tensor]


@dataclasses.dataclass(frozen=True)
class DataRequest:
    """Which batches the loop asks a task for (``Task.dataset(request)``).

    Args:
        split: ``"train"``, ``"dev"`` or ``"test"``.
        batch_size: the per-replica batch size.
        training: shuffle (seeded by ``seed`` and ``epoch``) and drop the remainder; else keep
            the split's order and pad the last batch with weight-0 examples.
        seed, epoch: the shuffle order is a function of both, so a resumed run sees the same
            order as an uninterrupted one.
        input_context: from ``distribute_datasets_from_function`` (``None``: one replica).
        static_shapes: pad every batch to fixed lengths (TPU / XLA), no length grouping.

    Example:

    ```python
    task.dataset(DataRequest("dev", batch_size=32))
    task.dataset(DataRequest("train", batch_size=32, training=True, seed=0, epoch=2))
    ```
    """

    split: str
    batch_size: int
    training: bool = False
    seed: int = 0
    epoch: int = 0
    input_context: tf.distribute.InputContext | None = None
    static_shapes: bool = False

    def with_context(self, input_context: tf.distribute.InputContext) -> "DataRequest":
        """The same request for one input pipeline of a distributed dataset."""
        return dataclasses.replace(self, input_context=input_context)


def derive_seed(seed: int, epoch: int) -> int:
    """A shuffle seed that is a well-mixed function of ``(seed, epoch)``."""
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, np.uint64)[0]
    return int(state & np.uint64(2**63 - 1))


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where one input pipeline's examples sit in a global batch.

    Args:
        batch_size: the per-replica batch size.
        replicas: replicas in sync (all workers).
        pipelines: input pipelines (one per worker).
        pipeline_id: this pipeline.
    """

    batch_size: int
    replicas: int = 1
    pipelines: int = 1
    pipeline_id: int = 0

    @classmethod
    def of(cls, batch_size: int, input_context: tf.distribute.InputContext | None) -> "Layout":
        if batch_size < 1:
            raise ValueError(f"the batch size must be at least 1, got {batch_size}")
        if input_context is None:
            return cls(batch_size)
        return cls(batch_size, input_context.num_replicas_in_sync,
                   input_context.num_input_pipelines, input_context.input_pipeline_id)

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.replicas

    @property
    def rows_per_pipeline(self) -> int:
        return self.global_batch // self.pipelines

    def this_pipeline(self, batches: tf.data.Dataset) -> tf.data.Dataset:
        """Global batches → this pipeline's per-replica batches, in replica order."""
        if self.pipelines == 1 and self.replicas == 1:
            return batches
        start, rows = self.pipeline_id * self.rows_per_pipeline, self.rows_per_pipeline
        if self.pipelines > 1:
            batches = batches.map(
                lambda *batch: tf.nest.map_structure(lambda t: t[start:start + rows], batch))
        if rows > self.batch_size:
            batches = batches.rebatch(self.batch_size, drop_remainder=True)
        return batches


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
        raise ValueError("grouping by length needs a variable-length feature (or pass length_fn)")
    return tf.reduce_max(tf.stack(lengths))


def unbatch_rows(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``unbatch`` whose ragged rows come out with dense specs (``padded_batch`` needs them).

    A row of a ragged batch is a plain tensor, but ``unbatch`` types it as a rank-0-ragged
    ``RaggedTensorSpec``; an identity map restores a ``TensorSpec``.
    """
    return dataset.unbatch().map(lambda element: tf.nest.map_structure(tf.identity, element))


def to_triples(label_key: str | None, split_fn: SplitFn | None):
    """``(batch dict, weights) -> (features, labels, weights)`` by ``split_fn`` or ``label_key``."""
    if split_fn is None and label_key is None:
        raise ValueError("pass label_key or split_fn")

    def to_triple(batch, weights):
        if split_fn is not None:
            features, labels = split_fn(batch)
        else:
            if label_key not in batch:
                raise ValueError(f"label_key {label_key!r} not in the features {sorted(batch)}")
            features = dict(batch)
            labels = features.pop(label_key)
        return features, labels, weights

    return to_triple


def _check_dict(ds: tf.data.Dataset) -> None:
    if not isinstance(ds.element_spec, dict):
        raise TypeError(f"expected a dataset of dicts, got {ds.element_spec}")


def _sort_chunk(chunk, lengths):
    order = tf.argsort(lengths, stable=True)
    return tf.nest.map_structure(lambda t: tf.gather(t, order), chunk)


def train_batches(ds: tf.data.Dataset, batch_size: int, *, seed: int, epoch: int = 0,
                  label_key: str | None = "label", split_fn: SplitFn | None = None,
                  group_by_length: bool = False, length_fn: LengthFn | None = None,
                  sort_chunk_batches: int = 50, static_shapes: bool = False,
                  static_lengths: Mapping[str, int | Sequence[int]] | None = None,
                  input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """One epoch of shuffled training batches ``(features, labels, weights)``.

    Args:
        ds: a dataset of dicts (one example each), in a fixed order, of known cardinality.
        batch_size: the per-replica batch size.
        seed, epoch: the shuffle order is a function of both (:func:`derive_seed`).
        label_key: the entry that becomes ``labels``; the rest are ``features``.
        split_fn: ``batch -> (features, labels)`` on each padded batch (a dict of batched
            tensors), instead of ``label_key``.
        group_by_length: put examples of similar length together (less padding on CPU/GPU);
            ignored with ``static_shapes``.
        length_fn: ``example -> length`` for the grouping; default: :func:`max_length`.
        sort_chunk_batches: global batches per sorted chunk.
        static_shapes: pad every batch to ``static_lengths`` (TPU/XLA).
        static_lengths: feature → padded length (or shape) for ``static_shapes``.
        input_context: from ``distribute_datasets_from_function``.

    Returns:
        A dataset of ``(features, labels, weights)`` per-replica batches, ``weights`` all 1.0;
        ``examples // global_batch`` steps' worth for this pipeline.
    """
    _check_dict(ds)
    layout = Layout.of(batch_size, input_context)
    size = int(ds.cardinality())
    if size < 0:
        raise ValueError("the dataset's cardinality is unknown: apply "
                         "tf.data.experimental.assert_cardinality")
    epoch_seed = derive_seed(seed, epoch)
    ds = ds.shuffle(max(1, size), seed=epoch_seed, reshuffle_each_iteration=False)
    shapes = padded_shapes(ds.element_spec, static_shapes=static_shapes,
                           static_lengths=static_lengths)
    if group_by_length and not static_shapes and sort_chunk_batches > 1:
        length_fn = length_fn or max_length
        chunks = (ds.map(lambda example: (example, tf.cast(length_fn(example), tf.int32)))
                  .ragged_batch(layout.global_batch * sort_chunk_batches)
                  .map(_sort_chunk, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True))
        ds = (unbatch_rows(chunks)
              .padded_batch(layout.global_batch, shapes, drop_remainder=True)
              .shuffle(sort_chunk_batches, seed=epoch_seed % (2**31),
                       reshuffle_each_iteration=False))
    else:
        ds = ds.padded_batch(layout.global_batch, shapes, drop_remainder=True)
    ds = layout.this_pipeline(ds.map(lambda batch: (batch, tf.ones([layout.global_batch]))))
    return ds.map(to_triples(label_key, split_fn)).prefetch(tf.data.AUTOTUNE)


def eval_batches(ds: tf.data.Dataset, batch_size: int, *, num_examples: int | None = None,
                 label_key: str | None = "label", split_fn: SplitFn | None = None,
                 static_shapes: bool = False,
                 static_lengths: Mapping[str, int | Sequence[int]] | None = None,
                 input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """Evaluation batches ``(features, labels, weights)`` covering every example exactly once.

    The split, in order, is followed by weight-0 copies of its first example up to
    ``steps × global_batch`` examples, ``steps = max(1, ceil(num_examples / global_batch))``
    (:func:`training.task.eval_steps`); each global batch is padded to its longest example
    and cut into this pipeline's per-replica batches, so every batch is full.

    Args:
        ds: a dataset of dicts, in order.
        batch_size: the per-replica batch size.
        num_examples: the number of examples; default: ``ds.cardinality()``.
        label_key, split_fn: as in :func:`train_batches`.
        static_shapes, static_lengths: as in :func:`train_batches`.
        input_context: from ``distribute_datasets_from_function``.

    Returns:
        A dataset of ``(features, labels, weights)``.

    Raises:
        ValueError: the number of examples is unknown, zero, or contradicts the cardinality.
    """
    _check_dict(ds)
    layout = Layout.of(batch_size, input_context)
    known = int(ds.cardinality())
    if num_examples is None:
        if known < 0:
            raise ValueError("the dataset's cardinality is unknown: pass num_examples")
        num_examples = known
    elif known >= 0 and known != num_examples:
        raise ValueError(f"num_examples={num_examples} but the dataset has {known} elements")
    if num_examples <= 0:
        raise ValueError("cannot evaluate an empty split")
    total = max(1, math.ceil(num_examples / layout.global_batch)) * layout.global_batch
    shapes = padded_shapes(ds.element_spec, static_shapes=static_shapes,
                           static_lengths=static_lengths)
    dummy = ds.take(1).map(lambda example: (example, tf.constant(0.0, tf.float32)))
    ds = ds.map(lambda example: (example, tf.constant(1.0, tf.float32)))
    ds = ds.concatenate(dummy.repeat(total - num_examples))
    ds = ds.padded_batch(layout.global_batch, padded_shapes=(shapes, tf.TensorShape([])),
                         drop_remainder=True)
    return layout.this_pipeline(ds).map(to_triples(label_key, split_fn)).prefetch(
        tf.data.AUTOTUNE)


def batches(ds: tf.data.Dataset, request: DataRequest, *, group_by_length: bool = False,
            length_fn: LengthFn | None = None, num_examples: int | None = None,
            **options) -> tf.data.Dataset:
    """:func:`train_batches` for a training ``request``, else :func:`eval_batches`.

    Args:
        ds: a dataset of dicts (one example each), in a fixed order.
        request: the split's batch size, seed, epoch, input context and shapes.
        group_by_length, length_fn: for training (see :func:`train_batches`).
        num_examples: for evaluation (see :func:`eval_batches`).
        **options: ``label_key``, ``split_fn``, ``static_lengths``, for both.
    """
    shared = dict(options, static_shapes=request.static_shapes,
                  input_context=request.input_context)
    if request.training:
        return train_batches(ds, request.batch_size, seed=request.seed, epoch=request.epoch,
                             group_by_length=group_by_length, length_fn=length_fn, **shared)
    return eval_batches(ds, request.batch_size, num_examples=num_examples, **shared)
