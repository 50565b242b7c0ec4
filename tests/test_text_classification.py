"""The SST ladder's models and task: padding invariance, GloVe initialisation, bag-of-words
features, the vocabulary file, nested subsets."""

import numpy as np
import pytest
import tensorflow as tf

from datasets import text, word_vectors
from datasets.batching import DataRequest
from papers import registry
from papers.baselines.experiments import SEQUENCE_MODELS
from training.task import RunEnv


def _task(name, data_dir, tmp_path, **overrides):
    exp = registry.get(name)
    task = exp.make_task(exp.params_with_overrides(overrides), data_dir, str(tmp_path))
    task.prepare(RunEnv(cache_dir=str(tmp_path / "cache")))
    return task


@pytest.mark.parametrize("kind", SEQUENCE_MODELS)
def test_extra_padding_does_not_change_a_prediction(kind, data_dir, tmp_path):
    task = _task(f"cho2014/sst2_{kind}", data_dir, tmp_path, hidden=8, embedding_dim=8)
    model = task.build_model()
    features, _, _ = next(iter(task.dataset(DataRequest("dev", batch_size=8))))
    padded = tf.pad(features, [[0, 0], [0, 7]])  # PAD id 0
    np.testing.assert_allclose(model(features, training=False), model(padded, training=False),
                               atol=1e-5)


def test_glove_initialisation_copies_the_package_vectors(data_dir, tmp_path):
    task = _task("cho2014/sst2_gru", data_dir, tmp_path, glove=True, hidden=8)
    model = task.build_model()
    matrix = model.get_layer("embedding").get_weights()[0]
    vectors = word_vectors.load_vectors("glove-6b-50d")
    for word in ("the", "movie", "good", "boring"):
        row = task.vocab.token_id(word)
        assert row != text.Vocabulary.oov_id
        np.testing.assert_allclose(matrix[row], vectors.vector(word), rtol=1e-6)
    np.testing.assert_array_equal(matrix[text.Vocabulary.pad_id], 0.0)


def test_glove_needs_50_dimensions(data_dir, tmp_path):
    task = _task("cho2014/sst2_gru", data_dir, tmp_path, glove=True, embedding_dim=64)
    with pytest.raises(ValueError, match="embedding_dim=50"):
        task.build_model()


def test_bag_of_words_counts_words_and_ignores_padding(data_dir, tmp_path):
    task = _task("baselines/sst2_bow_logreg", data_dir, tmp_path)
    features, labels, weights = next(iter(
        task.dataset(DataRequest("dev", batch_size=4))))
    first = task.split("dev").columns["text"][0]
    ids = [task.vocab.token_id(t) for t in task.tokenizer.tokenize_py([first])[0]]
    expected = np.bincount(ids, minlength=len(task.vocab)).astype("float32")
    np.testing.assert_array_equal(features[0], expected)
    assert features.shape == (4, len(task.vocab)) and float(features[0, 0]) == 0.0


def test_phrases_option_trains_on_every_labelled_phrase(data_dir, tmp_path):
    task = _task("cho2014/sst2_gru", data_dir, tmp_path, phrases=True)
    assert task.num_examples("train") == 77616
    assert task.num_examples("dev") == 872  # evaluation stays on sentences


def test_the_vocabulary_is_built_once_and_read_back_by_a_resumed_run(data_dir, tmp_path):
    task = _task("baselines/sst2_bow_logreg", data_dir, tmp_path, min_count=2)
    path = tmp_path / "vocab.txt"
    assert path.read_text().split("\n")[:-1] == task.vocab.tokens
    path.write_text("<pad>\n<unk>\nonly\n")  # what a resumed run finds is what it uses
    again = _task("baselines/sst2_bow_logreg", data_dir, tmp_path, min_count=2)
    assert again.vocab.tokens == ["<pad>", "<unk>", "only"]
    assert again.split("train") is again.split("train")  # each split is loaded once


def test_nested_subsets_grow_inside_each_other(data_dir):
    import datasets

    train = datasets.load("sst2", "train", data_dir)
    small, large = train.subset(100, seed=3), train.subset(1000, seed=3)
    assert len(small) == 100 and len(large) == 1000 and set(small) <= set(large)
    assert list(small) == sorted(small) and np.array_equal(small, train.subset(100, seed=3))
    assert not np.array_equal(small, train.subset(100, seed=4))
    np.testing.assert_array_equal(train.subset(0, seed=3), np.arange(train.num_rows))
    np.testing.assert_array_equal(train.subset(10 ** 6, seed=3), np.arange(train.num_rows))
