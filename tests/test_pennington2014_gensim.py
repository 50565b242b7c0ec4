"""The word-vector benchmarks equal gensim's on the same vectors and restriction: gensim 4.4.0's
``evaluate_word_analogies`` (3CosAdd) and ``evaluate_word_pairs`` for the three vector sets, and
``most_similar_cosmul`` (3CosMul, with gensim's ε) for single analogies and the benchmark.

gensim scores one question at a time (about 5-30 ms each here), so the analogy comparison takes
every ``$PENNINGTON2014_GENSIM_STRIDE``-th question of each section (default 20);
``PENNINGTON2014_GENSIM_STRIDE=1`` compares all 19,544 (minutes), as for results/pennington2014.md.
"""

import functools
import os

import numpy as np
import pytest
from gensim.models import KeyedVectors

from datasets import word_vectors
from papers.pennington2014 import analogy, benchmarks
from papers.pennington2014.vectors import Embeddings

STRIDE = int(os.environ.get("PENNINGTON2014_GENSIM_STRIDE", "20"))
SETS = ("glove-6b-50d", "word2vec-googlenews-300d-26k", "word2vec-googlenews-300d-13k")
RESTRICT = 30000
GENSIM_EPSILON = 1e-6  # most_similar_cosmul's


@functools.lru_cache(maxsize=None)
def both(source: str) -> tuple[Embeddings, KeyedVectors]:
    """The suite's vectors, and a gensim KeyedVectors of the same words and raw vectors, cut to
    the first RESTRICT rows: with ``restrict_vocab=RESTRICT`` gensim reads no row beyond them,
    while the suite gets the whole set and must restrict itself."""
    emb = Embeddings.load(source)
    raw = word_vectors.load_vectors(source)
    kv = KeyedVectors(raw.dim)
    kv.add_vectors(emb.words[:RESTRICT], np.asarray(raw.vectors[:RESTRICT]))
    return emb, kv


def every(stride: int, folder) -> str:
    """A file of every ``stride``-th question of each section of questions-words.txt."""
    path = folder / f"questions_{stride}.txt"
    lines = []
    for name, section in benchmarks.read_analogies(
            benchmarks.benchmark_path(benchmarks.ANALOGIES)):
        lines += [f": {name}"] + [" ".join(q) for q in section[::stride]]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def questions(tmp_path_factory) -> str:
    return every(STRIDE, tmp_path_factory.mktemp("analogies"))


@pytest.mark.parametrize("source", SETS)
def test_analogy_accuracy_equals_gensims(source, questions):
    emb, kv = both(source)
    ours = benchmarks.evaluate_analogies(emb, questions, restrict=RESTRICT)
    _, sections = kv.evaluate_word_analogies(questions, restrict_vocab=RESTRICT)
    theirs = {s["section"]: benchmarks.Score(len(s["correct"]),
                                             len(s["correct"]) + len(s["incorrect"]))
              for s in sections}
    total = theirs.pop("Total accuracy")
    assert ours.sections == theirs and ours.total == total
    asked = sum(len(q) for _, q in benchmarks.read_analogies(questions))
    assert ours.total.questions + ours.skipped == asked and ours.total.questions > 100


@pytest.mark.parametrize("source", SETS)
@pytest.mark.parametrize("name", benchmarks.PAIR_FILES)
def test_word_pair_spearman_equals_gensims(source, name):
    emb, kv = both(source)
    path = benchmarks.benchmark_path(name)
    ours = benchmarks.evaluate_word_pairs(emb, path, restrict=RESTRICT)
    _, spearman, oov_percent = kv.evaluate_word_pairs(path, restrict_vocab=RESTRICT)
    assert ours.spearman == pytest.approx(spearman.statistic, abs=1e-12)
    assert 100 * ours.skipped / (ours.pairs + ours.skipped) == pytest.approx(oov_percent)


def test_3cosmul_equals_gensims_most_similar_cosmul(tmp_path):
    """Single analogies, and the benchmark's 3CosMul answers question by question, on GloVe's
    first 30,000 words (all lower-case, so there are no case variants to group); every
    3 × STRIDE-th question, as gensim's 3CosMul is slower than its 3CosAdd."""
    questions = every(3 * STRIDE, tmp_path)
    emb, kv = both("glove-6b-50d")
    for a, b, c in (("man", "king", "woman"), ("paris", "france", "rome"), ("good", "better",
                                                                             "bad")):
        ours = analogy.analogy(emb, a, b, c, k=5, method="mul", restrict=RESTRICT,
                               epsilon=GENSIM_EPSILON)
        theirs = kv.most_similar_cosmul(positive=[b, c], negative=[a], topn=5)
        assert [w for w, _ in ours] == [w for w, _ in theirs]
        np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], rtol=1e-5)
    ours = benchmarks.evaluate_analogies(emb, questions, restrict=RESTRICT, method="mul",
                                         epsilon=GENSIM_EPSILON)
    for name, section in benchmarks.read_analogies(questions):
        known = [[w.lower() for w in q] for q in section
                 if all(w.lower() in kv.key_to_index for w in q)]
        correct = sum(kv.most_similar_cosmul(positive=[b, c], negative=[a], topn=1)[0][0] == d
                      for a, b, c, d in known)
        assert ours.sections[name] == benchmarks.Score(correct, len(known)), name
