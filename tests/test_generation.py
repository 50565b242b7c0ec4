"""Text generation (layers/generation.py): keras-hub's samplers and the shared beam search
against brute force on a tiny random language model."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from layers import decoding
from layers.generation import Decoding, generate

V, H, END, PAD = 5, 4, 2, 0
RNG = np.random.default_rng(3)
E = RNG.normal(size=(V, H)).astype("float32")
W = RNG.normal(size=(H, H)).astype("float32")
U = (2.0 * RNG.normal(size=(H, V))).astype("float32")
START = 3
STATE0 = RNG.normal(size=(1, H)).astype("float32")


def step(tokens, state):
    state = ops.tanh(ops.take(E, tokens, axis=0) + ops.matmul(state, W))
    return ops.matmul(state, U), state


def numpy_log_prob(tokens):
    """log p(tokens | start) by the same recurrence in numpy; stops after END."""
    state, previous, total = STATE0[0], START, 0.0
    for token in tokens:
        state = np.tanh(E[previous] + state @ W)
        logits = state @ U
        total += logits[token] - np.log(np.exp(logits).sum())
        if token == END:
            break
        previous = token
    return total


def run(decoding_):
    return generate(step, tf.constant(STATE0), start=START, end_id=END, pad_id=PAD,
                    decoding=decoding_)


def test_keras_hub_greedy_equals_the_argmax_loop_and_the_shared_greedy_search():
    out = run(Decoding("greedy", length=6))
    state, previous, expected = STATE0[0], START, []
    for _ in range(6):
        state = np.tanh(E[previous] + state @ W)
        previous = int(np.argmax(state @ U))
        expected.append(previous)
        if previous == END:
            break
    assert out.tokens == expected
    assert out.ended == (END in expected)
    assert out.log_prob == pytest.approx(numpy_log_prob(expected), abs=1e-4)
    shared = decoding.greedy_search(lambda p, s, c: (*step(p, s), ()), tf.constant(STATE0), (),
                                    start_id=START, end_id=END, pad_id=PAD, max_length=6)
    length = int(shared.lengths[0])
    assert shared.sequences[0, :length].numpy().tolist() == expected


def test_a_wide_beam_finds_the_most_probable_continuation():
    length = 4
    candidates = []
    for n in range(1, length + 1):  # ended by END, or cut at `length` tokens
        for body in itertools.product([t for t in range(V) if t != END], repeat=n - 1):
            candidates.append(list(body) + [END])
            if n == length:
                candidates += [list(body) + [t] for t in range(V) if t != END]
    best = max(candidates, key=numpy_log_prob)
    out = run(Decoding("beam", beam_width=V ** length, length=length))
    assert out.tokens == best
    assert out.log_prob == pytest.approx(numpy_log_prob(best), abs=1e-4)
    narrow = run(Decoding("beam", beam_width=1, length=length))
    assert narrow.tokens == run(Decoding("greedy", length=length)).tokens


def _draws(decoding_, logits, n=20000):
    """``n`` draws of the first token from one step's ``logits`` by the decoding's sampler."""
    batch = np.full((n, 2), PAD, np.int32)
    given = np.zeros_like(batch, dtype=bool)
    given[:, 0] = True
    fixed = tf.constant(np.tile(logits, (n, 1)))
    out = decoding_.sampler()(lambda prompt, cache, index: (fixed, None, cache),
                              tf.constant(batch), index=1, mask=tf.constant(given))
    return out.numpy()[:, 1]


LOGITS = np.array([2.0, 1.0, 0.5, 0.0, -1.0, 1.5], np.float32)


def _brute_force(kind, temperature, k=None, p=None):
    probs = np.exp(LOGITS / temperature)
    probs /= probs.sum()
    order = np.argsort(-probs)
    keep = np.zeros_like(probs, dtype=bool)
    if kind == "sample":
        keep[:] = True
    elif kind == "top_k":
        keep[order[:k]] = True
    else:  # the smallest set of most probable tokens whose probability reaches p
        total = 0.0
        for token in order:
            keep[token] = True
            total += probs[token]
            if total >= p:
                break
    kept = np.where(keep, probs, 0.0)
    return kept / kept.sum()


@pytest.mark.parametrize("kind, settings", [
    ("sample", {"temperature": 1.0}), ("sample", {"temperature": 0.5}),
    ("top_k", {"top_k": 3, "temperature": 1.0}), ("top_k", {"top_k": 2, "temperature": 2.0}),
    ("top_p", {"top_p": 0.6, "temperature": 1.0}), ("top_p", {"top_p": 0.9, "temperature": 0.7}),
])
def test_samplers_draw_from_the_brute_force_distribution(kind, settings):
    decoding_ = Decoding(kind, seed=11, **settings)
    draws = _draws(decoding_, LOGITS)
    expected = _brute_force(kind, settings["temperature"], k=settings.get("top_k"),
                            p=settings.get("top_p"))
    frequencies = np.bincount(draws, minlength=len(LOGITS)) / len(draws)
    assert np.all(frequencies[expected == 0] == 0), (frequencies, expected)
    np.testing.assert_allclose(frequencies, expected, atol=0.02)


def test_the_same_seed_gives_the_same_text_and_another_seed_another():
    texts = {seed: run(Decoding("sample", temperature=3.0, length=12, seed=seed)).tokens
             for seed in (1, 2)}
    assert run(Decoding("sample", temperature=3.0, length=12, seed=1)).tokens == texts[1]
    assert texts[1] != texts[2]


def test_a_continuation_stops_after_its_end_token_and_is_scored():
    for seed in range(5):
        out = run(Decoding("top_k", top_k=V, temperature=2.0, length=8, seed=seed))
        assert END not in out.tokens[:-1]
        assert out.ended == (out.tokens[-1] == END)
        assert out.ended or len(out.tokens) == 8
        assert out.log_prob == pytest.approx(numpy_log_prob(out.tokens), abs=1e-4)


@pytest.mark.parametrize("settings, message", [
    ({"decoding": "nucleus"}, "decoding='nucleus': must be one of"),
    ({"temperature": 0.0}, "temperature=0.0: must be a positive number"),
    ({"top_k": 0}, "top_k=0: must be at least 1"),
    ({"top_p": 1.5}, r"top_p=1.5: must be in \(0, 1\]"),
    ({"beam_width": 0}, "beam_width=0: must be at least 1"),
    ({"length": 0}, "length=0: must be at least 1"),
])
def test_bad_settings_are_refused_by_name(settings, message):
    with pytest.raises(ValueError, match=message):
        Decoding(**settings)


def test_describe_names_only_the_settings_a_method_uses():
    assert Decoding("greedy").describe() == {"decoding": "greedy", "length": 30}
    assert Decoding("top_p", top_p=0.8, seed=4).describe() == {
        "decoding": "top_p", "top_p": 0.8, "temperature": 1.0, "seed": 4, "length": 30}
