"""The word-vector benchmarks: Mikolov et al.'s analogies, WordSim-353 and SimLex-999.

Files: ``questions-words.txt`` (Mikolov et al. 2013a: 19,544 questions "a b c d", meaning a is
to b as c is to d, in 14 sections after ``: name`` lines; the five sections whose names do not
start with ``gram`` are the 8,869 semantic questions, the nine ``gram*`` ones the 10,675
syntactic questions), ``wordsim353.tsv`` (Finkelstein et al. 2002: 353 pairs, relatedness 0-10)
and ``simlex999.txt`` (Hill et al. 2015: 999 pairs, similarity 0-10): tab-separated
``word1 word2 score`` lines, ``#`` comments. They ship in the ``gensim`` 4.4.0 wheel (in
``requirements.txt``), and :func:`benchmark_path` finds them in its installed
``gensim/test/test_data`` folder without importing gensim; ``$KERAS_PAPERS_WORD_BENCHMARKS``
may name another folder holding the three files.

The protocol is word2vec's ``compute-accuracy`` as gensim's ``evaluate_word_analogies`` and
``evaluate_word_pairs`` run it (``case_insensitive=True``, no dummy for unknown words):

- Only the first ``restrict`` rows of the vectors are the vocabulary (30,000 in Mikolov et al.:
  the most frequent words, for sources in frequency order). Words are compared upper-cased;
  when several rows share an upper-cased form, the first (most frequent) one stands for it.
- A question (or pair) with a word outside that vocabulary is skipped and counted.
- The answer is the best candidate among the vocabulary's rows by 3CosAdd (or 3CosMul), leaving
  out every row whose upper-cased form is one of the three question words; it is right when its
  upper-cased form is that of the expected word.
- Similarity is the cosine; the score is Spearman's ρ (``scipy.stats.spearmanr``) between the
  human scores and the cosines of the pairs kept.

One difference from gensim, which the tests bound: gensim looks only at the five best
candidates after leaving out the question words' own rows, so a question whose five best are
all case variants of question words counts as wrong there; here the search goes on.

Example:

```python
glove = Embeddings.load("glove-6b-50d")
result = evaluate_analogies(glove, benchmark_path("questions-words.txt"), restrict=30000)
result.total.accuracy, result.semantic.accuracy, result.syntactic.accuracy, result.skipped
evaluate_word_pairs(glove, benchmark_path("simlex999.txt")).spearman
```
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from typing import Iterable

import numpy as np
from scipy import stats

from datasets.errors import DataFormatError, MissingDataError
from papers.pennington2014.analogy import EPSILON, solve
from papers.pennington2014.vectors import Embeddings

ANALOGIES = "questions-words.txt"
WORDSIM353 = "wordsim353.tsv"
SIMLEX999 = "simlex999.txt"
PAIR_FILES = (WORDSIM353, SIMLEX999)
#: Mikolov et al.'s restriction of the analogy vocabulary to the most frequent words.
RESTRICT = 30000


def benchmark_path(name: str) -> str:
    """The path of ``questions-words.txt``, ``wordsim353.tsv`` or ``simlex999.txt``.

    Raises:
        MissingDataError: neither ``$KERAS_PAPERS_WORD_BENCHMARKS`` nor gensim's installed
            test data holds it (the message says how to get it).
    """
    folder = os.environ.get("KERAS_PAPERS_WORD_BENCHMARKS")
    if not folder:
        spec = importlib.util.find_spec("gensim")
        locations = list(spec.submodule_search_locations or []) if spec else []
        folder = os.path.join(locations[0], "test", "test_data") if locations else ""
    path = os.path.join(folder, name)
    if not folder or not os.path.isfile(path):
        raise MissingDataError(
            f"{name} not found: it ships in the gensim==4.4.0 wheel (pip install -r "
            "requirements.txt), or set KERAS_PAPERS_WORD_BENCHMARKS to a folder holding it",
            path=path or name)
    return path


@dataclasses.dataclass(frozen=True)
class Score:
    """``correct`` of ``questions`` answered (questions with unknown words not counted)."""

    correct: int
    questions: int

    @property
    def accuracy(self) -> float:
        """In percent; NaN when no question was answered."""
        return 100.0 * self.correct / self.questions if self.questions else float("nan")


@dataclasses.dataclass(frozen=True)
class AnalogyResult:
    """Analogy accuracy per section and overall.

    Attributes:
        sections: section name → :class:`Score`, in the file's order.
        skipped: questions left out because a word is outside the vocabulary.
        vocabulary: how many rows were the vocabulary (``min(restrict, len(vectors))``).
    """

    sections: dict[str, Score]
    skipped: int
    vocabulary: int

    def _sum(self, names: Iterable[str]) -> Score:
        scores = [self.sections[n] for n in names]
        return Score(sum(s.correct for s in scores), sum(s.questions for s in scores))

    @property
    def semantic(self) -> Score:
        return self._sum(n for n in self.sections if not n.startswith("gram"))

    @property
    def syntactic(self) -> Score:
        return self._sum(n for n in self.sections if n.startswith("gram"))

    @property
    def total(self) -> Score:
        return self._sum(self.sections)


@dataclasses.dataclass(frozen=True)
class PairResult:
    """Spearman's ρ over the pairs whose two words are in the vocabulary.

    Attributes:
        spearman: ρ between the human scores and the cosines.
        pairs: pairs used.
        skipped: pairs left out because a word is outside the vocabulary.
    """

    spearman: float
    pairs: int
    skipped: int


class Vocabulary:
    """The first ``restrict`` rows, looked up by a word's upper-cased form (first row wins).

    Attributes:
        unit: the candidate rows' unit vectors.
        keys: the upper-cased form of each candidate row.
        groups: int per candidate row: the row that stands for its upper-cased form.
    """

    def __init__(self, embeddings: Embeddings, restrict: int | None,
                 case_insensitive: bool = True):
        size = len(embeddings) if restrict is None else min(restrict, len(embeddings))
        fold = str.upper if case_insensitive else str
        self.fold = fold
        self.unit = embeddings.unit[:size]
        self.keys = [fold(w) for w in embeddings.words[:size]]
        self.row: dict[str, int] = {}
        for row, key in enumerate(self.keys):
            self.row.setdefault(key, row)
        self.groups = np.array([self.row[k] for k in self.keys], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.keys)

    def lookup(self, words: Iterable[str]) -> list[int] | None:
        """The rows of ``words``, or ``None`` if one is outside the vocabulary."""
        rows = [self.row.get(self.fold(w)) for w in words]
        return None if None in rows else rows


def read_analogies(path: str) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    """The sections of an analogy file: ``[(name, [(a, b, c, d), ...]), ...]``.

    Raises:
        DataFormatError: a question before the first ``: name`` line, or a line that is not
            four words (naming the file and line).
    """
    sections: list[tuple[str, list]] = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.startswith(": "):
                sections.append((line[2:].strip(), []))
                continue
            words = line.split()
            if not words:
                continue
            if not sections:
                raise DataFormatError("a question before the first ': section' line",
                                      path=path, line=number)
            if len(words) != 4:
                raise DataFormatError(f"expected 4 words, found {len(words)}", path=path,
                                      line=number)
            sections[-1][1].append(tuple(words))
    if not sections:
        raise DataFormatError("no ': section' lines", path=path)
    return sections


def evaluate_analogies(embeddings: Embeddings, path: str, *, restrict: int | None = RESTRICT,
                       method: str = "add", case_insensitive: bool = True,
                       epsilon: float = EPSILON) -> AnalogyResult:
    """Accuracy on an analogy file (module docstring: the protocol).

    Args:
        embeddings: the vectors.
        path: ``questions-words.txt`` or a file in its format.
        restrict: the vocabulary is the first ``restrict`` rows (``None``: all).
        method: ``"add"`` (3CosAdd) or ``"mul"`` (3CosMul, with ``epsilon``).
        case_insensitive: compare words upper-cased (word2vec's and gensim's default).
    """
    vocab = Vocabulary(embeddings, restrict, case_insensitive)
    sections, skipped = {}, 0
    for name, questions in read_analogies(path):
        rows = [vocab.lookup(q) for q in questions]
        known = np.array([r for r in rows if r is not None], dtype=np.int64).reshape(-1, 4)
        skipped += len(rows) - len(known)
        predicted = solve(vocab.unit, known[:, :3], method, groups=vocab.groups,
                          epsilon=epsilon)
        correct = int(np.sum(vocab.groups[predicted] == known[:, 3]))
        sections[name] = Score(correct, len(known))
    return AnalogyResult(sections, skipped, len(vocab))


def read_word_pairs(path: str) -> list[tuple[str, str, float]]:
    """``[(word1, word2, score), ...]`` from a tab-separated file with ``#`` comments.

    Raises:
        DataFormatError: a line that is not three tab-separated fields with a numeric score.
    """
    pairs = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3:
                raise DataFormatError(f"expected 3 tab-separated fields, found {len(fields)}",
                                      path=path, line=number)
            try:
                score = float(fields[2])
            except ValueError:
                raise DataFormatError(f"score {fields[2]!r} is not a number", path=path,
                                      line=number, field="score") from None
            pairs.append((fields[0], fields[1], score))
    if not pairs:
        raise DataFormatError("no word pairs", path=path)
    return pairs


def evaluate_word_pairs(embeddings: Embeddings, path: str, *,
                        restrict: int | None = RESTRICT,
                        case_insensitive: bool = True) -> PairResult:
    """Spearman's ρ between a pair file's scores and the pairs' cosines (module docstring)."""
    vocab = Vocabulary(embeddings, restrict, case_insensitive)
    gold, cosines = [], []
    pairs = read_word_pairs(path)
    for word1, word2, score in pairs:
        rows = vocab.lookup((word1, word2))
        if rows is not None:
            gold.append(score)
            cosines.append(float(vocab.unit[rows[0]] @ vocab.unit[rows[1]]))
    if len(gold) < 2:
        raise DataFormatError(f"only {len(gold)} of {len(pairs)} pairs have both words in "
                              f"{embeddings.name}'s first {len(vocab):,} words", path=path)
    rho = stats.spearmanr(gold, cosines).statistic
    return PairResult(float(rho), len(gold), len(pairs) - len(gold))
