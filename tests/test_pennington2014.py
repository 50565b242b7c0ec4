"""Word vectors (papers/pennington2014): 3CosAdd and 3CosMul against brute force on small
hand-made vectors, neighbours, semantic orientation, projections, the benchmark protocol on
fixture files, and the command lines (answers, and every mistake as one line)."""

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
from absl import flags
from scipy import stats

from datasets.errors import DataFormatError
from papers.pennington2014 import analogy, benchmarks, explore, orientation, projection, table
from papers.pennington2014.vectors import Embeddings, UnknownWordError
from tests.conftest import REPO

# man : king :: woman : queen along two axes (gender, royalty), plus distractors.
HAND = {"man": [1, 0, 0], "woman": [0, 1, 0], "king": [1, 0, 1], "queen": [0, 1, 1],
        "apple": [0.5, 0.5, -1], "prince": [0.9, 0.1, 0.8], "good": [0.2, 0.1, 0.1],
        "bad": [-0.2, -0.1, 0.1], "fine": [0.3, 0.2, 0.15]}


def hand() -> Embeddings:
    return Embeddings(list(HAND), np.array(list(HAND.values()), np.float32), "hand")


def random_embeddings(n=60, dim=6, seed=0) -> Embeddings:
    rng = np.random.default_rng(seed)
    return Embeddings([f"w{i}" for i in range(n)], rng.normal(size=(n, dim)) * 3, "random")


def cos(u, v) -> float:
    return sum(x * y for x, y in zip(u, v)) / math.sqrt(sum(x * x for x in u) *
                                                         sum(y * y for y in v))


def brute_force(words, vectors, a, b, c, method, epsilon=1e-3, exclude=None):
    """The best answer by a Python loop over every candidate, ties to the earlier word."""
    exclude = {a, b, c} if exclude is None else exclude
    best, best_score = None, -math.inf
    for word, x in zip(words, vectors):
        if word in exclude:
            continue
        ca, cb, cc = cos(x, vectors[words.index(a)]), cos(x, vectors[words.index(b)]), \
            cos(x, vectors[words.index(c)])
        if method == "add":
            score = cb - ca + cc
        else:
            score = ((cb + 1) / 2) * ((cc + 1) / 2) / ((ca + 1) / 2 + epsilon)
        if score > best_score:
            best, best_score = word, score
    return best, best_score


@pytest.mark.parametrize("method", ["add", "mul"])
def test_man_king_woman_is_queen(method):
    assert analogy.analogy(hand(), "man", "king", "woman", k=1, method=method)[0][0] == "queen"


@pytest.mark.parametrize("method", ["add", "mul"])
def test_analogies_equal_brute_force(method):
    emb = random_embeddings()
    vectors = [list(map(float, v)) for v in emb.unit]
    rng = np.random.default_rng(1)
    questions = [rng.choice(len(emb), 3, replace=False) for _ in range(40)]
    solved = analogy.solve(emb.unit, np.array(questions), method, batch_size=7)
    for (a, b, c), got in zip(questions, solved):
        a, b, c = emb.words[a], emb.words[b], emb.words[c]
        expected, score = brute_force(emb.words, vectors, a, b, c, method)
        assert emb.words[got] == expected
        top = analogy.analogy(emb, a, b, c, k=3, method=method)
        assert top[0][0] == expected and top[0][1] == pytest.approx(score, rel=1e-5, abs=1e-5)
        assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)


def test_the_question_words_are_excluded():
    emb = random_embeddings(seed=2)
    vectors = [list(map(float, v)) for v in emb.unit]
    outcomes = set()
    for a, b, c in itertools.permutations(emb.words[:12], 3):
        unexcluded, _ = brute_force(emb.words, vectors, a, b, c, "add", exclude=set())
        answer = analogy.analogy(emb, a, b, c, k=emb.unit.shape[0])
        assert {a, b, c}.isdisjoint(w for w, _ in answer) and len(answer) == len(emb) - 3
        outcomes.add(unexcluded in (a, b, c))
    assert outcomes == {True, False}  # the exclusion changed some answers


