"""Caption metrics computed the way coco-caption computes them.

Xu et al. 2015 (Show, Attend and Tell, ICML) report BLEU-1..4 and METEOR from the MS COCO
caption evaluation code ("coco-caption", Chen et al. 2015, https://github.com/tylin/coco-caption).
This module runs that code, as packaged on PyPI as ``pycocoevalcap==1.2``:

- both references and hypotheses are tokenised with the Stanford PTBTokenizer jar it ships
  (CoreNLP 3.4.1, ``-preserveLines -lowerCase``), after which the tokens in its ``PUNCTUATIONS``
  list are removed;
- BLEU-1..4 (Papineni et al. 2002; corpus level, clipped counts over all references, "closest"
  effective reference length), CIDEr (Vedantam et al. 2015; coco-caption's "CIDEr" is the CIDEr-D
  variant: clipped n-gram counts, a Gaussian length penalty with sigma 6, times 10) and ROUGE-L
  (Lin 2004, beta 1.2) come from its Python scorers;
- METEOR 1.5 (Denkowski and Lavie 2014) comes from the jar it ships, with its command line
  (``-l en -norm``) and its line protocol.

Two parts of the package are replaced by equivalents here, without editing the installed package:

- ``PTBTokenizer.tokenize`` writes its input into a temporary file created *inside the installed
  package's folder*. That fails on a read-only site-packages and lets concurrent processes share
  the folder. :func:`tokenize_captions` runs the same jar with the same options on a file in a
  private temporary directory, then applies the same punctuation filter.
- ``Meteor`` starts its Java process in ``__init__`` and stops it only in ``__del__``, under a lock
  that ``compute_score`` does not release when it raises (``__del__`` then blocks forever), and it
  reads answers with a blocking ``readline`` (an input line that breaks the protocol hangs the
  caller). This module speaks the same protocol to the same jar with the same command, waits
  for each answer with a timeout, and stops the process explicitly: before
  :func:`score_captions` returns, or when a :class:`CaptionScorer` (which keeps it between calls)
  is closed. Line breaks and the field separator ``|||`` are removed from every caption before
  it reaches a jar.

Without a Java runtime neither jar can run: BLEU, CIDEr and ROUGE-L are then computed on a
pure-Python tokenisation that mimics PTBTokenizer for caption text (identical tokens for
ordinary captions; rare constructs such as emoticons, URLs or unusual abbreviations may differ),
and METEOR is reported as unavailable.

Note that CIDEr's document frequencies come from the references being scored, so CIDEr depends on
the whole evaluated set: score a split in one call, never batch by batch.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Hashable, Mapping, Sequence

try:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor import meteor as _meteor_module
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer import ptbtokenizer as _ptb_module
except ImportError as error:  # pragma: no cover - exercised only without the dependency
    raise ImportError(
        "caption metrics need the coco-caption package: pip install pycocoevalcap==1.2") from error

logger = logging.getLogger(__name__)

METRICS = ("bleu", "meteor", "cider", "rouge_l")
"""Metric groups accepted by :func:`score_captions`."""

# The jars ship next to the modules that wrap them (pycocoevalcap is a namespace package).
_TOKENIZER_JAR = os.path.join(os.path.dirname(os.path.abspath(_ptb_module.__file__)),
                              _ptb_module.STANFORD_CORENLP_3_4_1_JAR)
_METEOR_JAR = os.path.join(os.path.dirname(os.path.abspath(_meteor_module.__file__)),
                           _meteor_module.METEOR_JAR)
_PUNCTUATIONS = frozenset(_ptb_module.PUNCTUATIONS)

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

# Characters that PTBTokenizer treats as line breaks: one inside a caption would shift every
# later line of its output onto the wrong caption. coco-caption replaces only "\n".
_LINE_BREAKS = re.compile("\r\n|[\r\n\x0b\x0c\x85\u2028\u2029]")


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


# ---------------------------------------------------------------------------------------------
# Java
# ---------------------------------------------------------------------------------------------

def find_java() -> str | None:
    """Path of a working ``java`` executable, or ``None``.

    ``$JAVA_HOME/bin/java`` is preferred when ``JAVA_HOME`` is set, then ``java`` on ``PATH``.
    The candidate must answer ``java -version``; the answer is cached per (``JAVA_HOME``,
    ``PATH``).

    Returns:
        The executable's path, or ``None`` when no working Java runtime is found.

    Example:

    >>> find_java()  # doctest: +SKIP
    '/usr/bin/java'
    """
    return _probe_java(os.environ.get("JAVA_HOME", ""), os.environ.get("PATH", ""))


@functools.lru_cache(maxsize=8)
def _probe_java(java_home: str, path: str) -> str | None:
    candidates = []
    if java_home:
        candidates.append(os.path.join(java_home, "bin", "java"))
    found = shutil.which("java", path=path or None)
    if found:
        candidates.append(found)
    for candidate in candidates:
        if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            continue
        try:
            subprocess.run([candidate, "-version"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=60, check=True)
        except (OSError, subprocess.SubprocessError) as error:
            logger.warning("%s does not run (%s); ignoring it", candidate, error)
            continue
        return candidate
    return None


def _resolve_java(java: str | None) -> str | None:
    return find_java() if java == "auto" else java


def _warn_no_java() -> None:
    global _warned_no_java
    if not _warned_no_java:
        _warned_no_java = True
        logger.warning("No Java runtime found (JAVA_HOME, PATH): captions are tokenised in "
                       "Python and METEOR is not computed; install Java 8+ for the coco-caption "
                       "numbers")


def _tail(text: bytes | str, limit: int = 400) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = " ".join(text.split())
    return text[-limit:] if text else "(nothing on stderr)"


# ---------------------------------------------------------------------------------------------
# Tokenisation
# ---------------------------------------------------------------------------------------------

def tokenize_captions(captions: Sequence[str], java: str | None = "auto",
                      timeout: float = 600.0) -> list[str]:
    """Tokenises captions as coco-caption's ``PTBTokenizer`` does.

    With Java: the Stanford PTBTokenizer jar shipped in ``pycocoevalcap`` (CoreNLP 3.4.1) with
    ``-preserveLines -lowerCase``, run on a file in a private temporary directory (the package's
    own wrapper writes that file into the installed package), then coco-caption's punctuation
    filter. Note that the jar lower-cases ``-LRB-``/``-RRB-`` before the filter (which lists them
    in upper case), so brackets survive as ``-lrb-``/``-rrb-`` tokens, exactly as in coco-caption.
    Without Java: a pure-Python tokenisation that gives the same tokens for ordinary captions.

    Args:
        captions: caption strings. Line breaks inside a caption are treated as spaces.
        java: ``"auto"`` to use :func:`find_java`, a path to a ``java`` executable, or ``None``
            for the pure-Python tokenisation.
        timeout: seconds allowed for the tokenizer process.

    Returns:
        One string per caption: lower-cased tokens joined by single spaces (``""`` when nothing
        is left).

    Example:

    >>> tokenize_captions(["A dog's toy, on the grass."])  # doctest: +SKIP
    ["a dog 's toy on the grass"]
    """
    java = _resolve_java(java)
    if java is None:
        return [_python_tokenize(caption) for caption in captions]
    return _jar_tokenize([list(captions)], java, timeout)[0]


def _jar_tokenize(groups: Sequence[Sequence[str]], java: str, timeout: float) -> list[list[str]]:
    """Runs the PTBTokenizer jar once per group, concurrently; returns filtered token strings."""
    results: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="ptb-tokenize-") as workdir:
        jobs = []
        try:
            for index, group in enumerate(groups):
                cleaned = [_LINE_BREAKS.sub(" ", caption) for caption in group]
                # Blank captions tokenise to ""; leaving them out of the input changes nothing.
                todo = [i for i, caption in enumerate(cleaned) if caption.strip()]
                if not todo:
                    jobs.append((cleaned, todo, None, None))
                    continue
                path = os.path.join(workdir, f"captions-{index}.txt")
                with open(path, "wb") as handle:
                    # As coco-caption: one caption a line, UTF-8, no trailing newline.
                    handle.write("\n".join(cleaned[i] for i in todo).encode("utf-8"))
                command = [java, "-cp", _TOKENIZER_JAR, "edu.stanford.nlp.process.PTBTokenizer",
                           "-preserveLines", "-lowerCase", os.path.basename(path)]
                stderr = tempfile.TemporaryFile(dir=workdir)
                try:
                    process = subprocess.Popen(command, cwd=workdir, stdin=subprocess.DEVNULL,
                                               stdout=subprocess.PIPE, stderr=stderr)
                except BaseException:
                    stderr.close()
                    raise
                jobs.append((cleaned, todo, process, stderr))
            for cleaned, todo, process, stderr in jobs:
                results.append([""] * len(cleaned) if process is None else
                               _collect_tokens(process, stderr, todo, len(cleaned), timeout))
        finally:
            for _, _, process, stderr in jobs:
                if process is not None:
                    if process.poll() is None:
                        process.kill()
                    process.wait()
                    process.stdout.close()
                    stderr.close()
    return results


def _collect_tokens(process: subprocess.Popen, stderr, todo: Sequence[int], size: int,
                    timeout: float) -> list[str]:
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"PTBTokenizer did not finish within {timeout:g} s") from None
    stderr.seek(0)
    message = stderr.read()
    if process.returncode != 0:
        raise RuntimeError(f"PTBTokenizer failed (exit {process.returncode}): {_tail(message)}")
    if message.strip():
        logger.debug("PTBTokenizer: %s", _tail(message, 2000))
    lines = out.decode("utf-8").split("\n")
    if len(lines) == len(todo) + 1 and not lines[-1].strip():
        lines.pop()
    if len(lines) != len(todo):
        raise RuntimeError(f"PTBTokenizer returned {len(lines)} lines for {len(todo)} captions")
    tokens = [""] * size
    for i, line in zip(todo, lines):
        tokens[i] = _filter_punctuation(line.rstrip().split(" "))  # as coco-caption
    return tokens


def _filter_punctuation(tokens: Sequence[str]) -> str:
    return " ".join(token for token in tokens if token not in _PUNCTUATIONS)


# The pure-Python stand-in: the PTBTokenizer behaviour that matters for captions. Tokens are
# matched on the original text and lower-cased afterwards, as the jar does ("AT&T" is one token,
# "at&t" three). Checked against the jar on all 40,460 Flickr8k captions (identical tokens).
_NORMALISE = (
    (re.compile("&amp;", re.IGNORECASE), "&"),
    (re.compile("[\u201c\u201d\u201e\u00ab\u00bb]"), '"'),
    (re.compile("[\u2018\u2019\u201a\u2032]"), "'"),
    (re.compile("[\u2013\u2014\u2015]"), " -- "),
    (re.compile("\u2026"), " ... "),
)
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
_SPLIT_WORDS = {"cannot": ("can", "not"), "gonna": ("gon", "na"), "gotta": ("got", "ta"),
                "wanna": ("wan", "na"), "lemme": ("lem", "me"), "gimme": ("gim", "me")}
_ALNUM = r"[^\W_]"
_TOKEN = re.compile(
    rf"""
    (?P<clitic>'(?:s|m|d|re|ve|ll|n')(?!{_ALNUM})|'t(?=(?:is|was)(?!{_ALNUM})))  # man 's
    | (?P<initials>(?:[^\W\d_]\.)+)(?!{_ALNUM})          # u.s.  e.g.  a.m.  a.
    | (?P<abbrev>(?:mr|mrs|ms|dr|st|jr|sr|vs|etc|mt|ft)\.)(?!{_ALNUM})
    | (?P<word>(?:-(?=\d)|'(?=\d0s))?{_ALNUM}+           # -5  '90s  x-ray  1,000  o'clock
         (?:(?:[-/@.]|(?-i:(?<=[A-Z])&(?=[A-Z]))|(?<=\d)[,:](?=\d)|'(?=[^\W\d_]))
            {_ALNUM}+)*)
    | (?P<dots>\.+)
    | (?P<dashes>--+)
    | (?P<marks>[!?]+)
    | (?P<other>.)
    """,
    re.VERBOSE | re.IGNORECASE,
)
_CONTRACTION = re.compile(rf"^(.*{_ALNUM})(n't|'s|'m|'d|'re|'ve|'ll)$")


def _python_tokenize(caption: str) -> str:
    text = caption
    for pattern, replacement in _NORMALISE:
        text = pattern.sub(replacement, text)
    tokens: list[str] = []
    for chunk in text.split():
        for match in _TOKEN.finditer(chunk):
            kind, token = match.lastgroup, match.group().lower()
            if kind == "word":
                if token in _SPLIT_WORDS:
                    tokens.extend(_SPLIT_WORDS[token])
                    continue
                contraction = _CONTRACTION.match(token)
                if contraction:
                    tokens.extend(contraction.groups())
                    continue
            elif kind == "dots":
                token = "..." if len(token) >= 3 else "."  # every dot token is then dropped
            elif kind == "dashes":
                token = "--"
            elif kind == "other":
                token = _BRACKETS.get(token, {'"': "''", "`": "`"}.get(token, token))
            tokens.append(token)
    return _filter_punctuation(tokens)


# ---------------------------------------------------------------------------------------------
# METEOR
# ---------------------------------------------------------------------------------------------

def _meteor_text(text: str) -> str:
    """Removes what would break METEOR's line protocol: line breaks and the separator."""
    return " ".join(_LINE_BREAKS.sub(" ", text).replace("|||", "").split())


class _MeteorProcess:
    """METEOR 1.5 over stdin/stdout, as ``pycocoevalcap.meteor.Meteor`` runs it.

    Same command (``java -jar -Xmx2G meteor-1.5.jar - - -stdio -l en -norm``) and protocol: one
    ``SCORE ||| ref_1 ||| ... ||| ref_n ||| hypothesis`` line per image, each answered by a line of
    sufficient statistics, then one ``EVAL ||| stats_1 ||| ... ||| stats_N`` line, answered by N
    per-image scores and the corpus score. Unlike the package's class it is closed explicitly
    (:meth:`close`) and every answer is awaited with a timeout.
    """

    def __init__(self, java: str, timeout: float = 600.0):
        self._timeout = timeout
        self._stderr = tempfile.TemporaryFile()
        command = [java, "-jar", "-Xmx2G", _METEOR_JAR, "-", "-", "-stdio", "-l", "en", "-norm"]
        try:
            self._process = subprocess.Popen(command, cwd=os.path.dirname(_METEOR_JAR),
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=self._stderr)
        except BaseException:
            self._stderr.close()
            raise
        self._answers: queue.Queue[bytes | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="meteor-stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for line in self._process.stdout:
                self._answers.put(line)
        except (OSError, ValueError):
            pass
        finally:
            self._answers.put(None)

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            return _tail(self._stderr.read())
        except (OSError, ValueError):
            return "(stderr unavailable)"

    def _send(self, line: str) -> None:
        try:
            self._process.stdin.write(line.encode("utf-8") + b"\n")
            self._process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise RuntimeError(f"METEOR process stopped: {self._stderr_tail()}") from None

    def _receive(self) -> str:
        try:
            answer = self._answers.get(timeout=self._timeout)
        except queue.Empty:
            raise RuntimeError(f"METEOR gave no answer within {self._timeout:g} s") from None
        if answer is None:
            self._answers.put(None)  # keep reporting end of output
            raise RuntimeError(f"METEOR process stopped: {self._stderr_tail()}")
        return answer.decode("utf-8").strip()

    def _number(self) -> float:
        answer = self._receive()
        try:
            return float(answer)
        except ValueError:
            raise RuntimeError(f"METEOR answered {answer[:80]!r} where a score was "
                               "expected") from None

    def score(self, hypotheses: Sequence[str],
              references: Sequence[Sequence[str]]) -> tuple[float, list[float]]:
        """Corpus METEOR and per-image scores for tokenised captions (as ``compute_score``)."""
        statistics = []
        for hypothesis, refs in zip(hypotheses, references, strict=True):
            hypothesis = _meteor_text(hypothesis)
            self._send(" ||| ".join(("SCORE", " ||| ".join(_meteor_text(r) for r in refs),
                                     hypothesis)))
            statistics.append(self._receive())
        self._send("EVAL" + "".join(f" ||| {stats}" for stats in statistics))
        per_image = [self._number() for _ in statistics]
        return self._number(), per_image

    def close(self) -> None:
        """Stops the Java process (end of input, then kill after 10 s) and releases its pipes."""
        process = self._process
        if process.poll() is None:
            try:
                process.stdin.close()
            except OSError:
                pass
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        else:
            try:
                process.stdin.close()
            except OSError:
                pass
        self._reader.join(timeout=10)
        process.stdout.close()
        self._stderr.close()


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------

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
        self._meteor: _MeteorProcess | None = None
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
            self._finalizer()  # runs _MeteorProcess.close once
            self._finalizer = self._meteor = None

    def _start_meteor(self) -> _MeteorProcess:
        if self._meteor is None:
            self._meteor = _MeteorProcess(self._java, self._timeout)
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

    def _tokenize(self, ids, references, hypotheses):
        """coco-caption's ``gts`` and ``res``: index -> tokenised references / [hypothesis]."""
        ref_lists = [list(references[i]) for i in ids]
        flat_refs = [ref for refs in ref_lists for ref in refs]
        hyp_list = [hypotheses[i] for i in ids]
        if self._java is None:
            tok_refs = [_python_tokenize(ref) for ref in flat_refs]
            tok_hyps = [_python_tokenize(hyp) for hyp in hyp_list]
        else:
            tok_refs, tok_hyps = _jar_tokenize([flat_refs, hyp_list], self._java, self._timeout)
        gts, res, start = {}, {}, 0
        for index, refs in enumerate(ref_lists):
            gts[index] = tok_refs[start:start + len(refs)]
            res[index] = [tok_hyps[index]]
            start += len(refs)
        return gts, res
