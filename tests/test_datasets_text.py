"""Tokenizer, vocabulary, ids in tf.data, captions, word vectors and image preprocessing."""

import struct

import keras
import numpy as np
import pytest
import tensorflow as tf

from datasets import captions, images, word_vectors
from datasets.errors import DataFormatError
from datasets.text import Vocabulary, WordTokenizer, encode_text


def tokens(tokenizer, text):
    return [t.decode() for t in tokenizer(tf.constant(text)).numpy()]


@pytest.mark.parametrize("text, expected", [
    ("The dog's t-shirt, isn't it?", ["the", "dog", "'s", "t-shirt", ",", "is", "n't", "it", "?"]),
    ("We'll CAN'T -- wait...", ["we", "'ll", "ca", "n't", "--", "wait", "..."]),
    ('O\'Neill paid $1,000.50 for "3.5" (U.S.)',
     ["o'neill", "paid", "$", "1,000.50", "for", '"', "3.5", '"', "(", "u.s", ".", ")"]),
    ("already tokenized : it 's a `` test '' .",
     ["already", "tokenized", ":", "it", "'s", "a", "``", "test", "''", "."]),
    ("Café's naïve 8\u00a01/2", ["café", "'s", "naïve", "8", "1", "/", "2"]),
    ("'quoted' merry-go -round", ["'", "quoted", "'", "merry-go", "-", "round"]),
])
def test_word_tokenizer_rules(text, expected):
    assert tokens(WordTokenizer(), text) == expected


def test_word_tokenizer_options():
    assert tokens(WordTokenizer(lowercase=False, split_punctuation=False), "A b,\u00a0c") == [
        "A", "b,", "c"]
    assert tokens(WordTokenizer(lowercase=False), "DON'T, Tom'S") == ["DO", "N'T", ",", "Tom",
                                                                       "'S"]
    assert tokens(WordTokenizer(drop_punctuation=True), "A dog's t-shirt , red .") == [
        "a", "dog", "'s", "t-shirt", "red"]
    ragged = WordTokenizer()(tf.constant([["a b", "c"], ["d", ""]]))
    assert ragged.shape.as_list() == [2, 2, None] and ragged.to_list()[1][1] == []
    assert WordTokenizer().tokenize_py(["Hi there!"]) == [["hi", "there", "!"]]


def test_vocabulary_build_order_limits_and_reserved():
    vocab = Vocabulary.build([["b", "a", "b"], ["c", "a", "<unk>"], ["d"]], min_count=1)
    assert vocab.tokens == ["<pad>", "<unk>", "a", "b", "c", "d"]
    assert vocab.pad_id == 0 and vocab.oov_id == 1
    assert Vocabulary.build([["b", "a", "b", "c"]], min_count=2).tokens == ["<pad>", "<unk>", "b"]
    assert Vocabulary.build([["b", "a", "b", "c"]], max_size=3).tokens == ["<pad>", "<unk>", "b"]
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary(["<pad>", "<unk>", "x", "x"])


def test_vocabulary_save_load_is_atomic(tmp_path):
    vocab = Vocabulary.build([["naïve", "x", "'s"]])
    path = tmp_path / "model" / "vocab.txt"
    vocab.save(str(path))
    vocab.save(str(path))  # overwrite
    assert Vocabulary.load(str(path)) == vocab
    assert sorted(p.name for p in path.parent.iterdir()) == ["vocab.txt"]
    assert path.read_text(encoding="utf-8").splitlines()[:2] == ["<pad>", "<unk>"]


def test_lookup_in_tf_data():
    vocab = Vocabulary.build([["a", "b", "a"]])
    assert vocab.lookup(tf.constant(["a", "zzz", "<pad>"])).numpy().tolist() == [2, 1, 0]
    ds = tf.data.Dataset.from_tensor_slices({"text": ["a b A", "zzz", "b"], "label": [1, 0, 1]})
    encoded = encode_text(ds, WordTokenizer(), vocab, max_length=2)
    assert encoded.element_spec["text_ids"] == tf.TensorSpec([None], tf.int64)
    assert "text" not in encoded.element_spec and int(encoded.cardinality()) == 3
    rows = list(encoded.as_numpy_iterator())
    assert [r["text_ids"].tolist() for r in rows] == [[2, 3], [1], [3]]
    assert [int(r["label"]) for r in rows] == [1, 0, 1]


def test_captions_vocabulary_and_encoding():
    vocab = captions.caption_vocabulary(["A dog's t-shirt , red .", "A red dog ."], max_words=3)
    assert vocab.tokens[:4] == ["<pad>", "<unk>", "<start>", "<end>"]
    assert vocab.tokens[4:] == ["a", "dog", "red"]
    flickr = tf.data.Dataset.from_tensor_slices({
        "image_id": ["x.jpg"], "image_path": ["/i/x.jpg"],
        "captions": [["A dog .", "A red dog's t-shirt runs far away .", "c", "d", "e"]]})
    pairs = captions.caption_pairs(flickr)
    assert int(pairs.cardinality()) == 5
    encoded = list(captions.encode_captions(pairs, vocab, max_length=5).as_numpy_iterator())
    assert [e["caption_ids"].tolist() for e in encoded[:2]] == [[2, 4, 5, 3], [2, 4, 6, 5, 3]]
    assert encoded[0]["image_id"] == b"x.jpg"


