"""Does the attention attend? Statistics of the weights ``α_t`` of generated captions.

For each generated word ``t`` of a caption, ``α_t`` is a distribution over the ``L`` image
locations (Eq. 5 of Xu et al. 2015). Uniform weights (``1/L`` everywhere) read the mean
annotation and locate nothing; the paper's pictures show weights concentrated on the object a
word names. Over the words of every caption (``<end>`` excluded):

- ``entropy_fraction``: the mean entropy ``H(α_t) = -Σ_i α_ti log α_ti`` as a fraction of
  ``log L``, the entropy of uniform weights (1.0: uniform; 0.0: one location);
- ``max_weight``: the mean largest weight ``max_i α_ti`` (``uniform_weight`` = ``1/L``);
- ``moving_fraction``: the fraction of captions of at least two words whose most attended
  location changes between some two consecutive words;
- ``step_change``: the mean total-variation distance ``½ Σ_i |α_ti - α_(t-1)i|`` between the
  weights of consecutive words (0: the same weights for every word; 1: disjoint).

Example:

```python
stats = attention_statistics(attention, lengths)   # [N, T, L], [N] words per caption
stats["entropy_fraction"], stats["max_weight"], stats["uniform_weight"]
```
"""

from __future__ import annotations

import numpy as np


def attention_statistics(attention: np.ndarray, lengths: np.ndarray) -> dict[str, float]:
    """The statistics above for ``attention [N, T, L]`` and the words per caption ``[N]``.

    Raises:
        ValueError: no caption has a word, or a length exceeds ``T``.
    """
    attention = np.asarray(attention, np.float64)
    lengths = np.asarray(lengths, np.int64)
    captions, steps, locations = attention.shape
    if lengths.shape != (captions,) or lengths.max(initial=0) > steps:
        raise ValueError(f"lengths {lengths.shape} (max {lengths.max(initial=0)}) do not fit "
                         f"attention {attention.shape}")
    real = np.arange(steps)[None, :] < lengths[:, None]                          # [N, T]
    if not real.any():
        raise ValueError("no caption has a word")
    alpha = attention[real]                                                       # [W, L]
    entropy = -np.sum(alpha * np.log(np.maximum(alpha, 1e-30)), axis=-1)
    pairs = real[:, 1:] & real[:, :-1]                                            # [N, T-1]
    change = 0.5 * np.abs(attention[:, 1:] - attention[:, :-1]).sum(-1)           # [N, T-1]
    top = attention.argmax(-1)
    moved = ((top[:, 1:] != top[:, :-1]) & pairs).any(axis=1)
    several = lengths >= 2
    return {
        "entropy_fraction": float(entropy.mean() / np.log(locations)),
        "max_weight": float(alpha.max(-1).mean()),
        "uniform_weight": 1.0 / locations,
        "moving_fraction": float(moved[several].mean()) if several.any() else 0.0,
        "step_change": float(change[pairs].mean()) if pairs.any() else 0.0,
        "words": int(real.sum()),
    }
