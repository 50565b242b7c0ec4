"""Shared decoding (layers/decoding.py) against brute force on a tiny random decoder."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from layers.decoding import beam_search, greedy_search, score_sequences

V, H, L, MAX = 4, 3, 5, 4          # vocabulary, state size, attended positions, max length
PAD, START, END = 0, 1, 2
RNG = np.random.default_rng(7)
E = RNG.normal(size=(V, H)).astype("float32")
W = RNG.normal(size=(H, H)).astype("float32")
U = (2.0 * RNG.normal(size=(H, V))).astype("float32")
A = RNG.normal(size=(H, L)).astype("float32")
BATCH = 6


def step_fn(previous, state, constants):
    """An LSTM-like step with nested state (h, c), a per-example constant and an attention
    extra: enough structure for every code path of the search."""
    h, c = state
    c = 0.5 * c + ops.tanh(ops.take(E, previous, axis=0) + ops.matmul(h, W) + constants["bias"])
    h = ops.tanh(c)
    return ops.matmul(h, U), (h, c), {"attention": ops.softmax(ops.matmul(h, A), axis=-1)}


def start():
    bias = RNG.normal(size=(BATCH, H)).astype("float32")
    zeros = np.zeros((BATCH, H), "float32")
    return (tf.constant(zeros), tf.constant(zeros)), {"bias": tf.constant(bias)}


STATE, CONSTANTS = start()


def numpy_log_probs(example, sequence):
    """log p(y) of one example's sequence by the step in numpy; stops after <end>."""
    h = np.zeros(H, "float32")
    c = np.zeros(H, "float32")
    bias = CONSTANTS["bias"].numpy()[example]
    previous, total = START, 0.0
    for token in sequence:
        c = 0.5 * c + np.tanh(E[previous] + h @ W + bias)
        h = np.tanh(c)
        logits = h @ U
        total += logits[token] - np.log(np.exp(logits).sum())
        if token == END:
            break
        previous = token
    return total


def all_sequences():
    """Every hypothesis a search can end with: ended by <end>, or cut at MAX tokens."""
    for length in range(1, MAX + 1):
        for body in itertools.product([t for t in range(V) if t != END], repeat=length - 1):
            yield body + (END,)
        if length == MAX:
            yield from itertools.product([t for t in range(V) if t != END], repeat=MAX)


def search(beam_width, **kwargs):
    return beam_search(step_fn, STATE, CONSTANTS, beam_width=beam_width, start_id=START,
                       end_id=END, pad_id=PAD, max_length=MAX, **kwargs)


def test_beam_search_finds_the_most_probable_sequence_by_enumeration():
    beams = search(V ** (MAX - 1))  # enough beams to keep every prefix that can win
    candidates = list(all_sequences())
    for example in range(BATCH):
        scores = [numpy_log_probs(example, s) for s in candidates]
        best = candidates[int(np.argmax(scores))]
        found = beams.sequences[example, 0].numpy().tolist()
        assert found[:len(best)] == list(best) and set(found[len(best):]) <= {PAD}
        np.testing.assert_allclose(beams.log_probs[example, 0], max(scores), rtol=1e-5)


def test_every_beam_scores_its_sequence_and_ranks_best_first():
    for alpha in (0.0, 1.0):
        beams = search(5, length_penalty=alpha)
        sequences = beams.sequences.numpy()
        lengths = beams.lengths.numpy()
        for example in range(BATCH):
            for b in range(5):
                sequence = sequences[example, b]
                ends = np.flatnonzero(sequence == END)
                assert lengths[example, b] == (ends[0] + 1 if ends.size else MAX)
                assert set(sequence[lengths[example, b]:]) <= {PAD}
                expected = numpy_log_probs(example, sequence[:lengths[example, b]])
                np.testing.assert_allclose(beams.log_probs[example, b], expected, rtol=1e-5)
        np.testing.assert_allclose(beams.scores, beams.log_probs / lengths ** alpha, rtol=1e-6)
        assert np.all(np.diff(beams.scores.numpy(), axis=1) <= 1e-6)


def test_beam_search_scores_at_least_greedy_and_greedy_takes_the_argmax():
    greedy = greedy_search(step_fn, STATE, CONSTANTS, start_id=START, end_id=END, pad_id=PAD,
                           max_length=MAX)
    beams = search(3)
    greedy_lp, _ = score_sequences(step_fn, STATE, CONSTANTS, greedy.sequences,
                                   start_id=START, end_id=END)
    np.testing.assert_allclose(greedy.log_probs, greedy_lp, rtol=1e-5)
    assert np.all(beams.log_probs[:, 0].numpy() >= greedy_lp.numpy() - 1e-5)
    # greedy: at every step the most probable next token given the chosen prefix
    for example in range(BATCH):
        sequence = greedy.sequences[example].numpy()
        for t in range(int(greedy.lengths[example])):
            options = [numpy_log_probs(example, tuple(sequence[:t]) + (v,)) for v in range(V)]
            assert sequence[t] == int(np.argmax(options))


def test_extras_come_back_aligned_with_each_chosen_beam():
    beams = search(4)
    for b in range(4):
        _, rerun = score_sequences(step_fn, STATE, CONSTANTS, beams.sequences[:, b],
                                   start_id=START, end_id=END)
        np.testing.assert_allclose(beams.extras["attention"][:, b], rerun["attention"],
                                   atol=1e-6)
    attention = beams.extras["attention"].numpy()
    real = np.arange(MAX)[None, None, :] < beams.lengths.numpy()[..., None]
    np.testing.assert_allclose(attention.sum(-1)[real], 1.0, rtol=1e-5)
    assert np.all(attention[~real] == 0)


def test_decoding_runs_in_tf_function_and_under_xla():
    eager = search(3)
    for jit in (False, True):
        compiled = tf.function(lambda s, c: beam_search(
            step_fn, s, c, beam_width=3, start_id=START, end_id=END, pad_id=PAD,
            max_length=MAX), jit_compile=jit)(STATE, CONSTANTS)
        np.testing.assert_array_equal(compiled.sequences, eager.sequences)
        np.testing.assert_allclose(compiled.scores, eager.scores, rtol=1e-5)
        np.testing.assert_allclose(compiled.extras["attention"], eager.extras["attention"],
                                   atol=1e-6)


def test_more_beams_than_hypotheses_leave_fillers_last_and_bad_widths():
    beams = search(V ** MAX + 5)
    assert np.sum(beams.log_probs.numpy() > -1e8, axis=1).tolist() == [len(list(
        all_sequences()))] * BATCH
    with pytest.raises(ValueError, match="at least 1"):
        search(0)
