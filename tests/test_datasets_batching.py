"""Batches (features, labels, weights): padding, bucketing, static shapes, seeds and sharding."""

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


def test_eval_sharded_pipelines_cover_the_split_with_equal_steps():
    n, batch, replicas, pipelines = 23, 3, 4, 2
    steps = eval_steps(n, batch * replicas)
    all_real = []
    for pipeline_id in range(pipelines):
        ds = batching.eval_batches(examples(n), batch,
                                   input_context=context(pipelines, pipeline_id, replicas))
        seen, weights, shapes = collect(ds)
        assert len(shapes) == steps * replicas // pipelines  # per-replica batches of this worker
        all_real += real(seen, weights)
    assert sorted(all_real) == list(range(n))


def test_static_shapes_are_fully_defined():
    train = batching.train_batches(examples(), 4, seed=0, static_shapes=True,
                                   static_lengths={"ids": 7}, bucket_boundaries=[3, 5])
    evaluation = batching.eval_batches(examples(), 4, static_shapes=True,
                                       static_lengths={"ids": 7})
    for ds in (train, evaluation):
        for spec in tf.nest.flatten(ds.element_spec):
            assert spec.shape.is_fully_defined(), ds.element_spec
    with pytest.raises(ValueError, match="static_shapes needs a length for feature 'ids'"):
        batching.train_batches(examples(), 4, seed=0, static_shapes=True)


def train_order(seed, epoch, **kwargs):
    ds = batching.train_batches(examples(), 4, seed=seed, epoch=epoch, drop_remainder=False,
                                **kwargs)
    return collect(ds)[0].tolist()


def test_train_order_is_a_function_of_seed_and_epoch():
    first = train_order(1, 0)
    assert sorted(first) == list(range(23))
    assert train_order(1, 0) == first
    assert train_order(1, 1) != first
    assert train_order(2, 0) != first
    ds = batching.train_batches(examples(), 4, seed=1, epoch=0, drop_remainder=False)
    assert collect(ds)[0].tolist() == collect(ds)[0].tolist()  # no reshuffle on re-iteration


def test_train_drops_only_the_remainder():
    seen, weights, shapes = collect(batching.train_batches(examples(23), 4, seed=0))
    assert len(seen) == 20 and len(set(seen.tolist())) == 20 and weights.min() == 1.0
    assert all(s[0] == 4 for s in shapes)


def test_train_sharding_partitions_the_data():
    shards = [set(train_order(0, 0, input_context=context(3, i, 3))) for i in range(3)]
    assert set().union(*shards) == set(range(23))
    assert sum(len(s) for s in shards) == 23
    assert shards[1] == set(range(1, 23, 3))


def test_bucketing_pads_to_the_bucket_and_keeps_examples():
    ds = batching.train_batches(examples(40), 3, seed=0, bucket_boundaries=[3, 5],
                                drop_remainder=False)
    seen = []
    for features, _, _ in ds.as_numpy_iterator():
        lengths = (features["ids"] > 0).sum(axis=1)
        assert features["ids"].shape[1] == lengths.max()
        bucket = np.digitize(lengths, [3, 5])
        assert len(set(bucket.tolist())) == 1  # one bucket per batch
        seen += features["example"].tolist()
    assert sorted(seen) == list(range(40))


def test_split_fn_and_errors():
    ds = batching.eval_batches(examples(5), 2,
                               split_fn=lambda ex: (ex["ids"], ex["label"]))
    features, labels, weights = next(iter(ds))
    assert features.dtype == tf.int64 and features.shape[0] == 2 and weights.dtype == tf.float32
    with pytest.raises(ValueError, match="num_examples=4"):
        batching.eval_batches(examples(5), 2, num_examples=4)
    with pytest.raises(ValueError, match="empty"):
        batching.eval_batches(examples(5).take(0), 2)


def test_derive_seed():
    assert batching.derive_seed(1, 0) == batching.derive_seed(1, 0)
    assert batching.derive_seed(1, 0) != batching.derive_seed(1, 1)
    assert 0 <= batching.derive_seed(123, 45) < 2**63
