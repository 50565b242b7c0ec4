"""Caption metrics (metrics/captions.py) against coco-caption's definitions.

The Java tests need a Java runtime (the CI script installs one); they fail, never skip, without it.
"""

import importlib.util
import logging
import math
import os
import random
import shutil
import subprocess
import time

import numpy as np
import pytest

from metrics import captions as cm, ptb_tokenizer

# A small fixed corpus: 4 images with 2 to 5 references. img1's hypothesis (9 tokens) is as far
# from a 10-token as from an 8-token reference (coco-caption then takes the shorter), img3's is
# shorter than all its references, and the corpus is shorter than its effective reference
# length, so the brevity penalty applies.
REFS = {
    "img1": ["A man is riding a brown horse on the beach.",
             "A person rides a horse along the shore.",
             "Man on horseback near the ocean waves."],
    "img2": ["Two dogs are playing with a red ball in the grass.",
             "A pair of dogs chase a ball across a lawn.",
             "Two brown dogs play in a grassy field.",
             "Dogs running after a ball outside.",
             "Two puppies playing fetch in a park!"],
    "img3": ["A woman's hands hold a cup of coffee.",
             "Someone is holding a white coffee mug."],
    "img4": ["A group of children sit at a table, eating pizza.",
             "Kids are eating pizza together at a long table.",
             "Several young children share a pizza at lunch.",
             "Children (and adults) having pizza at a party."],
}
HYPS = {
    "img1": "A man riding a horse on the sandy beach.",
    "img2": "Two dogs play with a ball in the grass, outside.",
    "img3": "A cup.",
    "img4": "Children eating pizza at a table.",
}
# PTBTokenizer's output after coco-caption's punctuation filter, written out by hand. The jar
# lower-cases "-LRB-" before the filter (which lists it in upper case), so brackets stay.
REFS_TOKENS = {
    "img1": ["a man is riding a brown horse on the beach",
             "a person rides a horse along the shore",
             "man on horseback near the ocean waves"],
    "img2": ["two dogs are playing with a red ball in the grass",
             "a pair of dogs chase a ball across a lawn",
             "two brown dogs play in a grassy field",
             "dogs running after a ball outside",
             "two puppies playing fetch in a park"],
    "img3": ["a woman 's hands hold a cup of coffee",
             "someone is holding a white coffee mug"],
    "img4": ["a group of children sit at a table eating pizza",
             "kids are eating pizza together at a long table",
             "several young children share a pizza at lunch",
             "children -lrb- and adults -rrb- having pizza at a party"],
}
HYPS_TOKENS = {
    "img1": "a man riding a horse on the sandy beach",
    "img2": "two dogs play with a ball in the grass outside",
    "img3": "a cup",
    "img4": "children eating pizza at a table",
}

# METEOR 1.5 of the fixed corpus (raw, in [0, 1]). Obtained once by running the meteor-1.5.jar
# shipped in pycocoevalcap 1.2 (OpenJDK 17) on the PTB-tokenised corpus, both through
# score_captions and through pycocoevalcap's own PTBTokenizer + Meteor classes: both gave
# 0.3197240226973018.
RECORDED_METEOR = 0.3197240226973018

PAPER_KEYS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "CIDEr", "ROUGE-L")
RAW_KEYS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "cider", "rouge_l")


def corpus_bleu(refs_tokens, hyps_tokens, max_n=4):
    """Papineni et al. 2002 corpus BLEU, transcribed with coco-caption's conventions.

    Clipped n-gram counts (a hypothesis n-gram counts at most as often as in the reference that
    has it most), summed over the corpus; the effective reference length is the sum, over images,
    of the reference length closest to the hypothesis length (the shorter one on a tie);
    precisions are (correct + 1e-15) / (guess + 1e-9), and the brevity penalty
    exp(1 - r / c) applies when c < r (with the same constants in the ratio). BLEU-n is the
    geometric mean of the first n precisions times the penalty. Brute-force counting.

    Returns (list of BLEU-1..max_n, hypothesis length c, effective reference length r).
    """
    small, tiny = 1e-9, 1e-15
    correct = np.zeros(max_n)
    guess = np.zeros(max_n)
    c = r = 0
    for image, hypothesis in hyps_tokens.items():
        hyp = hypothesis.split()
        refs = [ref.split() for ref in refs_tokens[image]]
        c += len(hyp)
        r += min((len(ref) for ref in refs), key=lambda length: (abs(length - len(hyp)), length))
        for n in range(1, max_n + 1):
            grams = [tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1)]
            guess[n - 1] += len(grams)
            for gram in set(grams):
                in_refs = max(sum(tuple(ref[i:i + n]) == gram for i in range(len(ref) - n + 1))
                              for ref in refs)
                correct[n - 1] += min(grams.count(gram), in_refs)
    precisions = (correct + tiny) / (guess + small)
    ratio = (c + tiny) / (r + small)
    penalty = math.exp(1 - 1 / ratio) if ratio < 1 else 1.0
    bleus = [float(np.prod(precisions[:n]) ** (1 / n) * penalty) for n in range(1, max_n + 1)]
    return bleus, c, r