def test_3cosmul_is_not_3cosadd_and_epsilon_matters():
    emb = random_embeddings(seed=3)
    questions = np.array(list(itertools.permutations(range(10), 3)))
    add = analogy.solve(emb.unit, questions, "add")
    mul = analogy.solve(emb.unit, questions, "mul")
    big_epsilon = analogy.solve(emb.unit, questions, "mul", epsilon=10.0)
    assert (add != mul).any() and (mul != big_epsilon).any()
    with pytest.raises(ValueError, match="unknown analogy method 'sub'"):
        analogy.solve(emb.unit, questions, "sub")


def test_groups_exclude_every_variant_of_a_question_word():
    words = ["man", "king", "woman", "queen", "Queen", "WOMAN"]
    vectors = np.array([HAND["man"], HAND["king"], HAND["woman"], HAND["queen"],
                        [0, 1.05, 1], [0, 1, 0.9]], np.float32)
    unit = Embeddings(words, vectors, "cased").unit
    question = np.array([[0, 1, 2]])
    assert analogy.solve(unit, question)[0] == 5  # "WOMAN" is the best non-question row
    groups = np.array([0, 1, 2, 3, 3, 2])  # WOMAN is a variant of woman, Queen of queen
    assert analogy.solve(unit, question, groups=groups)[0] == 4  # Queen


def test_restrict_searches_only_the_first_rows():
    emb = hand()
    assert analogy.analogy(emb, "man", "king", "woman", k=1, restrict=3) == []  # all asked
    assert analogy.analogy(emb, "man", "king", "woman", k=1, restrict=4)[0][0] == "queen"
    assert analogy.analogy(emb, "king", "man", "queen", k=1, restrict=3)[0][0] == "woman"


def test_neighbours_and_similarity_equal_brute_force():
    emb = random_embeddings(seed=4)
    raw = np.random.default_rng(4).normal(size=(60, 6)) * 3
    for word in emb.words[:10]:
        i = emb.words.index(word)
        expected = sorted(((cos(raw[i], raw[j]), emb.words[j]) for j in range(60) if j != i),
                          reverse=True)[:5]
        got = emb.neighbours(word, k=5)
        assert [w for w, _ in got] == [w for _, w in expected]
        np.testing.assert_allclose([s for _, s in got], [s for s, _ in expected], atol=1e-5)
        assert emb.similarity(word, expected[0][1]) == pytest.approx(expected[0][0], abs=1e-5)
    assert all(emb.words.index(w) < 20 for w, _ in emb.neighbours("w30", k=5, restrict=20))


def test_unknown_words_name_the_set_and_the_cased_form():
    with pytest.raises(UnknownWordError, match=r"'King' is not among the 9 words of hand "
                                               r"\(present: king\)"):
        hand().neighbours("King")
    with pytest.raises(UnknownWordError, match=r"'zebra' is not among the 9 words of hand$"):
        hand().similarity("man", "zebra")


def test_semantic_orientation_is_turney_littman_so_a_with_cosine():
    emb = hand()
    so = orientation.semantic_orientation(emb, "fine", ["good"], ["bad"])
    expected_pos = cos(HAND["fine"], HAND["good"])
    expected_neg = cos(HAND["fine"], HAND["bad"])
    assert so.positive == pytest.approx(expected_pos, abs=1e-6)
    assert so.negative == pytest.approx(expected_neg, abs=1e-6)
    assert so.score == pytest.approx(expected_pos - expected_neg, abs=1e-6) and so.score > 0
    two = orientation.semantic_orientation(emb, "queen", ["good", "fine"], ["bad", "apple"])
    assert two.positive == pytest.approx(cos(HAND["queen"], HAND["good"])
                                         + cos(HAND["queen"], HAND["fine"]), abs=1e-6)
    with pytest.raises(UnknownWordError, match="'nice'"):
        orientation.semantic_orientation(emb, "fine")  # the default seeds are not in HAND
    with pytest.raises(ValueError, match="at least one positive"):
        orientation.semantic_orientation(emb, "fine", [], ["bad"])
    assert len(orientation.POSITIVE) == len(orientation.NEGATIVE) == 7


