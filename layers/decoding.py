"""Greedy and beam-search decoding for recurrent decoders, shared by every paper.

A decoder is given as one step, ``step_fn(previous_tokens, state, constants) -> (logits, state,
extras)``: ``previous_tokens`` int32 ``[n]``, ``state`` any nested structure of ``[n, ...]``
tensors (a GRU's ``h``, an LSTM's ``(h, c)``), ``constants`` a nested structure of per-example
tensors that do not change over time (a summary vector ``c``, projected image features), and
``extras`` a nested structure of per-step outputs worth keeping (attention weights ``α_t``).
Decoding starts from ``<start>``, ends a hypothesis at ``<end>`` (kept, then ``<pad>``) and
stops after ``max_length`` tokens.

- :func:`beam_search` keeps the ``beam_width`` best hypotheses; :func:`greedy_search`, which
  takes ``argmax p(y_t | y_<t)`` at every step, is the same search with one hypothesis.
- :func:`score_sequences` computes ``log p(y | x)`` of given sequences by running the step
  along them (teacher forcing), for tests and rescoring.

``keras_hub.samplers`` (``GreedySampler``, ``BeamSampler``) do not fit: they return the tokens
but not the per-step extras (the attention maps a captioner must draw), and ``BeamSampler``
keeps extending a hypothesis after its end token, so a finished hypothesis does not compete
with its own score, and it has no length normalisation.

Everything runs eagerly, inside ``tf.function`` and under XLA (``max_length`` is static).

Example:

```python
state, constants = model.start_decoding(source)          # e.g. (h'_0, (C c, O_c c))
best = greedy_search(model.decode_step, state, constants, start_id=1, end_id=2, pad_id=0,
                     max_length=20)
beams = beam_search(model.decode_step, state, constants, beam_width=5, start_id=1, end_id=2,
                    pad_id=0, max_length=20, length_penalty=0.0)
beams.sequences[:, 0], beams.extras["attention"][:, 0]   # the best hypothesis, its α_t
```
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from keras import ops
from keras import tree

StepFn = Callable[[Any, Any, Any], tuple[Any, Any, Any]]
_NEG = -1e9


class Decoded(NamedTuple):
    """Decoded sequences; with beam search every field has a beam axis after the batch axis,
    best hypothesis first.

    Attributes:
        sequences: int32 ``[batch, (beam,) max_length]``: tokens, ``<end>``, then ``<pad>``.
        scores: ``[batch, (beam)]`` the ranking score ``log p(y | x) / length^α``.
        log_probs: ``[batch, (beam)]`` ``log p(y | x)`` over the tokens up to and including
            ``<end>``.
        lengths: int32 ``[batch, (beam)]`` tokens up to and including ``<end>`` (``max_length``
            if there is none).
        extras: the steps' extras, nested ``[batch, (beam,) max_length, ...]``, zeros after
            the end.
    """

    sequences: Any
    scores: Any
    log_probs: Any
    lengths: Any
    extras: Any


def _log_softmax(logits):
    return ops.log_softmax(ops.cast(logits, "float32"), axis=-1)


def _lengths(sequences, end_id: int, max_length: int):
    """Tokens up to and including the first ``end_id`` (``max_length`` without one)."""
    is_end = ops.cast(ops.equal(sequences, end_id), "int32")
    has_end = ops.max(is_end, axis=-1) > 0
    first = ops.cast(ops.argmax(is_end, axis=-1), "int32") + 1
    return ops.where(has_end, first, max_length)


def _after(lengths, max_length: int):
    """True at the positions after each sequence's end, ``[..., max_length]``."""
    return ops.arange(max_length, dtype="int32") >= lengths[..., None]


def _zero_after(extras, lengths, max_length: int):
    after = _after(lengths, max_length)

    def zero(x):
        m = ops.reshape(after, ops.shape(after) + (1,) * (len(x.shape) - len(after.shape)))
        return ops.where(m, ops.zeros_like(x), x)

    return tree.map_structure(zero, extras)


