"""Batches (features, labels, weights): global batches cut per replica, order, padding,
grouping by length, static shapes and seeds."""

import numpy as np
import pytest
import tensorflow as tf

from datasets import batching
from training.task import eval_steps


def examples(n: int = 23) -> tf.data.Dataset:
    """Example i has id i, label i % 3 and a sequence of 1 + i % 7 tokens, all equal to i + 1."""
    lengths = [1 + i % 7 for i in range(n)]
    ids = tf.ragged.constant([[i + 1] * length for i, length in enumerate(lengths)], tf.int64)
    ds = tf.data.Dataset.from_tensor_slices({"ids": ids, "example": tf.range(n, dtype=tf.int64),
                                             "label": tf.constant([i % 3 for i in range(n)],
                                                                  tf.int64)})
    return ds.map(lambda ex: {**ex, "ids": ex["ids"]})  # ragged rows → dense [None]


def collect(ds):
    seen, weights, shapes = [], [], []
    for features, labels, w in ds.as_numpy_iterator():
        seen.append(features["example"])
        weights.append(w)
        shapes.append(features["ids"].shape)
        np.testing.assert_array_equal(labels, features["example"] % 3)
    return np.concatenate(seen), np.concatenate(weights), shapes


def real(seen, weights):
    return seen[weights > 0].tolist()


def context(pipelines, pipeline_id, replicas):
    return tf.distribute.InputContext(num_input_pipelines=pipelines,
                                      input_pipeline_id=pipeline_id,
                                      num_replicas_in_sync=replicas)