def test_pca_is_the_svd_of_the_centred_unit_vectors(tmp_path):
    emb = random_embeddings(seed=5)
    words = emb.words[:8]
    picture = projection.project(emb, words, "pca")
    x = emb.unit[:8].astype(np.float64)
    x = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    for k in range(2):  # equal up to the sign of each component
        np.testing.assert_allclose(np.abs(picture.coords[:, k]), np.abs(u[:, k] * s[k]),
                                   atol=1e-6)
    share = 100 * s[:2] ** 2 / np.sum(s ** 2)
    assert picture.axes[0] == f"PC1 ({share[0]:.1f}% of variance)"
    projection.plot(picture, str(tmp_path / "pca.png"), groups=[0] * 4 + [1] * 4, title="t")
    assert (tmp_path / "pca.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tsne_and_projection_errors(tmp_path):
    emb = random_embeddings(seed=6)
    picture = projection.project(emb, emb.words[:10], "tsne", seed=1)
    again = projection.project(emb, emb.words[:10], "tsne", seed=1)
    assert picture.coords.shape == (10, 2) and np.array_equal(picture.coords, again.coords)
    assert "perplexity 3" in picture.summary and "KL divergence" in picture.summary
    projection.plot(picture, str(tmp_path / "tsne.png"))
    assert (tmp_path / "tsne.png").stat().st_size > 1000
    with pytest.raises(ValueError, match=r"perplexity must be in \(0, 10\)"):
        projection.project(emb, emb.words[:10], "tsne", perplexity=10)
    with pytest.raises(ValueError, match="at least 3 distinct words, got 2"):
        projection.project(emb, ["w1", "w2", "w1"], "pca")
    with pytest.raises(ValueError, match="unknown projection 'umap'"):
        projection.project(emb, emb.words[:5], "umap")


QUESTIONS = """\
: family
man king woman queen
Man King Woman Queen
king man queen woman
man king woman zebra
: gram1-royal
king queen man woman
man prince woman queen
"""


def test_analogy_benchmark_protocol_on_a_fixture(tmp_path):
    path = tmp_path / "questions.txt"
    path.write_text(QUESTIONS)
    emb = hand()
    vectors = [list(map(float, v)) for v in emb.unit]
    result = benchmarks.evaluate_analogies(emb, str(path), restrict=None)
    expected = {}
    for section, lines in (("family", QUESTIONS.splitlines()[1:4]),
                           ("gram1-royal", QUESTIONS.splitlines()[6:8])):
        answers = [brute_force(emb.words, vectors, *line.lower().split()[:3], "add")[0]
                   == line.lower().split()[3] for line in lines]
        expected[section] = benchmarks.Score(sum(answers), len(answers))
    assert result.sections == expected and result.skipped == 1
    assert result.semantic == expected["family"] and result.syntactic == expected["gram1-royal"]
    assert result.total.questions == 5 and result.vocabulary == 9
    small = benchmarks.evaluate_analogies(emb, str(path), restrict=4)  # man woman king queen
    assert small.total.questions == 4 and small.skipped == 2 and small.vocabulary == 4
    exact = benchmarks.evaluate_analogies(emb, str(path), restrict=None, case_insensitive=False)
    assert exact.skipped == 2  # "Man King Woman Queen" is unknown with case kept


def test_word_pair_benchmark_is_spearman_over_known_pairs(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("# a comment\n# Word 1\tWord 2\tHuman\nman\tking\t3\nking\tqueen\t7.5\n"
                    "MAN\twoman\t6\napple\tzebra\t1\ngood\tfine\t9\n")
    emb = hand()
    result = benchmarks.evaluate_word_pairs(emb, str(path), restrict=None)
    pairs = [("man", "king", 3), ("king", "queen", 7.5), ("man", "woman", 6), ("good", "fine", 9)]
    rho = stats.spearmanr([p[2] for p in pairs],
                          [cos(HAND[a], HAND[b]) for a, b, _ in pairs]).statistic
    assert result == benchmarks.PairResult(pytest.approx(rho), 4, 1)


@pytest.mark.parametrize("text, reader, message", [
    ("man king woman queen\n", "analogies", r"line 1: a question before the first"),
    (": s\nman king woman\n", "analogies", r"line 2: expected 4 words, found 3"),
    ("a\tb\n", "pairs", r"line 1: expected 3 tab-separated fields, found 2"),
    ("a\tb\tnine\n", "pairs", r"line 1, field 'score': score 'nine' is not a number"),
    ("# only a comment\n", "pairs", r"no word pairs"),
])
def test_bad_benchmark_files_name_file_and_line(tmp_path, text, reader, message):
    path = tmp_path / "bench.txt"
    path.write_text(text)
    read = benchmarks.read_analogies if reader == "analogies" else benchmarks.read_word_pairs
    with pytest.raises(DataFormatError, match=rf"bench\.txt[,:] {message}"):
        read(str(path))


def test_benchmark_files_come_from_gensims_wheel(monkeypatch, tmp_path):
    for name in (benchmarks.ANALOGIES, *benchmarks.PAIR_FILES):
        assert benchmarks.benchmark_path(name).endswith(f"gensim/test/test_data/{name}")
    assert sum(len(q) for _, q in benchmarks.read_analogies(
        benchmarks.benchmark_path(benchmarks.ANALOGIES))) == 19544
    assert len(benchmarks.read_word_pairs(benchmarks.benchmark_path("wordsim353.tsv"))) == 353
    assert len(benchmarks.read_word_pairs(benchmarks.benchmark_path("simlex999.txt"))) == 999
    monkeypatch.setenv("KERAS_PAPERS_WORD_BENCHMARKS", str(tmp_path))
    with pytest.raises(DataFormatError, match="simlex999.txt not found: it ships in the gensim"):
        benchmarks.benchmark_path("simlex999.txt")


def test_table_rows_with_published_numbers(tmp_path, monkeypatch):
    (tmp_path / "questions-words.txt").write_text(QUESTIONS)
    for name in benchmarks.PAIR_FILES:
        (tmp_path / name).write_text("man\tking\t3\nking\tqueen\t7.5\nman\twoman\t6\n")
    monkeypatch.setenv("KERAS_PAPERS_WORD_BENCHMARKS", str(tmp_path))
    vectors = tmp_path / "hand.txt"
    vectors.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in HAND.items()))
    result = table.evaluate_set(str(vectors), restrict=None, methods=["add", "mul"])
    rows = table.markdown_rows(result)
    assert len(rows) == 2 and rows[0].startswith(f"| {vectors} | 9 | 3CosAdd | ")
    assert "| 5 of 6 |" in rows[0] and rows[1].count("|") == table.HEADER.count("|") // 2
    total = result["analogies"]["add"]["total"]
    assert f"| {total['accuracy']:.2f} ± {total['half_width_95']:.2f} |" in rows[0]
    result["vectors"] = "word2vec-googlenews-300d-26k"
    published = table.markdown_rows(result)[-1]
    assert published.startswith("| published (Pennington et al. 2014, Table 3 (CBOW*))")
    assert published.endswith("| 68.4 | — |")


