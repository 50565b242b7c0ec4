"""PTB tokenisation of captions as coco-caption does it: the Stanford jar, or pure Python.

The MS COCO caption evaluation code (Chen et al. 2015, ``pycocoevalcap==1.2``), with which Xu et
al. 2015 report BLEU and METEOR, tokenises references and hypotheses with the Stanford
PTBTokenizer jar it ships (CoreNLP 3.4.1, ``-preserveLines -lowerCase``) and then removes the
tokens in its ``PUNCTUATIONS`` list. Its wrapper, ``PTBTokenizer.tokenize``, writes its input
into a temporary file created *inside the installed package's folder*: that fails on a
read-only site-packages and lets concurrent processes share the folder. :func:`tokenize_captions`
(and :func:`jar_tokenize`, which runs several caption lists at once) runs the same jar with the
same options on a file in a private temporary directory, then applies the same punctuation
filter, without editing the installed package.

Without a Java runtime (:func:`~metrics.java_runtime.find_java`), :func:`python_tokenize`
mimics PTBTokenizer for caption text: identical tokens for ordinary captions (checked on all
40,460 Flickr8k captions); rare constructs such as emoticons, URLs or unusual abbreviations may
differ.

Example:

```python
tokenize_captions(["A dog's toy, on the grass."])             # ["a dog 's toy on the grass"]
tokenize_captions(["A dog's toy, on the grass."], java=None)  # the same, in pure Python
```
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence

from pycocoevalcap.tokenizer import ptbtokenizer as _ptb_module

from metrics.java_runtime import LINE_BREAKS, find_java, stderr_tail

logger = logging.getLogger(__name__)

# The jar ships next to the module that wraps it (pycocoevalcap is a namespace package).
TOKENIZER_JAR = os.path.join(os.path.dirname(os.path.abspath(_ptb_module.__file__)),
                             _ptb_module.STANFORD_CORENLP_3_4_1_JAR)
"""The Stanford PTBTokenizer jar (CoreNLP 3.4.1) installed with ``pycocoevalcap``."""
PUNCTUATIONS = frozenset(_ptb_module.PUNCTUATIONS)
"""coco-caption's punctuation filter: tokens removed after tokenisation."""


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
    java = find_java() if java == "auto" else java
    if java is None:
        return [python_tokenize(caption) for caption in captions]
    return jar_tokenize([list(captions)], java, timeout)[0]


def jar_tokenize(groups: Sequence[Sequence[str]], java: str, timeout: float) -> list[list[str]]:
    """Runs the PTBTokenizer jar once per group of captions, the groups concurrently.

    Args:
        groups: lists of caption strings (e.g. all references, all hypotheses).
        java: the ``java`` executable.
        timeout: seconds allowed for each tokenizer process.

    Returns:
        For each group, one string per caption as :func:`tokenize_captions` returns it.

    Raises:
        RuntimeError: a tokenizer process failed, timed out or returned the wrong line count.
    """
    results: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="ptb-tokenize-") as workdir:
        jobs = []
        try:
            for index, group in enumerate(groups):
                cleaned = [LINE_BREAKS.sub(" ", caption) for caption in group]
                # Blank captions tokenise to ""; leaving them out of the input changes nothing.
                todo = [i for i, caption in enumerate(cleaned) if caption.strip()]
                if not todo:
                    jobs.append((cleaned, todo, None, None))
                    continue
                path = os.path.join(workdir, f"captions-{index}.txt")
                with open(path, "wb") as handle:
                    # As coco-caption: one caption a line, UTF-8, no trailing newline.
                    handle.write("\n".join(cleaned[i] for i in todo).encode("utf-8"))
                command = [java, "-cp", TOKENIZER_JAR, "edu.stanford.nlp.process.PTBTokenizer",
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
        raise RuntimeError(f"PTBTokenizer failed (exit {process.returncode}): "
                           f"{stderr_tail(message)}")
    if message.strip():
        logger.debug("PTBTokenizer: %s", stderr_tail(message, 2000))
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
    return " ".join(token for token in tokens if token not in PUNCTUATIONS)


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


def python_tokenize(caption: str) -> str:
    """One caption as :func:`tokenize_captions` gives it without Java (tokens joined by spaces)."""
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
