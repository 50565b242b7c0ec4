"""Counts and label distributions on the real data directory (fails, never skips, without it)."""

import collections

import pytest

import datasets
from datasets import files, images, word_vectors
from datasets.text import Vocabulary, WordTokenizer


@pytest.fixture(scope="module")
def load(data_dir):
    """``load(name, split, **options)`` on the real data, each split parsed once per module."""
    cache = {}

    def _load(name, split, **options):
        key = (name, split, tuple(sorted(options.items())))
        if key not in cache:
            cache[key] = datasets.load(name, split, data_dir, **options)
        return cache[key]

    return _load


def test_sst5_counts_and_train_labels(load):
    assert [load("sst5", s).num_rows for s in ("train", "dev", "test")] == [8544, 1101, 2210]
    assert load("sst5", "train").label_counts() == {
        "very negative": 1092, "negative": 2218, "neutral": 1624, "positive": 2322,
        "very positive": 1288}


def test_sst2_counts(load):
    assert [load("sst2", s).num_rows for s in ("train", "dev", "test")] == [6920, 872, 1821]
    assert load("sst2", "train").dropped == {"neutral": 1624}
    assert load("sst2", "test").label_counts() == {"negative": 912, "positive": 909}


def test_sst_sentences_equal_the_staged_derived_tsv(load, data_dir):
    ours = datasets.load("sst5", "dev", data_dir, unescape_ptb=False)
    _, rows = files.read_tsv(files.join(data_dir, "sst/sst5_sentences/dev.tsv.gz"))
    assert ours.columns["text"] == [row["sentence"] for _, row in rows]
    assert ours.columns["label"] == [int(row["label"]) for _, row in rows]
    assert "-LRB-" not in " ".join(load("sst5", "dev").columns["text"])


def test_glue_sst2_counts(load):
    assert load("glue_sst2", "train").num_rows == 67349
    assert load("glue_sst2", "dev").label_counts() == {"negative": 428, "positive": 444}
    assert load("glue_sst2", "test").label_counts() == {"unlabelled": 1821}


def test_mrpc_counts_and_test_labels(load):
    assert [load("mrpc", s).num_rows for s in ("train", "dev", "test")] == [3668, 408, 1725]
    assert load("mrpc", "test").label_counts() == {"not_equivalent": 578, "equivalent": 1147}
    assert load("mrpc", "train").label_counts() == {"not_equivalent": 1194, "equivalent": 2474}


def test_snli_counts_and_sample(load):
    assert load("snli", "dev").label_counts() == {
        "entailment": 3329, "neutral": 3235, "contradiction": 3278}
    assert load("snli", "test").num_rows == 9824
    train = load("snli", "train")
    assert train.num_rows == 20000 and train.info["sample"] is True
    assert train.source[0].endswith("train_sample_20k.tsv.gz")


def test_imdb_counts(load):
    for split in ("train", "test"):
        assert load("imdb", split).label_counts() == {"neg": 12500, "pos": 12500}
    assert load("imdb", "train").columns["text"][0].startswith("Bromwell High is a cartoon comedy.")
    dev = load("imdb", "dev", dev_size=5000)
    assert dev.label_counts() == {"neg": 2500, "pos": 2500}
    assert load("imdb", "train", dev_size=5000).num_rows == 20000


def test_flickr8k_splits_captions_and_missing_images(load):
    expected = {"train": (6000, 753), "dev": (1000, 113), "test": (1000, 125)}
    for split, (listed, present) in expected.items():
        captions_only = load("flickr8k", split, require_images=False)
        assert captions_only.num_rows == listed
        assert all(len(c) == 5 for c in captions_only.columns["captions"])
        with_images = load("flickr8k", split)
        assert with_images.num_rows == present
        assert with_images.dropped == {"missing_image": listed - present}
        assert with_images.info["missing_images"] == listed - present
        assert len(with_images.info["missing_image_examples"]) == 10
    assert load("flickr8k", "train").info["renamed_ids"] == ["2258277193_586949ec62.jpg.1"]
    image = images.load_image(load("flickr8k", "test").columns["image_path"][0])
    assert image.shape == (299, 299, 3)


def test_glove_covers_the_sst2_vocabulary(load):
    tokenizer = WordTokenizer()
    vocab = Vocabulary.from_texts(load("sst2", "train").columns["text"], tokenizer)
    _, found = word_vectors.embedding_matrix(vocab, "glove-6b-50d")
    assert len(vocab) > 10000 and found.mean() > 0.9
    counts = collections.Counter(t for ts in tokenizer.tokenize_py(
        load("sst2", "dev").columns["text"]) for t in ts)
    covered = sum(c for t, c in counts.items() if t in vocab) / sum(counts.values())
    assert covered > 0.9
