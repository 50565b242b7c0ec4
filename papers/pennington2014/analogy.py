"""Analogies "a is to b as c is to ?" by 3CosAdd and 3CosMul (Levy & Goldberg, CoNLL 2014).

With unit vectors â, b̂, ĉ and x̂ for every candidate word x (the question words left out):

- 3CosAdd, Mikolov et al.'s (2013) vector offset, which GloVe's Section 4.1 and gensim use:
  arg max_x cos(x, b) − cos(x, a) + cos(x, c) = arg max_x x̂·(b̂ − â + ĉ).
- 3CosMul, Levy & Goldberg's Eq. (4): arg max_x cos'(x, b)·cos'(x, c) / (cos'(x, a) + ε), with
  cosines shifted to [0, 1], cos' = (cos + 1) / 2, and ε = 0.001 as in their paper (gensim's
  ``most_similar_cosmul`` uses ε = 10⁻⁶; :func:`analogy` takes ``epsilon``).

:func:`solve` answers a batch of questions given as rows; :func:`analogy` answers one question
given as words. Candidates are the first ``restrict`` rows (all by default). A candidate is
excluded when it is one of the question words, or, when ``groups`` is given, when it is in the
same group as one of them (the benchmark groups the case variants of a word, as word2vec's
``compute-accuracy`` and gensim do). Ties go to the earlier row.

Example:

```python
glove = Embeddings.load("glove-6b-50d")
analogy(glove, "man", "king", "woman", k=1)                  # [("queen", 0.85)]
analogy(glove, "man", "king", "woman", method="mul", k=1)    # [("queen", 0.93)]
```
"""

from __future__ import annotations

import numpy as np

from papers.pennington2014.vectors import Embeddings

METHODS = ("add", "mul")
#: Levy & Goldberg's ε in 3CosMul.
EPSILON = 1e-3


def scores(candidates: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray,
           method: str = "add", epsilon: float = EPSILON) -> np.ndarray:
    """Every candidate's score for each question.

    Args:
        candidates: ``[n, dim]`` unit vectors.
        a, b, c: ``[q, dim]`` unit vectors of each question's words.
        method: ``"add"`` (3CosAdd) or ``"mul"`` (3CosMul).
        epsilon: 3CosMul's ε.

    Returns:
        ``[q, n]``; higher is better.
    """
    if method == "add":
        return (b - a + c) @ candidates.T  # 3CosAdd: x̂·(b̂ − â + ĉ)
    if method == "mul":
        cos_a, cos_b, cos_c = ((q @ candidates.T + 1.0) / 2.0 for q in (a, b, c))
        return cos_b * cos_c / (cos_a + epsilon)  # Levy & Goldberg Eq. (4), shifted cosines
    raise ValueError(f"unknown analogy method {method!r}: one of {', '.join(METHODS)}")


def solve(unit: np.ndarray, questions: np.ndarray, method: str = "add", *,
          groups: np.ndarray | None = None, epsilon: float = EPSILON,
          batch_size: int = 256) -> np.ndarray:
    """The best candidate row for each question.

    Args:
        unit: ``[n, dim]`` unit-length candidate vectors (the rows to search).
        questions: int ``[q, 3]``: the rows of a, b and c (all ``< n``).
        method: ``"add"`` (3CosAdd) or ``"mul"`` (3CosMul).
        groups: int ``[n]``: rows with equal values are variants of one word; a candidate in the
            group of a, b or c is excluded. ``None``: each row is its own group.
        epsilon: 3CosMul's ε.
        batch_size: questions scored at once (memory: 3 × batch_size × n floats).

    Returns:
        int ``[q]``: the best row per question.
    """
    questions = np.asarray(questions, dtype=np.int64).reshape(-1, 3)
    groups = np.arange(len(unit)) if groups is None else np.asarray(groups)
    order = np.argsort(groups, kind="stable")  # the rows of each group, side by side
    best = np.empty(len(questions), dtype=np.int64)
    for start in range(0, len(questions), batch_size):
        part = questions[start:start + batch_size]
        score = scores(unit, unit[part[:, 0]], unit[part[:, 1]], unit[part[:, 2]], method,
                       epsilon)
        question, row = _group_members(groups, order, groups[part])
        score[question, row] = -np.inf
        best[start:start + len(part)] = np.argmax(score, axis=1)
    return best


def _group_members(groups: np.ndarray, order: np.ndarray, asked: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(question, row)`` index pairs of every row in a group that ``asked[question]`` names."""
    sorted_groups = groups[order]
    flat = asked.ravel()
    low = np.searchsorted(sorted_groups, flat, "left")
    counts = np.searchsorted(sorted_groups, flat, "right") - low
    question = np.repeat(np.repeat(np.arange(len(asked)), asked.shape[1]), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return question, order[np.repeat(low, counts) + offset]


def analogy(embeddings: Embeddings, a: str, b: str, c: str, *, k: int = 10,
            method: str = "add", restrict: int | None = None,
            epsilon: float = EPSILON) -> list[tuple[str, float]]:
    """The ``k`` best answers to "``a`` is to ``b`` as ``c`` is to ?", best first, with scores.

    The question words are never answers. ``restrict``: search only the first ``restrict``
    rows (the most frequent words, for a source in frequency order); the question words may lie
    beyond it. ``method``: ``"add"`` (3CosAdd) or ``"mul"`` (3CosMul).
    """
    rows = embeddings.rows((a, b, c))
    a_, b_, c_ = (embeddings.unit[r][None, :] for r in rows)
    score = scores(embeddings.unit[:restrict], a_, b_, c_, method, epsilon)[0]
    return embeddings.top(score, k, exclude=rows)