def test_table_intervals():
    assert table.accuracy_half_width(50, 100) == pytest.approx(100 * 1.96 * 0.05)
    low, high = table.spearman_interval(0.5, 103)  # z = atanh(0.5), half = 1.96 √(1.06/100)
    assert (low, high) == pytest.approx((math.tanh(math.atanh(0.5) - 1.96 * math.sqrt(0.0106)),
                                         math.tanh(math.atanh(0.5) + 1.96 * math.sqrt(0.0106))))
    assert low < 0.5 < high and math.isnan(table.spearman_interval(1.0, 50)[0])


@pytest.fixture
def vectors_file(tmp_path):
    path = tmp_path / "hand.txt"
    path.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in HAND.items()))
    return str(path)


def explore_with(capsys, monkeypatch, vectors_file, *args):
    return run_explore(capsys, monkeypatch, f"--vectors={vectors_file}", *args)


def run_explore(capsys, monkeypatch, *args):
    """``explore.main`` in this process, on flags of its own (other programs' flags live in
    ``flags.FLAGS``); returns (status, stdout, stderr)."""
    own = flags.FlagValues()
    explore.define_flags(own)
    own(["explore.py", *args])
    monkeypatch.setattr(explore, "FLAGS", own)
    status = explore.main(["explore.py"])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_explore_answers(capsys, monkeypatch, vectors_file, tmp_path):
    status, out, _ = explore_with(capsys, monkeypatch, vectors_file, "--neighbours=king",
                                  "--k=2")
    assert status == 0 and out.splitlines()[1].split()[:2] == ["1", "prince"]
    status, out, _ = explore_with(capsys, monkeypatch, vectors_file,
                                  "--similarity=man,king;king,queen")
    assert status == 0 and out.splitlines()[0] == "cos('man', 'king') = +0.7071"
    status, out, _ = explore_with(capsys, monkeypatch, vectors_file,
                                  "--analogy=man,king,woman", "--method=mul", "--k=1")
    assert status == 0 and "3CosMul" in out and out.splitlines()[1].split()[1] == "queen"
    status, out, _ = explore_with(capsys, monkeypatch, vectors_file, "--orientation=fine",
                                  "--positive=good", "--negative=bad")
    expected = cos(HAND["fine"], HAND["good"]) - cos(HAND["fine"], HAND["bad"])
    assert status == 0 and out.splitlines()[-1].split()[:2] == ["fine", f"{expected:+.4f}"]
    png = tmp_path / "words.png"
    status, out, _ = explore_with(capsys, monkeypatch, vectors_file, f"--output={png}",
                                  "--plot=man,king,woman,queen;apple,good,bad")
    assert status == 0 and out.startswith(f"wrote {png}: PCA of 7 unit vectors") and png.exists()