@pytest.fixture(scope="module")
def java():
    path = cm.find_java()
    if path is None:
        pytest.fail("no Java runtime: coco-caption's PTBTokenizer and METEOR 1.5 are Java "
                    "programs; install a JRE 8+ (the CI script installs OpenJDK) or set "
                    "JAVA_HOME", pytrace=False)
    return path


@pytest.fixture(scope="module")
def scorer(java):
    # One METEOR process for the tests below: it takes several seconds to start.
    with cm.CaptionScorer() as scorer:
        yield scorer
        process = scorer._meteor._process if scorer._meteor is not None else None
    assert process is None or process.poll() is not None, "closing left METEOR running"


@pytest.fixture(scope="module")
def fixed_scores(scorer):
    return scorer.score(REFS, HYPS)


# ---------------------------------------------------------------------------------------------
# With Java: the coco-caption pipeline
# ---------------------------------------------------------------------------------------------

def test_ptb_tokenisation_matches_hand_tokens(java):
    raw = [ref for refs in REFS.values() for ref in refs] + list(HYPS.values())
    expected = [ref for refs in REFS_TOKENS.values() for ref in refs] + list(HYPS_TOKENS.values())
    assert cm.tokenize_captions(raw) == expected


def test_tokenisation_matches_the_packages_ptbtokenizer(java, tmp_path, monkeypatch):
    # pycocoevalcap's PTBTokenizer, unchanged, run from a copy so that the temporary file it
    # creates next to itself lands in tmp_path rather than in site-packages.
    jar = ptb_tokenizer.TOKENIZER_JAR
    source = os.path.dirname(jar)
    shutil.copy(os.path.join(source, "ptbtokenizer.py"), tmp_path)
    os.symlink(jar, tmp_path / os.path.basename(jar))
    spec = importlib.util.spec_from_file_location("ptb_copy", tmp_path / "ptbtokenizer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("PATH", os.path.dirname(java) + os.pathsep + os.environ.get("PATH", ""))
    theirs = module.PTBTokenizer().tokenize(
        {image: [{"caption": c} for c in refs] for image, refs in REFS.items()})
    ours = cm.tokenize_captions([c for refs in REFS.values() for c in refs])
    assert [c for image in REFS for c in theirs[image]] == ours


def test_bleu_equals_a_transcription_of_papineni(fixed_scores):
    expected, c, r = corpus_bleu(REFS_TOKENS, HYPS_TOKENS)
    assert c < r, "the corpus must exercise the brevity penalty"
    for n in range(4):
        assert fixed_scores[f"bleu_{n + 1}"] == pytest.approx(expected[n], rel=1e-12)
        assert fixed_scores[f"BLEU-{n + 1}"] == pytest.approx(100 * expected[n], rel=1e-12)


def test_meteor_equals_the_recorded_value(fixed_scores):
    assert fixed_scores["meteor"] == pytest.approx(RECORDED_METEOR, abs=1e-4)
    assert fixed_scores["METEOR"] == pytest.approx(100 * RECORDED_METEOR, abs=1e-2)
    assert fixed_scores.unavailable == {}


def test_keys_and_scales(fixed_scores):
    assert set(fixed_scores) == set(PAPER_KEYS) | set(RAW_KEYS)
    for raw_key, paper_key in zip(RAW_KEYS, PAPER_KEYS):
        assert fixed_scores[paper_key] == pytest.approx(100 * fixed_scores[raw_key])
    assert 0 < fixed_scores["rouge_l"] < 1 and fixed_scores["cider"] > 0


def test_perfect_hypotheses(scorer):
    perfect = {image: refs[0] for image, refs in REFS.items()}
    scores = scorer.score(REFS, perfect)
    for n in range(1, 5):
        assert scores[f"BLEU-{n}"] == pytest.approx(100.0, abs=1e-6)
    assert scores["meteor"] == pytest.approx(1.0, abs=1e-3)
    assert scores["ROUGE-L"] == pytest.approx(100.0)
    assert scores["cider"] > 1.0


def test_many_images_hostile_text_no_leaked_processes(java, monkeypatch, capfd):
    # 125 images x 5 references (the size of a small test split), with an empty hypothesis and
    # captions carrying line breaks and METEOR's field separator, which would break its protocol.
    rng = random.Random(0)
    words = ("a man woman dog cat two black white red small on in with at the of is are "
             "riding playing standing sitting beach grass street water ball bike table").split()

    def caption():
        return " ".join(rng.choice(words) for _ in range(rng.randint(5, 12)))

    refs = {i: [caption() for _ in range(5)] for i in range(125)}
    hyps = {i: caption() for i in range(125)}
    hyps[0] = ""
    hyps[1] = "a man ||| riding\na bike"
    hyps[2] = "a dog\r\nin the water |||"
    refs[3][0] = "two dogs ||| on\nthe beach"

    started = []
    real_popen = subprocess.Popen

    def tracking_popen(*args, **kwargs):
        process = real_popen(*args, **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(subprocess, "Popen", tracking_popen)
    package_dir = os.path.dirname(ptb_tokenizer.TOKENIZER_JAR)
    before = sorted(os.listdir(package_dir))
    start = time.perf_counter()
    scores = cm.score_captions(refs, hyps)
    elapsed = time.perf_counter() - start

    assert all(0 <= scores[key] for key in RAW_KEYS)
    assert len(started) >= 3  # two tokenizer runs and METEOR
    assert all(process.poll() is not None for process in started), "a Java process is alive"
    assert sorted(os.listdir(package_dir)) == before, "a file was written into site-packages"
    assert capfd.readouterr().out == ""
    # METEOR's start-up (loading its paraphrase table) takes most of this, about 8 s here.
    assert elapsed < 120
    # Plain lower-case words: the jar and the Python tokenisation agree, so BLEU does too.
    no_java = cm.score_captions(refs, hyps, metrics=("bleu",), java=None)
    for n in range(1, 5):
        assert no_java[f"bleu_{n}"] == pytest.approx(scores[f"bleu_{n}"], rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Without Java
# ---------------------------------------------------------------------------------------------

def test_without_java_bleu_matches_and_meteor_is_unavailable(fixed_scores, monkeypatch, caplog):
    monkeypatch.setattr(cm, "find_java", lambda: None)
    monkeypatch.setattr(cm, "_warned_no_java", False)
    with caplog.at_level(logging.WARNING, logger=cm.__name__):
        scores = cm.score_captions(REFS, HYPS)
        again = cm.score_captions(REFS, HYPS)
    for key in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "cider", "rouge_l"):
        assert scores[key] == pytest.approx(fixed_scores[key], rel=1e-12)
    assert scores["meteor"] is None and scores["METEOR"] is None
    assert "Java" in scores.unavailable["meteor"]
    assert dict(again) == dict(scores)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_python_tokenisation_matches_hand_tokens():
    raw = [ref for refs in REFS.values() for ref in refs] + list(HYPS.values())
    expected = [ref for refs in REFS_TOKENS.values() for ref in refs] + list(HYPS_TOKENS.values())
    assert cm.tokenize_captions(raw, java=None) == expected


@pytest.mark.parametrize("text, tokens", [
    ("A dog's toy, (red) \"big\" -- ok...", "a dog 's toy -lrb- red -rrb- big ok"),
    ("He can't go; I won't! What?", "he ca n't go i wo n't what"),
    ("A man 's hat , a slip 'n' slide .", "a man 's hat a slip 'n' slide"),
    ("Mr. Smith in the U.S. at 3:30 pm", "mr. smith in the u.s. at 3:30 pm"),
    ("50% off $5, 1,000 people; 2.50.", "50 % off $ 5 1,000 people 2.50"),
    ("a t-shirt - and a 10-year-old, AT&T at&t", "a t-shirt and a 10-year-old at&t at & t"),
    ("it\u2019s \u201cquoted\u201d \u2014 dash", "it 's quoted dash"),
    ("cannot gonna wanna", "can not gon na wan na"),
    ("hi!! ok?! wow!", "hi !! ok ?! wow"),
])
def test_python_tokenisation_cases(text, tokens):
    # Each expected string is the jar's output (PTBTokenizer, CoreNLP 3.4.1) after the filter.
    assert cm.tokenize_captions([text], java=None) == [tokens]


def test_rouge_l_and_cider_sanity():
    refs = {1: ["a man riding a horse on a beach", "a person on a horse near the sea"],
            2: ["two dogs playing in the snow", "dogs running through snow"],
            3: ["a bowl of fruit on a table", "apples and bananas in a bowl"]}
    identical = cm.score_captions(refs, {i: r[0] for i, r in refs.items()},
                                  metrics=("rouge_l", "cider"), java=None)
    assert identical["ROUGE-L"] == pytest.approx(100.0)
    good = cm.score_captions(refs, {1: "a man riding a horse", 2: "two dogs in the snow",
                                    3: "a bowl of fruit"}, metrics=("cider",), java=None)
    bad = cm.score_captions(refs, {1: "a bowl of snow", 2: "a man on a table",
                                   3: "dogs riding a horse"}, metrics=("cider",), java=None)
    assert good["cider"] > bad["cider"] >= 0
    assert set(good) == {"CIDEr", "cider"}


def test_empty_hypothesis_is_scored_as_empty():
    scores = cm.score_captions(REFS, dict(HYPS, img3=""), java=None)
    expected, _, _ = corpus_bleu(REFS_TOKENS, dict(HYPS_TOKENS, img3=""))
    assert scores["bleu_4"] == pytest.approx(expected[3], rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------------

def test_missing_ids_are_named():
    with pytest.raises(ValueError, match=r"1 hypothesis id\(s\) without references \('img9'\)"):
        cm.score_captions(REFS, dict(HYPS, img9="a cat"), java=None)
    with pytest.raises(ValueError, match=r"1 reference id\(s\) without a hypothesis \('img2'\)"):
        cm.score_captions(REFS, {k: v for k, v in HYPS.items() if k != "img2"}, java=None)
    many = {f"x{i}": "a cat" for i in range(8)}
    with pytest.raises(ValueError, match=r"8 hypothesis id\(s\) .*'x0', .* and 3 more"):
        cm.score_captions(REFS, dict(HYPS, **many), java=None)


@pytest.mark.parametrize("refs, hyps, error, message", [
    ({1: []}, {1: "a cat"}, ValueError, r"references\[1\] is empty"),
    ({1: ["a cat", "  "]}, {1: "a cat"}, ValueError, r"references\[1\] contains an empty"),
    ({1: "a cat"}, {1: "a cat"}, TypeError, r"references\[1\] must be a list of str"),
    ({1: ["a cat"]}, {1: ["a cat"]}, TypeError, r"hypotheses\[1\] must be a str"),
    ({}, {}, ValueError, "no captions"),
])
def test_bad_input(refs, hyps, error, message):
    with pytest.raises(error, match=message):
        cm.score_captions(refs, hyps, java=None)


def test_unknown_metric():
    with pytest.raises(ValueError, match="unknown metrics"):
        cm.score_captions(REFS, HYPS, metrics=("bleu", "spice"), java=None)


def test_scorer_close_stops_meteor_and_restarts_on_demand(java):
    scorer = cm.CaptionScorer()
    scores = scorer.score(REFS, HYPS, metrics=("bleu",))
    assert scorer._meteor is None, "METEOR must start only when asked for"
    assert set(scores) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4",
                           "bleu_1", "bleu_2", "bleu_3", "bleu_4"}
    scorer.close()


def test_python_tokenisation_matches_the_jar_on_flickr8k(java, data_dir):
    # Every Flickr8k caption (40,460): the pure-Python stand-in gives the jar's tokens.
    path = os.path.join(data_dir, "flickr8k", "text", "Flickr8k.token.txt")
    with open(path, encoding="utf-8") as handle:
        captions = [line.rstrip("\n").split("\t", 1)[1] for line in handle if "\t" in line]
    assert len(captions) == 40460
    jar = cm.tokenize_captions(captions)
    python = cm.tokenize_captions(captions, java=None)
    differences = [(c, j, p) for c, j, p in zip(captions, jar, python) if j != p]
    assert not differences, f"{len(differences)} captions differ, e.g. {differences[:3]}"


# ---------------------------------------------------------------------------------------------
# Bootstrap intervals over the images
# ---------------------------------------------------------------------------------------------

def _flickr_corpus(data_dir, n=60):
    from datasets.flickr8k import read_captions

    captions, _ = read_captions(os.path.join(data_dir, "flickr8k", "text", "Flickr8k.token.txt"))
    names = sorted(captions)[:n]
    # hypotheses: another image's first caption, so every score is small but not zero
    return ({k: captions[k][1:] for k in names},
            {k: captions[names[(i + 1) % n]][0] for i, k in enumerate(names)},
            {k: captions[k][0] for k in names})


def test_bleu_from_summed_image_statistics_equals_coco_caption(scorer, data_dir):
    for refs, hyps in (_flickr_corpus(data_dir)[:2], (REFS, HYPS)):
        ids = list(refs)
        gts, res = scorer._tokenize(ids, refs, hyps)
        stats = cm.bleu_statistics(gts, res)
        assert stats.shape == (len(ids), 10)
        expected, _ = cm.Bleu(4).compute_score(gts, res, verbose=0)
        np.testing.assert_allclose(cm.corpus_bleu(stats), expected, rtol=1e-12)
        # a resample with repeats is the corpus that holds those images that many times
        rows = [0, 0, 2, 1]
        repeated = {n: gts[i] for n, i in enumerate(rows)}
        again, _ = cm.Bleu(4).compute_score(repeated, {n: res[i] for n, i in enumerate(rows)},
                                            verbose=0)
        np.testing.assert_allclose(cm.corpus_bleu(stats[rows]), again, rtol=1e-12)


def test_meteor_of_a_resample_is_the_jar_s_score_of_that_corpus(scorer, data_dir):
    refs, hyps, _ = _flickr_corpus(data_dir, n=6)
    ids = list(refs)
    gts, res = scorer._tokenize(ids, refs, hyps)
    meteor = scorer._start_meteor()
    stats = meteor.statistics([res[i][0] for i in gts], [gts[i] for i in gts])
    rows = [3, 3, 0, 5, 1, 1]
    direct = meteor.score([res[i][0] for i in rows], [gts[i] for i in rows])[0]
    assert meteor.evaluate([stats[i] for i in rows])[0] == pytest.approx(direct, abs=1e-12)


def test_intervals_hold_the_score_and_shrink_with_more_images(scorer, data_dir):
    small, large = (_flickr_corpus(data_dir, n) for n in (30, 120))
    widths = []
    for refs, hyps, _ in (small, large):
        scores = scorer.score(refs, hyps)
        intervals = scorer.intervals(refs, hyps, resamples=200, seed=3)
        assert set(intervals) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "CIDEr",
                                  "ROUGE-L"}
        for name, (low, high) in intervals.items():
            assert low < high and low <= scores[name] + 1e-9 <= high + 2e-9, name
        widths.append(intervals["BLEU-1"][1] - intervals["BLEU-1"][0])
        assert intervals == scorer.intervals(refs, hyps, resamples=200, seed=3)  # seeded
    assert widths[1] < widths[0]


def test_paired_intervals_are_the_differences_of_the_resampled_corpora(data_dir):
    """Brute force: each resample's difference is score(A) − score(B) of the corpus that holds
    the resampled images (repeats included), scored from scratch (BLEU and ROUGE-L; CIDEr's
    document frequencies stay those of the whole set, see the module docstring)."""
    from metrics import bootstrap

    refs, other, own = _flickr_corpus(data_dir, n=12)
    hyps = {k: own[k] if i % 3 else other[k] for i, k in enumerate(refs)}  # a mix of the two
    scorer = cm.CaptionScorer(java=None)  # Python tokenisation; no METEOR
    paired = scorer.paired_intervals(refs, hyps, other, resamples=7, seed=5)
    assert paired["METEOR"] is None
    names = list(refs)
    differences = {f"BLEU-{k}": [] for k in range(1, 5)} | {"ROUGE-L": []}
    for rows in bootstrap.resample_indices(len(names), 7, 5):
        corpus = {n: refs[names[i]] for n, i in enumerate(rows)}
        a = scorer.score(corpus, {n: hyps[names[i]] for n, i in enumerate(rows)},
                         ("bleu", "rouge_l"))
        b = scorer.score(corpus, {n: other[names[i]] for n, i in enumerate(rows)},
                         ("bleu", "rouge_l"))
        for name, values in differences.items():
            values.append(a[name] - b[name])
    for name, values in differences.items():
        np.testing.assert_allclose(paired[name]["ci95"], bootstrap.percentile_interval(values),
                                   atol=1e-9, err_msg=name)
        assert paired[name]["higher"] == pytest.approx(np.mean(np.asarray(values) > 0)), name


def test_a_system_against_itself_differs_by_nothing_and_the_true_captions_win(scorer,
                                                                              data_dir):
    refs, other, own = _flickr_corpus(data_dir, n=30)
    same = scorer.paired_intervals(refs, other, dict(other), resamples=50, seed=1)
    for name, result in same.items():
        assert result == {"ci95": (0.0, 0.0), "higher": 0.0}, name
    better = scorer.paired_intervals(refs, own, other, resamples=50, seed=1)
    for name, result in better.items():  # a held-out human caption beats another image's
        assert result["higher"] == 1.0 and result["ci95"][0] > 0, name
    with pytest.raises(ValueError, match="without a hypothesis"):
        scorer.paired_intervals(refs, own, dict(list(other.items())[:-1]), resamples=5)
