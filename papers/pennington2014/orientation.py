"""Semantic orientation of a word from seed words: Turney & Littman's (2003) SO-A with cosine.

Turney & Littman (ACM TOIS 21(4), 2003) infer a word's semantic orientation (praise or criticism)
from its association A with a set of positive and a set of negative paradigm words:

    SO-A(word) = Σ_{p ∈ P} A(word, p) − Σ_{n ∈ N} A(word, n)

Their SO-LSA takes A to be the cosine of the two words in an LSA space; here A is the cosine
of the word vectors, so this is SO-LSA with GloVe or word2vec vectors in place of LSA. A
positive value is praise, a negative one criticism, and the magnitude is the strength. The
default seeds are their seven paradigm words of each orientation. The score is not centred on
neutral words: with GloVe 6B 50d, "superb" scores +1.32 and "dreadful" −0.98, but "table"
+0.85, so compare words with each other rather than with 0 alone.

Example:

```python
glove = Embeddings.load("glove-6b-50d")
semantic_orientation(glove, "superb").score      # +1.32
semantic_orientation(glove, "dreadful").score    # -0.98
```
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from papers.pennington2014.vectors import Embeddings

#: Turney & Littman's (2003) paradigm words.
POSITIVE = ("good", "nice", "excellent", "positive", "fortunate", "correct", "superior")
NEGATIVE = ("bad", "nasty", "poor", "negative", "unfortunate", "wrong", "inferior")


@dataclasses.dataclass(frozen=True)
class Orientation:
    """SO-A of one word and its two halves.

    Attributes:
        word: the word.
        score: ``positive − negative``.
        positive: Σ of its cosines with the positive seeds.
        negative: Σ of its cosines with the negative seeds.
    """

    word: str
    score: float
    positive: float
    negative: float


def semantic_orientation(embeddings: Embeddings, word: str,
                         positive: Sequence[str] = POSITIVE,
                         negative: Sequence[str] = NEGATIVE) -> Orientation:
    """SO-A(word) with cosine association (module docstring).

    Raises:
        ValueError: a seed set is empty.
        UnknownWordError: the word or a seed is not among the vectors' words.
    """
    if not positive or not negative:
        raise ValueError("semantic orientation needs at least one positive and one negative "
                         "seed word")
    unit = embeddings.unit
    vector = unit[embeddings.row(word)]
    pos = float(np.sum(unit[embeddings.rows(positive)] @ vector))
    neg = float(np.sum(unit[embeddings.rows(negative)] @ vector))
    return Orientation(word, pos - neg, pos, neg)
