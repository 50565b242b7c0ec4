"""Word vectors for cosine queries: unit rows, lookup with a helpful error, nearest neighbours.

:class:`Embeddings` keeps the words in the source's row order (frequency order for GloVe and the
26,423-word GoogleNews subset) and each vector divided by its length, so that a cosine is a dot
product: cos(u, v) = u·v / (‖u‖‖v‖). A zero vector stays zero (its cosine with anything is 0).

Example:

```python
glove = Embeddings.load("glove-6b-50d")
glove.similarity("cat", "dog")              # 0.92
glove.neighbours("frog", k=3)               # [("snake", 0.84), ("ape", 0.79), ("toad", 0.79)]
glove.neighbours("king", k=3, restrict=30000)   # only the 30,000 most frequent words
```
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np


class UnknownWordError(KeyError):
    """A word is not among the vectors' words; the message names the set and the cased forms
    that are there."""

    def __str__(self) -> str:
        return str(self.args[0])


class Embeddings:
    """Words and their unit-length vectors.

    Args:
        words: the word of each row, in the source's order (a repeated word keeps its first row).
        vectors: ``[len(words), dim]`` floats (any length; rows are divided by their norm).
        name: where they come from (shown in messages).

    Attributes:
        words: the words, in row order.
        unit: float32 ``[len(words), dim]``, every non-zero row of length 1.
        index: word → row.
    """

    def __init__(self, words: Sequence[str], vectors: np.ndarray, name: str):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(words) != vectors.shape[0]:
            raise ValueError(f"{name}: {len(words)} words but vectors of shape {vectors.shape}")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.unit = vectors / np.where(norms > 0, norms, 1.0)
        self.words = list(words)
        self.index: dict[str, int] = {}
        for row, word in enumerate(self.words):
            self.index.setdefault(word, row)
        self.name = name

    @classmethod
    def load(cls, source: str) -> "Embeddings":
        """From ``datasets.word_vectors.load_vectors(source)``: ``"glove-6b-50d"``,
        ``"word2vec-googlenews-300d-26k"``, ``"word2vec-googlenews-300d-13k"`` or a file."""
        from datasets import word_vectors

        loaded = word_vectors.load_vectors(source)
        words = [None] * len(loaded)
        for word, row in loaded.index.items():
            words[row] = word
        # A row whose word repeats an earlier one is unreachable by name; keep it unnamed.
        words = [w if w is not None else f"<row {i}>" for i, w in enumerate(words)]
        return cls(words, loaded.vectors, source)

    @property
    def dim(self) -> int:
        return int(self.unit.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def row(self, word: str) -> int:
        """The row of ``word``; :class:`UnknownWordError` (naming cased forms present) if absent."""
        if word in self.index:
            return self.index[word]
        forms = [w for w in dict.fromkeys((word.lower(), word.capitalize(), word.upper()))
                 if w in self.index]
        hint = f" (present: {', '.join(forms)})" if forms else ""
        raise UnknownWordError(f"{word!r} is not among the {len(self):,} words of "
                               f"{self.name}{hint}")

    def rows(self, words: Iterable[str]) -> list[int]:
        return [self.row(w) for w in words]

    def similarity(self, word1: str, word2: str) -> float:
        """The cosine of the two words' vectors."""
        return float(self.unit[self.row(word1)] @ self.unit[self.row(word2)])

    def cosines(self, query: np.ndarray, restrict: int | None = None) -> np.ndarray:
        """Cosines of ``query`` (a vector, any length) with the first ``restrict`` rows (all)."""
        query = np.asarray(query, dtype=np.float32)
        norm = float(np.linalg.norm(query))
        return self.unit[:restrict] @ (query / norm if norm > 0 else query)

    def neighbours(self, word: str, k: int = 10, restrict: int | None = None
                   ) -> list[tuple[str, float]]:
        """The ``k`` words with the highest cosine to ``word`` (itself left out), best first.

        Args:
            word: the query word.
            k: how many.
            restrict: search only the first ``restrict`` rows (the most frequent words when the
                source is in frequency order); ``None``: all.
        """
        row = self.row(word)
        return self.nearest(self.unit[row], k, restrict=restrict, exclude=(row,))

    def nearest(self, query: np.ndarray, k: int = 10, *, restrict: int | None = None,
                exclude: Iterable[int] = ()) -> list[tuple[str, float]]:
        """The ``k`` rows with the highest cosine to the vector ``query``, except ``exclude``."""
        scores = self.cosines(query, restrict)
        return self.top(scores, k, exclude)

    def top(self, scores: np.ndarray, k: int, exclude: Iterable[int] = ()
            ) -> list[tuple[str, float]]:
        """The ``k`` best-scoring rows of ``scores`` (one per row, from row 0), except ``exclude``;
        ties go to the earlier row."""
        scores = np.array(scores, dtype=np.float64)
        excluded = [r for r in exclude if r < len(scores)]
        scores[excluded] = -np.inf
        k = min(k, len(scores) - len(set(excluded)))
        if k <= 0:
            return []
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.lexsort((best, -scores[best]))]
        return [(self.words[i], float(scores[i])) for i in best]
