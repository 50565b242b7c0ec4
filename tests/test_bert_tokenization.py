"""BERT input features (datasets/wordpiece.py) against keras-hub and google-research/bert."""

import numpy as np
import pytest
import tensorflow as tf

from datasets import wordpiece
from papers.devlin2019 import encoders

SINGLES = [
    "Café déjà vu!",
    "naïve résumé — it's",
    "東京タワーは高い。中文字符",
    "Hello, WORLD!!! ...",
    "don't stop\tthe\nmusic",
    "The 1990s' G.D.P. (gross) $5.00 — 50%",
    "supercalifragilisticexpialidocious ÀÉÎÕÜ ñ ç",
    "x" * 120,
    "",
]
PAIRS = [
    ("Café déjà vu!", "naïve résumé — it's"),
    ("東京タワー", "a much longer sentence that will need truncation, for sure: yes!"),
    ("a much longer first sentence that will need truncation, for sure: yes!", "short"),
    (" ".join(["équipe"] * 40), " ".join(["naïveté"] * 40)),
    ("one", ""),
]


@pytest.fixture(scope="module")
def vocab_path():
    return encoders.resolve_encoder("minilm_l6_h384").vocab_path


@pytest.fixture(scope="module")
def keras_hub_tokenizer(vocab_path):
    import keras_hub
    return keras_hub.tokenizers.BertTokenizer(vocabulary=vocab_path, lowercase=True,
                                              strip_accents=True)


def _ids(x):
    return x.tolist() if hasattr(x, "tolist") else [list(r) for r in x]


def test_wordpieces_equal_keras_hub(vocab_path, keras_hub_tokenizer):
    ours = wordpiece.WordPieceEncoder(vocab_path).tokenize(tf.constant(SINGLES)).to_list()
    theirs = keras_hub_tokenizer(tf.constant(SINGLES))
    theirs = theirs.to_list() if hasattr(theirs, "to_list") else [list(map(int, r)) for r in
                                                                   theirs]
    assert ours == theirs
    cafe = ours[0]
    assert [keras_hub_tokenizer.id_to_token(i) for i in cafe] == ["cafe", "de", "##ja", "vu",
                                                                  "!"]


def test_wordpieces_follow_the_checkpoints_tokenizer_where_keras_hub_differs(vocab_path):
    # Ids of Hugging Face BertTokenizer(vocab.txt, do_lower_case=True), the tokenizer MiniLM
    # was trained with: format characters are deleted, compatibility characters are kept.
    expected = {
        "a\u200bb zero-width": [11113, 5717, 1011, 9381],   # "ab", not "a" "b"
        "I\u00b4m here": [1045, 29658, 2213, 2182],         # "i" "##´" "##m"
        "x\u00a0y\u3000z": [1060, 1061, 1062],
        "ctrl\x01char": [14931, 12190, 7507, 2099],
        "the \u01c5 sign": [1996, 100, 3696],
        "wait\u2026 what": [3524, 1529, 2054],               # "…" stays one token
    }
    got = wordpiece.WordPieceEncoder(vocab_path).tokenize(tf.constant(list(expected)))
    assert got.to_list() == list(expected.values())


@pytest.mark.parametrize("length", [8, 16, 128])
def test_pair_features_equal_keras_hub_preprocessor(vocab_path, keras_hub_tokenizer, length):
    import keras_hub

    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        keras_hub_tokenizer, sequence_length=length, truncate="round_robin")
    a = tf.constant([p[0] for p in PAIRS])
    b = tf.constant([p[1] for p in PAIRS])
    theirs = preprocessor(x=(a, b))
    ours = wordpiece.WordPieceEncoder(vocab_path, max_seq_length=length)(a, b)
    for key in ("token_ids", "segment_ids", "padding_mask"):
        np.testing.assert_array_equal(ours[key].numpy(),
                                      np.asarray(theirs[key]).astype("int32"), err_msg=key)


def test_single_features_equal_keras_hub_packer(vocab_path, keras_hub_tokenizer):
    import keras_hub

    packer = keras_hub.layers.MultiSegmentPacker(
        sequence_length=12, start_value=keras_hub_tokenizer.cls_token_id,
        end_value=keras_hub_tokenizer.sep_token_id, pad_value=0)
    texts = tf.constant(SINGLES)
    token_ids, segment_ids = packer(keras_hub_tokenizer(texts))
    ours = wordpiece.WordPieceEncoder(vocab_path, max_seq_length=12)(texts)
    np.testing.assert_array_equal(ours["token_ids"].numpy(), np.asarray(token_ids))
    np.testing.assert_array_equal(ours["segment_ids"].numpy(), np.asarray(segment_ids))
    np.testing.assert_array_equal(ours["padding_mask"].numpy(),
                                  (np.asarray(token_ids) != 0).astype("int32"))


