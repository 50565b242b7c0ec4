"""Caption metrics computed the way coco-caption computes them.

Xu et al. 2015 (Show, Attend and Tell, ICML) report BLEU-1..4 and METEOR from the MS COCO
caption evaluation code ("coco-caption", Chen et al. 2015, https://github.com/tylin/coco-caption).
This module runs that code, as packaged on PyPI as ``pycocoevalcap==1.2``:

- both references and hypotheses are tokenised with the Stanford PTBTokenizer jar it ships
  (CoreNLP 3.4.1, ``-preserveLines -lowerCase``), after which the tokens in its ``PUNCTUATIONS``
  list are removed (:mod:`metrics.ptb_tokenizer`);
- BLEU-1..4 (Papineni et al. 2002; corpus level, clipped counts over all references, "closest"
  effective reference length), CIDEr (Vedantam et al. 2015; coco-caption's "CIDEr" is the CIDEr-D
  variant: clipped n-gram counts, a Gaussian length penalty with sigma 6, times 10) and ROUGE-L
  (Lin 2004, beta 1.2) come from its Python scorers;
- METEOR 1.5 (Denkowski and Lavie 2014) comes from the jar it ships, with its command line
  (``-l en -norm``) and its line protocol (:mod:`metrics.meteor`).

The package's two Java wrappers are replaced by equivalents, without editing the installed
package: the tokenizer runs in a private temporary directory instead of the package's folder,
and METEOR's Java process answers under a timeout and is stopped explicitly: before
:func:`score_captions` returns, or when a :class:`CaptionScorer` (which keeps it between calls)
is closed. Line breaks and the field separator ``|||`` are removed from every caption before it
reaches a jar. The two modules above say why in detail.

Without a Java runtime (:func:`find_java`, from :mod:`metrics.java_runtime`) neither jar
can run: BLEU, CIDEr and ROUGE-L are then computed on a pure-Python tokenisation that mimics
PTBTokenizer for caption text (identical tokens for ordinary captions; rare constructs such as
emoticons, URLs or unusual abbreviations may differ), and METEOR is reported as unavailable.

Note that CIDEr's document frequencies come from the references being scored, so CIDEr depends on
the whole evaluated set: score a split in one call, never batch by batch.

**Uncertainty over the test images** (:meth:`CaptionScorer.intervals`): a percentile bootstrap
(:mod:`metrics.bootstrap`) that recomputes each corpus metric on resampled image sets. BLEU is
recomputed exactly from each image's sufficient statistics (:func:`bleu_statistics`,
:func:`corpus_bleu`: test length, closest reference length, n-gram guesses and clipped
matches, summed over the resample); METEOR by the jar's own aggregation of the resample's
segment statistics (``EVAL``); ROUGE-L is coco-caption's mean of per-image scores, and so is
CIDEr, whose document frequencies are kept at those of the whole scored set (recomputing them
per resample would count a repeated image's references twice).
:meth:`CaptionScorer.paired_intervals` compares two systems' captions of the same images on
the same resamples: the interval of the difference, and how often one scores higher.

:func:`find_java` and :func:`tokenize_captions` are importable from here as well.

Example:

```python
refs = {1: ["A man rides a horse.", "A person riding a brown horse."],
        2: ["Two dogs play in the snow.", "Dogs playing on snow."]}
hyps = {1: "a man riding a horse", 2: "two dogs playing in snow"}
scores = score_captions(refs, hyps)
scores["BLEU-4"], scores["METEOR"]      # x100, as the papers print them
with CaptionScorer() as scorer:         # keeps METEOR's Java process between calls
    for epoch in range(epochs):
        scores = scorer.score(refs, generate(model))
```
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.bleu.bleu_scorer import BleuScorer
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

# find_java and tokenize_captions are also part of this module's interface.
from metrics import bootstrap
from metrics.java_runtime import find_java
from metrics.meteor import MeteorProcess
from metrics.ptb_tokenizer import jar_tokenize, python_tokenize, tokenize_captions

logger = logging.getLogger(__name__)

METRICS = ("bleu", "meteor", "cider", "rouge_l")
"""Metric groups accepted by :func:`score_captions`."""

# Raw key -> key in the papers' scale (x100). Xu et al. Table 1 prints BLEU and METEOR x100;
# later captioning papers print CIDEr and ROUGE-L x100 as well.
_PAPER_KEYS = {
    "bleu_1": "BLEU-1", "bleu_2": "BLEU-2", "bleu_3": "BLEU-3", "bleu_4": "BLEU-4",
    "meteor": "METEOR", "cider": "CIDEr", "rouge_l": "ROUGE-L",
}
_GROUP_KEYS = {
    "bleu": ("bleu_1", "bleu_2", "bleu_3", "bleu_4"),
    "meteor": ("meteor",),
    "cider": ("cider",),
    "rouge_l": ("rouge_l",),
}
_NO_JAVA = "no Java runtime found (JAVA_HOME, PATH): METEOR 1.5 is a Java program"
_JAVA_OFF = "Java disabled by the caller (java=None): METEOR 1.5 is a Java program"
_warned_no_java = False


class CaptionScores(dict):
    """Scores from :func:`score_captions`: a dict of metric name to value.

    Keys in the papers' scale (each raw value x100): ``"BLEU-1"`` .. ``"BLEU-4"``, ``"METEOR"``,
    ``"CIDEr"``, ``"ROUGE-L"``. Raw coco-caption values (BLEU and METEOR in [0, 1], CIDEr in
    [0, 10], ROUGE-L in [0, 1]): ``"bleu_1"`` .. ``"bleu_4"``, ``"meteor"``, ``"cider"``,
    ``"rouge_l"``. Only the requested metrics appear. A metric that could not be computed has the
    value ``None`` under both keys and a one-line reason in :attr:`unavailable`.
    """

    def __init__(self, *args, unavailable: Mapping[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.unavailable: dict[str, str] = dict(unavailable or {})
        """Metric (raw key, e.g. ``"meteor"``) -> why it has no value."""


def _resolve_java(java: str | None) -> str | None:
    return find_java() if java == "auto" else java


def _warn_no_java() -> None:
    global _warned_no_java
    if not _warned_no_java:
        _warned_no_java = True
        logger.warning("No Java runtime found (JAVA_HOME, PATH): captions are tokenised in "
                       "Python and METEOR is not computed; install Java 8+ for the coco-caption "
                       "numbers")


def _preview(ids) -> str:
    shown = sorted(ids, key=repr)[:5]
    more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
    return ", ".join(repr(i) for i in shown) + more


def _validate(references, hypotheses, metrics) -> tuple[list[Hashable], tuple[str, ...]]:
    if not isinstance(references, Mapping) or not isinstance(hypotheses, Mapping):
        raise TypeError("references and hypotheses must be dicts keyed by image id")
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = tuple(dict.fromkeys(metrics))
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"unknown metrics {unknown}; choose from {list(METRICS)}")
    missing_refs = hypotheses.keys() - references.keys()
    missing_hyps = references.keys() - hypotheses.keys()
    if missing_refs or missing_hyps:
        parts = []
        if missing_refs:
            parts.append(f"{len(missing_refs)} hypothesis id(s) without references "
                         f"({_preview(missing_refs)})")
        if missing_hyps:
            parts.append(f"{len(missing_hyps)} reference id(s) without a hypothesis "
                         f"({_preview(missing_hyps)})")
        raise ValueError("; ".join(parts))
    if not hypotheses:
        raise ValueError("no captions to score: references and hypotheses are empty")
    for image_id, hypothesis in hypotheses.items():
        if not isinstance(hypothesis, str):
            raise TypeError(f"hypotheses[{image_id!r}] must be a str, "
                            f"got {type(hypothesis).__name__}")
    for image_id, refs in references.items():
        if isinstance(refs, str) or not isinstance(refs, Sequence):
            raise TypeError(f"references[{image_id!r}] must be a list of str, "
                            f"got {type(refs).__name__}")
        if not refs:
            raise ValueError(f"references[{image_id!r}] is empty")
        for ref in refs:
            if not isinstance(ref, str):
                raise TypeError(f"references[{image_id!r}] must hold str, "
                                f"got {type(ref).__name__}")
            if not ref.strip():
                raise ValueError(f"references[{image_id!r}] contains an empty caption")
    return list(hypotheses), metrics


def score_captions(references: Mapping[Hashable, Sequence[str]],
                   hypotheses: Mapping[Hashable, str],
                   metrics: Sequence[str] = METRICS,
                   java: str | None = "auto",
                   timeout: float = 600.0) -> CaptionScores:
    """Corpus caption metrics as coco-caption computes them (the numbers of Xu et al. 2015).

    Xu et al. 2015, "Show, Attend and Tell: Neural Image Caption Generation with Visual
    Attention", ICML, Table 1 reports BLEU-1..4 and METEOR computed with the MS COCO caption
    evaluation code (Chen et al. 2015, "Microsoft COCO Captions: Data Collection and Evaluation
    Server"). This function runs that code (``pycocoevalcap==1.2``): PTBTokenizer on both sides,
    all references of an image at once, BLEU-1..4 with "closest" reference length at corpus
    level, METEOR 1.5, CIDEr (coco-caption's CIDEr-D) and ROUGE-L.

    **Scale.** Keys ``"BLEU-1"`` .. ``"BLEU-4"``, ``"METEOR"``, ``"CIDEr"``, ``"ROUGE-L"`` hold the
    values as the papers print them: raw value x100 (Xu et al. Table 1 prints BLEU and METEOR
    x100, e.g. BLEU-4 24.3 and METEOR 23.90 for soft attention on COCO). The raw coco-caption
    values are under ``"bleu_1"`` .. ``"bleu_4"``, ``"meteor"``, ``"cider"``, ``"rouge_l"``.

    **Without Java** (none found, or ``java=None``): the jars cannot run; captions are tokenised
    in Python (same tokens as the jar for ordinary captions), BLEU/CIDEr/ROUGE-L are computed as
    usual, METEOR is ``None`` and ``result.unavailable["meteor"]`` says why. When Java was looked
    for and not found, a warning is logged once per process.

    CIDEr's idf comes from the references scored, so call this once on the whole split.
    METEOR's Java process needs several seconds to start (it loads a paraphrase table) and is
    stopped before this function returns; to score repeatedly (e.g. every epoch), keep one
    :class:`CaptionScorer` open instead. Nothing is printed; messages go to ``logging``.

    Args:
        references: image id -> non-empty list of reference captions (raw text).
        hypotheses: image id -> generated caption (raw text; ``""`` is allowed and scores as an
            empty caption). Must have exactly the ids of ``references``.
        metrics: any of ``"bleu"`` (BLEU-1..4), ``"meteor"``, ``"cider"``, ``"rouge_l"``.
        java: ``"auto"`` to use :func:`find_java`, a path to a ``java`` executable, or ``None``
            to skip Java (pure-Python tokenisation, no METEOR).
        timeout: seconds allowed for the tokenizer and for each answer of the METEOR process.

    Returns:
        A :class:`CaptionScores` dict (see Scale), with ``.unavailable`` mapping raw metric keys
        that have no value to a reason.

    Raises:
        ValueError: ids that differ between the two dicts (a few are named), an empty reference
            list or reference caption, no captions, or an unknown metric.
        TypeError: values of the wrong type.
        RuntimeError: a Java tool failed although Java is present.

    Example:

    >>> refs = {1: ["A man rides a horse.", "A person riding a brown horse."],
    ...         2: ["Two dogs play in the snow.", "Dogs playing on snow."]}
    >>> hyps = {1: "a man riding a horse", 2: "two dogs playing in snow"}
    >>> scores = score_captions(refs, hyps)  # doctest: +SKIP
    >>> scores["BLEU-4"], scores["bleu_4"], scores["METEOR"]  # doctest: +SKIP
    """
    with CaptionScorer(java=java, timeout=timeout) as scorer:
        return scorer.score(references, hypotheses, metrics)


def bleu_statistics(gts: Mapping, res: Mapping, n: int = 4) -> np.ndarray:
    """Per image, BLEU's sufficient statistics as coco-caption's ``BleuScorer`` counts them.

    Args:
        gts, res: tokenised references and ``[hypothesis]`` per id (coco-caption's format).
        n: the longest n-gram.

    Returns:
        float64 ``[images, 2 + 2n]``: hypothesis length, the closest reference length (ties to
        the shorter), then n-gram counts of the hypothesis (``guess``) for 1..n, then their
        clipped matches (``correct``) for 1..n.
    """
    scorer = BleuScorer(n=n)
    for key in gts:
        scorer += (res[key][0], gts[key])
    rows = []
    for comps in scorer.ctest:
        reflen = min((abs(length - comps["testlen"]), length) for length in comps["reflen"])[1]
        rows.append([comps["testlen"], reflen, *comps["guess"], *comps["correct"]])
    return np.asarray(rows, np.float64)


def corpus_bleu(statistics: np.ndarray, n: int = 4) -> list[float]:
    """BLEU-1..n of a corpus from :func:`bleu_statistics` rows (summed), coco-caption's formula:
    the geometric mean of the clipped n-gram precisions times the brevity penalty."""
    small, tiny = 1e-9, 1e-15
    total = statistics.sum(axis=0)
    testlen, reflen, guess, correct = total[0], total[1], total[2:2 + n], total[2 + n:]
    bleus, product = [], 1.0
    for k in range(n):
        product *= (correct[k] + tiny) / (guess[k] + small)
        bleus.append(product ** (1.0 / (k + 1)))
    ratio = (testlen + tiny) / (reflen + small)
    if ratio < 1:
        bleus = [b * math.exp(1 - 1 / ratio) for b in bleus]
    return bleus


class CaptionScorer:
    """Scores caption sets repeatedly, keeping METEOR's Java process between calls.

    The same computation as :func:`score_captions` (see there for the metrics, the scale of the
    returned values and the behaviour without Java), for callers that score many times, such as
    a validation pass every epoch: METEOR 1.5 is started on the first call that asks for it and
    kept until :meth:`close` (or the end of a ``with`` block; as a last resort, garbage
    collection or interpreter exit). Calls are serialised by a lock.

    Args:
        java: ``"auto"`` to use :func:`find_java`, a path to a ``java`` executable, or ``None``
            to skip Java (pure-Python tokenisation, no METEOR).
        timeout: seconds allowed for the tokenizer and for each answer of the METEOR process.

    Example:

    >>> with CaptionScorer() as scorer:  # doctest: +SKIP
    ...     for epoch in range(epochs):
    ...         scores = scorer.score(references, generate(model))
    ...         print(epoch, scores["BLEU-4"], scores["METEOR"])
    """

    def __init__(self, java: str | None = "auto", timeout: float = 600.0):
        self._java = _resolve_java(java)
        self._no_java = _JAVA_OFF if java is None else _NO_JAVA
        self._timeout = timeout
        self._meteor: MeteorProcess | None = None
        self._finalizer: weakref.finalize | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> "CaptionScorer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def java(self) -> str | None:
        """The ``java`` executable used, or ``None`` (pure-Python tokenisation, no METEOR)."""
        return self._java

    def close(self) -> None:
        """Stops METEOR's Java process if it runs. The scorer stays usable (it restarts it)."""
        with self._lock:
            self._stop_meteor()

    def _stop_meteor(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # runs MeteorProcess.close once
            self._finalizer = self._meteor = None

    def _start_meteor(self) -> MeteorProcess:
        if self._meteor is None:
            self._meteor = MeteorProcess(self._java, self._timeout)
            self._finalizer = weakref.finalize(self, self._meteor.close)
        return self._meteor

    def score(self, references: Mapping[Hashable, Sequence[str]],
              hypotheses: Mapping[Hashable, str],
              metrics: Sequence[str] = METRICS) -> CaptionScores:
        """Scores one caption set; arguments, result and errors as :func:`score_captions`."""
        ids, metrics = _validate(references, hypotheses, metrics)
        java = self._java
        unavailable: dict[str, str] = {}
        if java is None:
            if self._no_java is _NO_JAVA:
                _warn_no_java()
            if "meteor" in metrics:
                unavailable["meteor"] = self._no_java
        with self._lock:
            meteor = None
            try:
                if java is not None and "meteor" in metrics:
                    # Started first: its start-up (loading the paraphrase table) overlaps
                    # tokenisation.
                    meteor = self._start_meteor()
                gts, res = self._tokenize(ids, references, hypotheses)
                raw: dict[str, float | None] = {}
                if "bleu" in metrics:
                    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
                    raw.update({f"bleu_{n + 1}": float(v) for n, v in enumerate(bleu)})
                if "meteor" in metrics:
                    raw["meteor"] = None if meteor is None else meteor.score(
                        [res[i][0] for i in gts], [gts[i] for i in gts])[0]
                if "cider" in metrics:
                    if any(tokens for refs in gts.values() for tokens in refs):
                        raw["cider"] = float(Cider().compute_score(gts, res)[0])
                    else:  # coco-caption's scorer fails on references without a single word
                        raw["cider"] = None
                        unavailable["cider"] = "no reference has a word after tokenisation"
                if "rouge_l" in metrics:
                    raw["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
            except BaseException:
                # The METEOR process may be mid-protocol: never reuse it after a failure.
                self._stop_meteor()
                raise

        scores = CaptionScores(unavailable=unavailable)
        for group in metrics:
            for key in _GROUP_KEYS[group]:
                scores[_PAPER_KEYS[key]] = None if raw[key] is None else 100.0 * raw[key]
        for group in metrics:
            for key in _GROUP_KEYS[group]:
                scores[key] = raw[key]
        return scores

    def intervals(self, references: Mapping[Hashable, Sequence[str]],
                  hypotheses: Mapping[Hashable, str], *, resamples: int = bootstrap.RESAMPLES,
                  seed: int = 0, level: float = bootstrap.LEVEL
                  ) -> dict[str, tuple[float, float] | None]:
        """Percentile-bootstrap intervals over the images (see the module docstring).

        Returns:
            ``{"BLEU-1" .. "BLEU-4", "METEOR", "CIDEr", "ROUGE-L": (low, high)}`` in the papers'
            scale (x100); ``None`` for METEOR without Java.
        """
        ids, _ = _validate(references, hypotheses, METRICS)
        samples = bootstrap.resample_indices(len(ids), resamples, seed)
        values = self._resampled(ids, references, hypotheses, samples)
        out: dict[str, tuple[float, float] | None] = {
            name: bootstrap.percentile_interval(v, level) for name, v in values.items()}
        out.setdefault("METEOR", None)
        return out

    def paired_intervals(self, references: Mapping[Hashable, Sequence[str]],
                         hypotheses: Mapping[Hashable, str], baseline: Mapping[Hashable, str],
                         *, resamples: int = bootstrap.RESAMPLES, seed: int = 0,
                         level: float = bootstrap.LEVEL) -> dict[str, dict[str, Any] | None]:
        """Two systems' captions of the same images, compared on the same resamples (a paired
        bootstrap). Each system's own interval carries the spread that comes from which images
        were drawn, so two such intervals can overlap while one system scores higher on nearly
        every resample; the interval of the difference says whether the test set tells them
        apart.

        Returns:
            per metric, ``{"ci95": (low, high), "higher": fraction}``: the percentile interval
            of ``hypotheses``' score minus ``baseline``'s (x100) over the resamples, and the
            fraction of resamples on which ``hypotheses`` scores higher; ``None`` for METEOR
            without Java.
        """
        ids, _ = _validate(references, hypotheses, METRICS)
        _validate(references, baseline, METRICS)
        samples = bootstrap.resample_indices(len(ids), resamples, seed)
        ours = self._resampled(ids, references, hypotheses, samples)
        theirs = self._resampled(ids, references, {i: baseline[i] for i in ids}, samples)
        out: dict[str, dict[str, Any] | None] = {}
        for name, values in ours.items():
            difference = np.asarray(values) - np.asarray(theirs[name])
            out[name] = {"ci95": bootstrap.percentile_interval(difference, level),
                         "higher": float(np.mean(difference > 0))}
        out.setdefault("METEOR", None)
        return out

    def _resampled(self, ids, references, hypotheses, samples) -> dict[str, list[float]]:
        """Each metric (x100) of each resample of the images (rows of ``samples``): corpus BLEU
        and METEOR from the resample's summed statistics, CIDEr and ROUGE-L as the mean of its
        images' scores."""
        with self._lock:
            meteor = self._start_meteor() if self._java is not None else None
            gts, res = self._tokenize(ids, references, hypotheses)
            order = list(gts)
            bleu = bleu_statistics(gts, res)
            per_image = {"CIDEr": np.asarray(Cider().compute_score(gts, res)[1], np.float64),
                         "ROUGE-L": np.asarray(Rouge().compute_score(gts, res)[1], np.float64)}
            values: dict[str, list[float]] = {f"BLEU-{k + 1}": [] for k in range(4)}
            for rows in samples:
                for k, value in enumerate(corpus_bleu(bleu[rows])):
                    values[f"BLEU-{k + 1}"].append(100.0 * value)
            for name, scores in per_image.items():
                values[name] = list(100.0 * scores[samples].mean(axis=1))
            if meteor is not None:
                stats = meteor.statistics([res[i][0] for i in order], [gts[i] for i in order])
                values["METEOR"] = [100.0 * meteor.evaluate([stats[i] for i in rows])[0]
                                    for rows in samples]
        return values

    def _tokenize(self, ids, references, hypotheses):
        """coco-caption's ``gts`` and ``res``: index -> tokenised references / [hypothesis]."""
        ref_lists = [list(references[i]) for i in ids]
        flat_refs = [ref for refs in ref_lists for ref in refs]
        hyp_list = [hypotheses[i] for i in ids]
        if self._java is None:
            tok_refs = [python_tokenize(ref) for ref in flat_refs]
            tok_hyps = [python_tokenize(hyp) for hyp in hyp_list]
        else:
            tok_refs, tok_hyps = jar_tokenize([flat_refs, hyp_list], self._java, self._timeout)
        gts, res, start = {}, {}, 0
        for index, refs in enumerate(ref_lists):
            gts[index] = tok_refs[start:start + len(refs)]
            res[index] = [tok_hyps[index]]
            start += len(refs)
        return gts, res
