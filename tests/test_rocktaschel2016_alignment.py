"""Rocktäschel et al. 2016: the attention statistics against a brute-force count, the synthetic
alignment task's data, and word-by-word attention learning to align on it."""

import math

import numpy as np
import pytest

from papers import registry
from papers.rocktaschel2016 import alignment, attention_stats
from training import loop


def brute_force(attention, premise, hypothesis, content, weights, delimiter_row):
    """The statistics of ``attention_stats``' docstring, one row at a time, in plain Python."""
    sums, counts = {}, {}

    def add(name, value, uniform):
        sums[name] = sums.get(name, 0.0) + value
        sums[name + "_uniform"] = sums.get(name + "_uniform", 0.0) + uniform
        counts[name] = counts.get(name, 0) + 1

    for b in np.flatnonzero(weights > 0):
        words = [int(t) for t in premise[b] if t]
        hyp = [int(t) for t in hypothesis[b] if t]
        n = len(words)
        if attention.ndim == 2:
            rows = [(None, attention[b])]
        else:
            row_words = ([None] if delimiter_row else []) + [int(t) for t in hypothesis[b]]
            rows = [(w, attention[b, r]) for r, w in enumerate(row_words) if w != 0]
        shared = [i for i in range(n) if content[words[i]] and words[i] in hyp]
        after = [i for i in shared if i > 0]
        for word, alpha in rows:
            alpha = [float(a) for a in alpha[:n]]
            add("entropy", -sum(a * math.log(a) for a in alpha if a > 0), math.log(n))
            add("first", alpha[0], 1 / n)
            if shared:
                add("shared", sum(alpha[i] for i in shared), len(shared) / n)
            if after:
                add("shared_after_first", sum(alpha[i] for i in after) / sum(alpha[1:]),
                    len(after) / (n - 1))
            same = [i for i in range(n) if words[i] == word and content[word]]
            if attention.ndim == 3 and same:
                add("aligned", sum(alpha[i] for i in same), len(same) / n)
    return {f"attention_{k}": v / counts[k.replace("_uniform", "")] for k, v in sums.items()}


def _random_batch(rng, rows):
    batch, length, words, vocab = 16, 6, 4, 7
    premise = np.zeros((batch, length), np.int32)
    hypothesis = np.zeros((batch, words), np.int32)
    for b in range(batch):
        n, m = rng.integers(1, length + 1), rng.integers(0, words + 1)
        premise[b, :n] = rng.integers(1, vocab, n)
        hypothesis[b, :m] = rng.integers(1, vocab, m)
    premise[0, :3] = [4, 4, 5]                 # a repeated word, and position 0 shared
    hypothesis[0, :2] = [4, 8]
    real = premise > 0
    alpha = rng.dirichlet(np.ones(length), (batch, rows)).astype(np.float32) * real[:, None]
    alpha /= alpha.sum(-1, keepdims=True)
    content = rng.random(vocab) < 0.7
    content[[0, 4]] = [False, True]
    weights = np.ones(batch, np.float32)
    weights[-1] = 0.0                           # evaluation padding
    return alpha, premise, hypothesis, content, weights


@pytest.mark.parametrize("kind", ["attention", "word_by_word", "word_by_word_delimiter"])
def test_attention_statistics_equal_a_brute_force_count(kind):
    rng = np.random.default_rng(3)
    delimiter_row = kind == "word_by_word_delimiter"
    rows = 1 if kind == "attention" else 4 + delimiter_row
    alpha, premise, hypothesis, content, weights = _random_batch(rng, rows)
    if kind == "attention":
        alpha = alpha[:, 0]
    sums = attention_stats.per_example(alpha, premise, hypothesis, content,
                                       delimiter_row=delimiter_row)
    gathered = {k: v.numpy() for k, v in sums.items()}
    got = attention_stats.summarise({**gathered, "weights": weights})
    want = brute_force(alpha, premise, hypothesis, content, weights, delimiter_row)
    assert ("attention_aligned" in got) == (kind != "attention")
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    real_rows = (len(alpha) - 1 if kind == "attention" else
                 int((hypothesis[:-1] > 0).sum()) + delimiter_row * (len(alpha) - 1))
    assert got["attention_rows"] == real_rows
    names = ["entropy", "first", "shared", "shared_after_first"] + \
        (["aligned"] if kind != "attention" else [])
    assert set(got) == {f"attention_{n}{end}" for n in names for end in ("", "_uniform")} | {
        f"attention_{n}_rows" for n in names[2:]} | {"attention_rows"}


def test_content_words_leave_out_function_words_punctuation_and_reserved_tokens():
    got = attention_stats.content_words(["<pad>", "<unk>", "A", "man", ".", "is", "guitar", "'s"])
    assert got.tolist() == [False, False, False, True, False, False, True, False]


def test_alignment_data_needs_the_premise_word_before_the_match():
    rng = np.random.default_rng(0)
    data = alignment.generate(500, num_words=12, min_premise_words=3, premise_words=6,
                              hypothesis_words=2, rng=rng)
    for premise, hypothesis, label, position, row in zip(
            data["premise"], data["hypothesis"], data["label"], data["position"], data["row"]):
        words = [int(t) for t in premise if t]
        assert 3 <= len(words) <= 6 and len(set(words)) == len(words)
        matches = [(j, words.index(t)) for j, t in enumerate(hypothesis) if t in words]
        assert matches == [(row, position)] and position >= 1
        assert label == (words[position - 1] - alignment.FIRST_WORD) % alignment.CLASSES
    assert set(data["position"]) == {1, 2, 3, 4, 5} and set(data["row"]) == {0, 1}
    assert np.bincount(data["label"]).min() > 120          # three classes, none rare


def test_word_by_word_attention_learns_the_alignment(tmp_path):
    """Without the premise's state handed on, the hypothesis LSTM sees the premise only through
    the attention: word-by-word attention must learn to put its weight on the premise word that
    the hypothesis word names (uniform weights put 1 / premise length there). Small and fast:
    one hypothesis word, k = 32, 400 steps of 256 pairs; the registered row (two hypothesis
    words, k = 100) is in results/rocktaschel2016.md."""
    exp = registry.get("rocktaschel2016/align_word_by_word")
    params = exp.params_with_overrides(
        "hand_on=none,k=32,learning_rate=1e-2,num_words=8,premise_words=5,hypothesis_words=1,"
        "batch_size=256,train_examples=102400,dev_examples=1000,test_examples=200,epochs=1")
    config = loop.RunConfig(model_dir=str(tmp_path / "run"), data_dir=None, verbose=False,
                            cache_dir=str(tmp_path / "cache"))
    dev = loop.train(exp, params, config).results["metrics"]["dev"]
    assert dev["accuracy"] > 95.0, dev
    assert dev["match_weight"] >= 0.9 and dev["attention_aligned_uniform"] < 0.3, dev