@pytest.mark.parametrize("args, message", [
    ([], "give exactly one of --neighbours, --similarity, --analogy, --orientation, --plot "
         "(got none)"),
    (["--neighbours=man", "--analogy=a,b,c"], "(got --neighbours, --analogy)"),
    (["--neighbours=King"], "'King' is not among the 9 words of VECTORS (present: king)"),
    (["--analogy=man,king"], "--analogy: 'man,king' has 2 words, expected 3"),
    (["--similarity=man,king,queen"], "has 3 words, expected 2"),
    (["--neighbours=man", "--k=0"], "--k must be at least 1, got 0"),
    (["--neighbours=man", "--restrict=-1"], "--restrict must be 0 (all words) or more"),
    (["--plot=man,king,queen"], "--plot needs --output=FILE.png"),
    (["--plot=man,king,queen", "--output=x.jpg"], "--output must name a .png file"),
    (["--plot=man,king;man,queen", "--output=OUT"], "--plot repeats a word"),
    (["--plot=man,king,queen", "--output=OUT", "--projection=tsne", "--perplexity=5"],
     "t-SNE's perplexity must be in (0, 3) for 3 words, got 5"),
    (["--orientation=fine"], "'nice' is not among the 9 words"),
    (["--neighbours=man", "--positive=good"], "--positive and --negative go with --orientation"),
    (["--neighbours=man", "--vectors=glove-6b-100d"], "glove-6b-100d: word vectors not found: "
                                                      "give a file, or one of glove-6b-50d"),
])
def test_explore_mistakes_are_one_line(capsys, monkeypatch, vectors_file, tmp_path, args,
                                       message):
    args = [a.replace("OUT", str(tmp_path / "x.png")) for a in args]
    status, out, err = explore_with(capsys, monkeypatch, vectors_file, *args)
    message = message.replace("VECTORS", vectors_file)
    assert status == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith("explore.py: error: ") or ": error: " in err
    assert message in err, err
    assert not (tmp_path / "x.png").exists()


def test_explore_command_line_exit_status(vectors_file):
    out = subprocess.run([sys.executable, "-m", "papers.pennington2014.explore",
                          f"--vectors={vectors_file}", "--neighbours=zebra"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stdout == "", out.stderr[-2000:]
    assert out.stderr == (f"explore.py: error: 'zebra' is not among the 9 words of "
                          f"{vectors_file}\n")


@pytest.mark.parametrize("args, message", [
    (["--methods=add,div"], "--methods takes add and/or mul, got 'add,div'"),
    (["--restrict=-5"], "--restrict must be 0 (all) or more"),
])
def test_benchmark_command_line_mistakes_are_one_line(args, message):
    out = subprocess.run([sys.executable, "-m", "papers.pennington2014.benchmark", *args],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stdout == "", out.stderr[-2000:]
    assert out.stderr.startswith("benchmark.py: error: ") and out.stderr.count("\n") == 1
    assert message in out.stderr