# ----------------------------------------------------------------------------- word vectors
def test_glove_package_rows():
    glove = word_vectors.load_vectors("glove-6b-50d")
    assert len(glove) == 400_000 and glove.dim == 50
    np.testing.assert_allclose(glove.vector("the")[:5], [0.418, 0.24968, -0.41242, 0.1217, 0.34527],
                               rtol=1e-5)
    np.testing.assert_allclose(glove.vector(",")[:3], [0.013441, 0.23682, -0.16899], rtol=1e-5)
    assert word_vectors.load_vectors("glove-6b-50d") is glove  # cached


def test_embedding_matrix_from_package():
    vocab = Vocabulary(["<pad>", "<unk>", "the", "qqqzzz-not-a-word", "dog"])
    matrix, found = word_vectors.embedding_matrix(vocab, "glove-6b-50d", seed=3)
    glove = word_vectors.load_vectors("glove-6b-50d")
    assert matrix.shape == (5, 50) and matrix.dtype == np.float32
    assert found.tolist() == [False, False, True, False, True]
    np.testing.assert_array_equal(matrix[2], glove.vector("the"))
    np.testing.assert_array_equal(matrix[4], glove.vector("dog"))
    assert not matrix[0].any()
    assert np.abs(matrix[[1, 3]]).max() <= 0.05 and matrix[3].any()
    again, _ = word_vectors.embedding_matrix(vocab, glove, seed=3)
    np.testing.assert_array_equal(matrix, again)


def test_glove_and_word2vec_files(tmp_path):
    glove_txt = tmp_path / "glove.txt"
    glove_txt.write_text("the 1 2 3\nnew york 4 5 6\n")
    vectors = word_vectors.load_vectors(str(glove_txt))
    assert vectors.dim == 3 and vectors.vector("new york").tolist() == [4, 5, 6]
    w2v_txt = tmp_path / "w2v.txt"
    w2v_txt.write_text("2 2\ncat 0.5 1\ndog 2 3\n")
    assert word_vectors.load_vectors(str(w2v_txt)).vector("dog").tolist() == [2, 3]
    w2v_bin = tmp_path / "w2v.bin"
    w2v_bin.write_bytes(b"2 2\n" + b"cat " + struct.pack("<2f", 0.5, 1) + b"\n"
                        + "naïve ".encode() + struct.pack("<2f", 2, 3) + b"\n")
    binary = word_vectors.load_vectors(str(w2v_bin))
    assert binary.vector("naïve").tolist() == [2, 3] and binary.vector("cat").tolist() == [0.5, 1]
    bad = tmp_path / "bad.txt"
    bad.write_text("the 1 2 3\nof 1 x 3\n")
    with pytest.raises(DataFormatError, match="line 2"):
        word_vectors.load_vectors(str(bad))
    w2v_bin.write_bytes(b"2 2\ncat " + struct.pack("<2f", 0.5, 1) + b"\ndog ")
    with pytest.raises(DataFormatError, match="truncated at entry 2"):
        word_vectors.load_vectors(str(w2v_bin))


# ----------------------------------------------------------------------------- images
def test_inception_preprocessing_matches_keras(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, [40, 30, 3], dtype=np.uint8)
    path = tmp_path / "x.jpg"
    path.write_bytes(tf.io.encode_jpeg(pixels, quality=100).numpy())
    image = images.load_image(str(path))
    decoded = tf.io.decode_jpeg(path.read_bytes(), channels=3)
    expected = keras.applications.inception_v3.preprocess_input(
        tf.image.resize(decoded, [299, 299]).numpy())
    assert image.shape == (299, 299, 3)
    np.testing.assert_allclose(image.numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(images.decode_image(tf.constant(str(path))).numpy(), expected,
                               atol=1e-6)
    (batch_paths, batch), = list(images.image_batches([str(path)], batch_size=4))
    assert batch.shape == (1, 299, 299, 3) and batch_paths.numpy()[0] == str(path).encode()


def test_encoder_preprocessing_matches_references(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, [30, 50, 3], dtype=np.uint8)
    path = tmp_path / "x.jpg"
    path.write_bytes(tf.io.encode_jpeg(pixels, quality=100).numpy())
    resized = tf.image.resize(tf.io.decode_jpeg(path.read_bytes(), channels=3), [224, 224]).numpy()
    vgg = images.load_image(str(path), 224, "caffe").numpy()
    np.testing.assert_allclose(vgg, keras.applications.vgg19.preprocess_input(resized.copy()),
                               atol=1e-4)
    lite = images.load_image(str(path), 224, "efficientnet_lite").numpy()
    np.testing.assert_allclose(lite, (resized - 127.0) / 128.0, atol=1e-6)
    (_, batch), = list(images.image_batches([str(path)], batch_size=4, size=224,
                                            preprocess="caffe"))
    np.testing.assert_allclose(batch.numpy()[0], vgg, atol=1e-4)
    custom = images.decode_image(tf.constant(str(path)), 224, lambda x: x / 255.0)
    np.testing.assert_allclose(custom.numpy(), resized / 255.0, atol=1e-6)
    with pytest.raises(ValueError, match=r"unknown image preprocessing 'vgg'.*'caffe'"):
        images.load_image(str(path), 224, "vgg")
    with pytest.raises(ValueError, match=r"unknown image preprocessing 'vgg'"):
        list(images.image_batches([str(path)], batch_size=4, preprocess="vgg"))