def global_steps(make, batch_size, pipelines, replicas):
    """What each step of a ``pipelines``-worker, ``replicas``-replica run sees, replica by
    replica in replica order: ``[(examples, padded length) per replica] per step``."""
    per_pipeline = replicas // pipelines
    streams = [list(make(batch_size, context(pipelines, p, replicas)).as_numpy_iterator())
               for p in range(pipelines)]
    assert len({len(s) for s in streams}) == 1
    steps = []
    for s in range(len(streams[0]) // per_pipeline):
        step = []
        for stream in streams:
            for features, _, weights in stream[s * per_pipeline:(s + 1) * per_pipeline]:
                step.append((features["example"].tolist(), weights.tolist(),
                             features["ids"].shape[1]))
        steps.append(step)
    return steps


def flat(steps):
    """Per step: the global batch's examples, weights and the set of padded lengths."""
    return [(sum((r[0] for r in step), []), sum((r[1] for r in step), []),
             {r[2] for r in step}) for step in steps]


@pytest.mark.parametrize("static", [False, True])
def test_eval_keeps_every_example_once_in_order(static):
    ds = batching.eval_batches(examples(23), 4, static_shapes=static,
                               static_lengths={"ids": 8})
    seen, weights, shapes = collect(ds)
    assert real(seen, weights) == list(range(23))
    assert len(seen) == 24 and weights.sum() == 23 and set(weights) == {0.0, 1.0}
    assert len(shapes) == eval_steps(23, 4)
    if static:
        assert all(s == (4, 8) for s in shapes)


@pytest.mark.parametrize("pipelines, replicas", [(1, 2), (2, 2), (2, 4)])
def test_eval_gathered_in_replica_order_is_the_split_in_order(pipelines, replicas):
    """Gathering each step's per-replica outputs in replica order gives example i at row i."""
    n, batch = 23, 3
    make = lambda b, ctx: batching.eval_batches(examples(n), b, input_context=ctx)  # noqa
    rows = flat(global_steps(make, batch, pipelines, replicas))
    assert len(rows) == eval_steps(n, batch * replicas)
    order = sum((examples_ for examples_, _, _ in rows), [])
    weights = sum((w for _, w, _ in rows), [])
    assert order[:n] == list(range(n)) and weights[:n] == [1.0] * n
    assert weights[n:] == [0.0] * (len(order) - n)
    assert all(len(lengths) == 1 for _, _, lengths in rows)  # replicas share a padded length


@pytest.mark.parametrize("grouped", [False, True])
def test_training_batches_do_not_depend_on_the_layout(grouped):
    """Global batch 8 as one replica of 8, two replicas of 4, or two workers of 4 each."""
    def make(b, ctx):
        return batching.train_batches(examples(50), b, seed=3, epoch=1, input_context=ctx,
                                      group_by_length=grouped, sort_chunk_batches=3)

    one = flat(global_steps(make, 8, 1, 1))
    assert len(one) == 50 // 8
    for pipelines, replicas in [(1, 2), (2, 2)]:
        assert flat(global_steps(make, 4, pipelines, replicas)) == one


def test_static_shapes_are_fully_defined():
    train = batching.train_batches(examples(), 4, seed=0, static_shapes=True,
                                   static_lengths={"ids": 7}, group_by_length=True)
    evaluation = batching.eval_batches(examples(), 4, static_shapes=True,
                                       static_lengths={"ids": 7})
    two = batching.train_batches(examples(), 4, seed=0, static_shapes=True,
                                 static_lengths={"ids": 7}, input_context=context(2, 1, 2))
    for ds in (train, evaluation, two):
        for spec in tf.nest.flatten(ds.element_spec):
            assert spec.shape.is_fully_defined(), ds.element_spec
    with pytest.raises(ValueError, match="static_shapes needs a length for feature 'ids'"):
        batching.train_batches(examples(), 4, seed=0, static_shapes=True)


def train_order(seed, epoch, **kwargs):
    return collect(batching.train_batches(examples(), 1, seed=seed, epoch=epoch, **kwargs))[0]


def test_train_order_is_a_function_of_seed_and_epoch():
    first = train_order(1, 0).tolist()
    assert sorted(first) == list(range(23))
    assert train_order(1, 0).tolist() == first
    assert train_order(1, 1).tolist() != first
    assert train_order(2, 0).tolist() != first
    ds = batching.train_batches(examples(), 1, seed=1, epoch=0)
    assert collect(ds)[0].tolist() == collect(ds)[0].tolist()  # no reshuffle on re-iteration


def test_train_drops_only_the_remainder_of_the_global_batch():
    seen, weights, shapes = collect(batching.train_batches(examples(23), 4, seed=0))
    assert len(seen) == 20 and len(set(seen.tolist())) == 20 and weights.min() == 1.0
    assert all(s[0] == 4 for s in shapes)
    make = lambda b, ctx: batching.train_batches(examples(23), b, seed=0,  # noqa: E731
                                                 input_context=ctx)
    rows = flat(global_steps(make, 3, 1, 2))
    assert len(rows) == 23 // 6 and len(set(sum((r[0] for r in rows), []))) == 18


def test_grouping_by_length_keeps_every_example_and_pads_less():
    n, batch = 200, 4

    def padding(ds):
        total = 0
        seen = []
        for features, _, _ in ds.as_numpy_iterator():
            lengths = (features["ids"] > 0).sum(axis=1)
            assert features["ids"].shape[1] == lengths.max()
            total += int((features["ids"].shape[1] - lengths).sum())
            seen += features["example"].tolist()
        return total, seen

    grouped, seen = padding(batching.train_batches(examples(n), batch, seed=0,
                                                   group_by_length=True, sort_chunk_batches=10))
    plain, _ = padding(batching.train_batches(examples(n), batch, seed=0))
    assert sorted(seen) == list(range(n))  # n is a multiple of the batch: nothing dropped
    assert grouped < plain / 3


def test_split_fn_and_errors():
    ds = batching.eval_batches(examples(5), 2,
                               split_fn=lambda ex: (ex["ids"], ex["label"]))
    features, labels, weights = next(iter(ds))
    assert features.dtype == tf.int64 and features.shape[0] == 2 and weights.dtype == tf.float32
    with pytest.raises(ValueError, match="num_examples=4"):
        batching.eval_batches(examples(5), 2, num_examples=4)
    with pytest.raises(ValueError, match="empty"):
        batching.eval_batches(examples(5).take(0), 2)
    with pytest.raises(ValueError, match="batch size must be at least 1"):
        batching.train_batches(examples(5), 0, seed=0)


def test_derive_seed():
    assert batching.derive_seed(1, 0) == batching.derive_seed(1, 0)
    assert batching.derive_seed(1, 0) != batching.derive_seed(1, 1)
    assert 0 <= batching.derive_seed(123, 45) < 2**63