def _batch_size(state, constants):
    leaves = tree.flatten((state, constants))
    if not leaves:
        raise ValueError("state and constants are empty: the batch size is unknown")
    return ops.shape(leaves[0])[0]


def score_sequences(step_fn: StepFn, state: Any, constants: Any, sequences, *, start_id: int,
                    end_id: int):
    """``(log p(y | x), extras)`` of ``sequences`` ``[batch, T]`` by running the step along
    them; the sum stops after the first ``end_id``; extras are ``[batch, T, ...]``."""
    sequences = ops.convert_to_tensor(sequences, dtype="int32")
    steps = sequences.shape[1]
    previous = ops.full_like(sequences[:, 0], start_id)
    total, extras = 0.0, []
    for t in range(steps):
        logits, state, extra = step_fn(previous, state, constants)
        token = sequences[:, t]
        log_p = ops.take_along_axis(_log_softmax(logits), token[:, None], axis=-1)[:, 0]
        total = total + log_p * ops.cast(t < _lengths(sequences, end_id, steps), "float32")
        extras.append(extra)
        previous = token
    stacked = tree.map_structure(lambda *xs: ops.stack(xs, axis=1), *extras)
    return total, _zero_after(stacked, _lengths(sequences, end_id, steps), steps)


def greedy_search(step_fn: StepFn, state: Any, constants: Any, *, start_id: int, end_id: int,
                  pad_id: int, max_length: int) -> Decoded:
    """``y_t = argmax p(y_t | y_<t, x)`` until ``<end>`` or ``max_length`` tokens: beam search
    with one hypothesis, without the beam axis."""
    best = beam_search(step_fn, state, constants, beam_width=1, start_id=start_id,
                       end_id=end_id, pad_id=pad_id, max_length=max_length)
    return Decoded(*(tree.map_structure(lambda x: x[:, 0], field) for field in best))