def test_packing_layout_and_segment_ids(vocab_path):
    encoder = wordpiece.WordPieceEncoder(vocab_path, max_seq_length=12)
    features = encoder(tf.constant(["Café déjà vu!"]), tf.constant(["naïve résumé"]))
    # [CLS] cafe de ##ja vu ! [SEP] naive resume [SEP] [PAD] [PAD]
    assert features["token_ids"].numpy()[0].tolist() == [
        101, 7668, 2139, 3900, 24728, 999, 102, 15743, 13746, 102, 0, 0]
    assert features["segment_ids"].numpy()[0].tolist() == [0] * 7 + [1] * 3 + [0] * 2
    assert features["padding_mask"].numpy()[0].tolist() == [1] * 10 + [0] * 2
    assert all(v.dtype == tf.int32 for v in features.values())


def _truncate_seq_pair(len_a, len_b, budget):
    """google-research/bert run_classifier._truncate_seq_pair on lengths."""
    while len_a + len_b > budget:
        if len_a > len_b:
            len_a -= 1
        else:
            len_b -= 1
    return len_a, len_b


def test_longest_first_truncation_matches_google_research_bert():
    lengths = np.array([(a, b) for a in range(25) for b in range(25)])
    for budget in (1, 2, 5, 10, 13, 29):
        keep_a, keep_b = wordpiece.truncated_pair_lengths(
            tf.constant(lengths[:, 0]), tf.constant(lengths[:, 1]), budget)
        expected = np.array([_truncate_seq_pair(a, b, budget) for a, b in lengths])
        np.testing.assert_array_equal(keep_a.numpy(), expected[:, 0])
        np.testing.assert_array_equal(keep_b.numpy(), expected[:, 1])


def test_truncation_drops_the_last_tokens_of_the_longer_segment(vocab_path):
    encoder = wordpiece.WordPieceEncoder(vocab_path, max_seq_length=10)
    a, b = "one two three four five six seven", "alpha"
    pieces_a = encoder.tokenize(tf.constant([a])).to_list()[0]
    pieces_b = encoder.tokenize(tf.constant([b])).to_list()[0]
    ids = encoder(tf.constant([a]), tf.constant([b]))["token_ids"].numpy()[0].tolist()
    keep_a = 10 - 3 - len(pieces_b)
    assert ids == [101] + pieces_a[:keep_a] + [102] + pieces_b + [102]


def test_head_tail_truncation_keeps_the_first_and_last_pieces(vocab_path):
    words = " ".join(f"w{i}" for i in range(60))
    encoder = wordpiece.WordPieceEncoder(vocab_path, max_seq_length=12, truncation="head_tail",
                                         head_tokens=4)
    pieces = encoder.tokenize(tf.constant([words])).to_list()[0]
    ids = encoder(tf.constant([words, "short text"]))["token_ids"].numpy()
    assert ids[0].tolist() == [101] + pieces[:4] + pieces[-6:] + [102]
    short = encoder.tokenize(tf.constant(["short text"])).to_list()[0]
    assert ids[1, :len(short) + 2].tolist() == [101] + short + [102]
    with pytest.raises(ValueError, match="head_tokens"):
        wordpiece.WordPieceEncoder(vocab_path, max_seq_length=12, truncation="head_tail",
                                   head_tokens=11)
    with pytest.raises(ValueError, match="single texts"):
        encoder(tf.constant(["a"]), tf.constant(["b"]))


def _examples(n):
    texts = [" ".join(["word"] * (1 + i % 9)) for i in range(n)]
    return tf.data.Dataset.from_tensor_slices({"text": texts, "label": np.arange(n)})


def test_train_batches_bucket_by_length_without_dropping_examples(vocab_path):
    encoder = wordpiece.WordPieceEncoder(vocab_path, max_seq_length=16)
    batches = list(wordpiece.train_batches(_examples(100), encoder, ["text"], 8, seed=1))
    assert len(batches) == 100 // 8
    labels = np.concatenate([y.numpy() for _, y, _ in batches])
    assert len(set(labels.tolist())) == 96
    widths = [f["token_ids"].shape[1] for f, _, _ in batches]
    assert max(widths) <= 11 and min(widths) < max(widths)
    for features, _, weights in batches:
        assert weights.numpy().tolist() == [1.0] * 8
        mask = features["padding_mask"].numpy()
        assert (mask.sum(1) == (features["token_ids"].numpy() != 0).sum(1)).all()
    again = list(wordpiece.train_batches(_examples(100), encoder, ["text"], 8, seed=1))
    assert all((y1.numpy() == y2.numpy()).all() for (_, y1, _), (_, y2, _) in
               zip(batches, again))


def test_static_shapes_and_eval_padding(vocab_path):
    encoder = wordpiece.WordPieceEncoder(vocab_path, max_seq_length=16)
    train = list(wordpiece.train_batches(_examples(20), encoder, ["text"], 8, seed=0,
                                         static_shapes=True))
    assert [f["token_ids"].shape for f, _, _ in train] == [(8, 16), (8, 16)]
    evals = list(wordpiece.eval_batches(_examples(20), encoder, ["text"], 8, num_examples=20,
                                        static_shapes=True))
    assert len(evals) == 3
    labels = np.concatenate([y.numpy() for _, y, _ in evals])
    weights = np.concatenate([w.numpy() for _, _, w in evals])
    assert labels[:20].tolist() == list(range(20)) and weights.sum() == 20
    assert weights[20:].tolist() == [0.0] * 4
