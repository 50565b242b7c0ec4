"""Text generation from a language model's step: greedy, temperature, top-k, top-p and beam.

A language model is given as one step, ``step(tokens, state) -> (logits, state)``: ``tokens``
int32 ``[batch]``, ``state`` any nested structure of ``[batch, ...]`` tensors (an LSTM's
``[batch, L, 2, n]``), ``logits`` ``[batch, vocab]``. Generation continues a prompt whose
tokens except the last have already been read into ``state``; ``start`` is the last one.

Who does what, and why:

- **greedy**, **sample** (the full distribution at a temperature), **top_k** and **top_p**
  (nucleus; Holtzman et al. 2020) are ``keras_hub.samplers`` (``GreedySampler``,
  ``RandomSampler``, ``TopKSampler``, ``TopPSampler``): each step's choice depends only on that
  step's distribution, which is exactly their interface (``next(prompt, cache, index)``, the
  LSTM state as the cache), and they stop once every sequence has produced the end token.
- **beam** is the suite's :func:`layers.decoding.beam_search`, not ``keras_hub``'s
  ``BeamSampler``: a continuation that ends (``<eos>``: the review is over) must keep its score
  and compete with longer ones, and ``BeamSampler`` keeps extending a hypothesis after its end
  token, scoring what follows it. ``length_penalty`` α ranks hypotheses by
  ``log p / length^α`` (0: the most probable continuation).

:class:`Decoding` holds the choice and its settings (``evaluate.py``'s generation flags, one
object); ``seed`` makes sampling repeatable. :func:`generate` returns the tokens up to and
including the first end token (or ``length`` tokens) with their log-probability under the
model (without temperature), computed by :func:`layers.decoding.score_sequences`.

Example:

```python
out = generate(model.step, state, start=last_prompt_id, end_id=eos, pad_id=0,
               decoding=Decoding("top_p", top_p=0.9, temperature=0.8, seed=1))
out.tokens, out.log_prob, out.ended
```
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, NamedTuple

import keras_hub
import numpy as np
from keras import ops

from layers import decoding as shared_decoding

METHODS = ("greedy", "sample", "top_k", "top_p", "beam")
Step = Callable[[Any, Any], tuple[Any, Any]]


@dataclasses.dataclass(frozen=True)
class Decoding:
    """How to continue a prompt (field names are ``evaluate.py``'s flags).

    Args:
        decoding: ``greedy``, ``sample`` (the whole distribution), ``top_k``, ``top_p`` or
            ``beam``.
        temperature: logits are divided by it before sampling (``sample``, ``top_k``,
            ``top_p``); greedy and beam search ignore it.
        top_k: the ``k`` most probable tokens ``top_k`` samples from.
        top_p: ``top_p`` samples from the smallest set of most probable tokens whose
            probability reaches ``p``.
        beam_width: hypotheses kept by ``beam``.
        length: the most tokens to generate (the end token included).
        seed: seeds the sampler, so the same seed gives the same text.
        length_penalty: beam search ranks by ``log p / length^α``.

    Raises:
        ValueError: a value out of range; the message names the field.
    """

    decoding: str = "greedy"
    temperature: float = 1.0
    top_k: int = 10
    top_p: float = 0.9
    beam_width: int = 5
    length: int = 30
    seed: int = 0
    length_penalty: float = 0.0

    def __post_init__(self):
        checks = [
            (self.decoding in METHODS, f"decoding={self.decoding!r}: must be one of "
                                       f"{', '.join(METHODS)}"),
            (math.isfinite(self.temperature) and self.temperature > 0,
             f"temperature={self.temperature}: must be a positive number"),
            (self.top_k >= 1, f"top_k={self.top_k}: must be at least 1"),
            (0 < self.top_p <= 1, f"top_p={self.top_p}: must be in (0, 1]"),
            (self.beam_width >= 1, f"beam_width={self.beam_width}: must be at least 1"),
            (self.length >= 1, f"length={self.length}: must be at least 1"),
            (math.isfinite(self.length_penalty) and self.length_penalty >= 0,
             f"length_penalty={self.length_penalty}: must be 0 or more"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def describe(self) -> dict[str, Any]:
        """The method and the settings it uses (for printing beside a generated text)."""
        used = {"greedy": (), "sample": ("temperature", "seed"),
                "top_k": ("top_k", "temperature", "seed"),
                "top_p": ("top_p", "temperature", "seed"),
                "beam": ("beam_width", "length_penalty")}[self.decoding]
        return {"decoding": self.decoding, **{k: getattr(self, k) for k in used},
                "length": self.length}

    def sampler(self) -> keras_hub.samplers.Sampler:
        """The ``keras_hub`` sampler of a step-by-step method (not ``beam``)."""
        if self.decoding == "greedy":
            return keras_hub.samplers.GreedySampler()
        if self.decoding == "sample":
            return keras_hub.samplers.RandomSampler(seed=self.seed, temperature=self.temperature)
        if self.decoding == "top_k":
            return keras_hub.samplers.TopKSampler(k=self.top_k, seed=self.seed,
                                                  temperature=self.temperature)
        if self.decoding == "top_p":
            return keras_hub.samplers.TopPSampler(p=self.top_p, seed=self.seed,
                                                  temperature=self.temperature)
        raise ValueError(f"decoding={self.decoding!r} has no keras_hub sampler here")


class Generated(NamedTuple):
    """One continuation.

    Attributes:
        tokens: the generated ids, up to and including the first end token.
        log_prob: their log-probability under the model, ``Σ log p(y_t | y_<t, prompt)``.
        ended: whether the continuation produced the end token.
    """

    tokens: list[int]
    log_prob: float
    ended: bool


def _cut(tokens: np.ndarray, end_id: int) -> tuple[list[int], bool]:
    ends = np.flatnonzero(tokens == end_id)
    if len(ends):
        return [int(t) for t in tokens[:ends[0] + 1]], True
    return [int(t) for t in tokens], False


def _sample(step: Step, state, start: int, decoding: Decoding, end_id: int, pad_id: int):
    """A ``keras_hub`` sampler over a buffer ``[start, <pad> × length]``; index 0 is given."""
    buffer = np.full((1, decoding.length + 1), pad_id, np.int32)
    buffer[0, 0] = start
    given = np.zeros_like(buffer, dtype=bool)
    given[0, 0] = True

    def next_fn(prompt, cache, index):
        logits, cache = step(prompt[:, index - 1], cache)
        return logits, None, cache

    out = decoding.sampler()(next_fn, ops.convert_to_tensor(buffer), cache=state, index=1,
                             mask=ops.convert_to_tensor(given), stop_token_ids=[end_id])
    return np.asarray(ops.convert_to_numpy(out))[0, 1:]


def _beam(step: Step, state, start: int, decoding: Decoding, end_id: int, pad_id: int):
    def step_fn(previous, state, constants):
        logits, state = step(previous, state)
        return logits, state, ()

    beams = shared_decoding.beam_search(
        step_fn, state, (), beam_width=decoding.beam_width, start_id=start, end_id=end_id,
        pad_id=pad_id, max_length=decoding.length, length_penalty=decoding.length_penalty)
    return np.asarray(ops.convert_to_numpy(beams.sequences))[0, 0]


def generate(step: Step, state, *, start: int, end_id: int, pad_id: int,
             decoding: Decoding) -> Generated:
    """Continues one prompt (batch 1); see the module docstring.

    Args:
        step: ``step(tokens [1], state) -> (logits [1, vocab], state)``.
        state: the state after the prompt's tokens but the last (batch 1).
        start: the prompt's last token.
        end_id: the end token (generation stops after it).
        pad_id: a token that never needs to be generated (fills unused positions).
        decoding: the method and its settings.
    """
    run = _beam if decoding.decoding == "beam" else _sample
    tokens, ended = _cut(run(step, state, start, decoding, end_id, pad_id), end_id)

    def score_fn(previous, state, constants):
        logits, state = step(previous, state)
        return logits, state, ()

    log_prob, _ = shared_decoding.score_sequences(
        score_fn, state, (), ops.convert_to_tensor([tokens], "int32"), start_id=start,
        end_id=end_id)
    return Generated(tokens, float(ops.convert_to_numpy(log_prob)[0]), ended)