def beam_search(step_fn: StepFn, state: Any, constants: Any, *, beam_width: int, start_id: int,
                end_id: int, pad_id: int, max_length: int,
                length_penalty: float = 0.0) -> Decoded:
    """Beam search for ``argmax_y log p(y | x) / length(y)^α``.

    Keeps the ``beam_width`` best hypotheses. A hypothesis that produced ``<end>`` stays in the
    beam with its score frozen (it is extended by ``<pad>`` at no cost) and competes with the
    unfinished ones; the search stops when every hypothesis has ended or after ``max_length``
    tokens. Hypotheses are ranked by ``log p(y | x) / length^α``, ``α = length_penalty`` (0:
    no normalisation, 1: the mean log-probability per token); an unfinished prefix counts its
    current length. State, constants and the extras of every step are reordered with the
    hypotheses, so ``extras[:, b]`` belong to ``sequences[:, b]``.

    Returns:
        :class:`Decoded` with a beam axis, best first. When ``beam_width`` exceeds the number of
        hypotheses there are, the last beams are fillers with a score of about -1e9.
    """
    k = int(beam_width)
    if k < 1:
        raise ValueError(f"beam_width must be at least 1, got {beam_width}")
    batch = _batch_size(state, constants)
    start = ops.full((batch,), start_id, dtype="int32")

    def rank(log_probs, lengths):
        if not length_penalty:
            return log_probs
        return log_probs / ops.power(ops.cast(ops.maximum(lengths, 1), "float32"),
                                     length_penalty)

    def tile(x):  # [batch, ...] -> [batch * k, ...], each example's rows together
        return ops.repeat(x, k, axis=0)

    # Step 0 from <start> alone; its k best tokens are the k first hypotheses. With more beams
    # than tokens, the rest start as impossible, already ended fillers (log-probability -1e9).
    logits, state, extras = step_fn(start, state, constants)
    step = _log_softmax(logits)
    vocab = step.shape[-1]
    log_probs, first = ops.top_k(step, min(k, vocab))                          # [batch, k]
    first = ops.cast(first, "int32")
    if k > vocab:
        log_probs = ops.pad(log_probs, [[0, 0], [0, k - vocab]], constant_values=_NEG)
        first = ops.pad(first, [[0, 0], [0, k - vocab]], constant_values=end_id)
    lengths = ops.ones_like(first)
    finished = ops.equal(first, end_id)
    tokens = ops.concatenate([first[..., None], ops.full((batch, k, max_length - 1), pad_id,
                                                         dtype="int32")], axis=-1)
    state, constants = tree.map_structure(tile, state), tree.map_structure(tile, constants)
    buffers = tree.map_structure(lambda e: ops.concatenate([ops.repeat(e[:, None, None], k, axis=1),
                                                            ops.zeros((batch, k, max_length - 1)
                                                                      + tuple(ops.shape(e)[1:]),
                                                                      dtype=e.dtype)], axis=2),
                                 extras)
    scores = rank(log_probs, lengths)
    positions = ops.arange(max_length, dtype="int32")
    pad_only = ops.where(ops.equal(ops.arange(vocab), pad_id), 0.0, _NEG)
    row_offset = ops.arange(batch, dtype="int32")[:, None] * k                 # [batch, 1]

    def reorder(x, beam):  # [batch, k, ...] by beam [batch, k]
        index = ops.reshape(beam, ops.shape(beam) + (1,) * (len(x.shape) - 2))
        return ops.take_along_axis(x, index, axis=1)

    def cond(i, state, log_probs, lengths, finished, tokens, scores, buffers):
        return ops.logical_and(i < max_length, ops.logical_not(ops.all(finished)))

    def body(i, state, log_probs, lengths, finished, tokens, scores, buffers):
        previous = ops.reshape(ops.take(tokens, i - 1, axis=2), (-1,))
        logits, state, extras = step_fn(previous, state, constants)
        step = ops.reshape(_log_softmax(logits), (batch, k, vocab))
        step = ops.where(finished[..., None], pad_only, step)
        candidates = ops.reshape(log_probs[..., None] + step, (batch, k * vocab))
        candidate_lengths = ops.where(finished, lengths, i + 1)                # [batch, k]
        candidate_lengths = ops.reshape(
            ops.repeat(candidate_lengths[..., None], vocab, axis=-1), (batch, k * vocab))
        scores, index = ops.top_k(rank(candidates, candidate_lengths), k)      # sorted
        index = ops.cast(index, "int32")
        beam, token = index // vocab, index % vocab

        log_probs = ops.take_along_axis(candidates, index, axis=1)
        lengths = ops.take_along_axis(candidate_lengths, index, axis=1)
        was_finished = ops.take_along_axis(finished, beam, axis=1)
        finished = ops.logical_or(was_finished, ops.equal(token, end_id))
        tokens = reorder(tokens, beam)
        tokens = ops.where(ops.equal(positions, i)[None, None, :], token[..., None], tokens)
        flat_beam = ops.reshape(beam + row_offset, (-1,))
        state = tree.map_structure(lambda s: ops.take(s, flat_beam, axis=0), state)

        def write(buffer, extra):
            extra = reorder(ops.reshape(extra, (batch, k) + tuple(ops.shape(extra)[1:])), beam)
            keep = ops.reshape(was_finished, (batch, k) + (1,) * (len(extra.shape) - 2))
            extra = ops.where(keep, ops.zeros_like(extra), extra)
            at = ops.reshape(ops.equal(positions, i),
                             (1, 1, max_length) + (1,) * (len(extra.shape) - 2))
            return ops.where(at, extra[:, :, None], reorder(buffer, beam))

        buffers = tree.map_structure(write, buffers, extras)
        return i + 1, state, log_probs, lengths, finished, tokens, scores, buffers

    if max_length > 1:
        loop_vars = (ops.convert_to_tensor(1, "int32"), state, log_probs, lengths, finished,
                     tokens, scores, buffers)
        (_, _, log_probs, lengths, _, tokens, scores, buffers) = ops.while_loop(
            cond, body, loop_vars, maximum_iterations=max_length - 1)
    return Decoded(tokens, scores, log_probs, lengths,
                   _zero_after(buffers, lengths, max_length))
