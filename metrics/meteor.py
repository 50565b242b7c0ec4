"""METEOR 1.5 (Denkowski and Lavie 2014) as coco-caption runs it: its jar over stdin/stdout.

The MS COCO caption evaluation code (Chen et al. 2015, ``pycocoevalcap==1.2``), with which Xu et
al. 2015 report METEOR, runs the jar it ships as ``java -jar -Xmx2G meteor-1.5.jar - - -stdio -l
en -norm`` and speaks a line protocol to it. Its ``Meteor`` class starts the Java process in
``__init__`` and stops it only in ``__del__``, under a lock that ``compute_score`` does not
release when it raises (``__del__`` then blocks forever), and it reads answers with a blocking
``readline`` (an input line that breaks the protocol hangs the caller). :class:`MeteorProcess`
speaks the same protocol to the same jar with the same command, waits for each answer with a
timeout, and is stopped explicitly (:meth:`MeteorProcess.close`). Line breaks and the field
separator ``|||`` are removed from every caption before it reaches the jar.

The process needs several seconds to start (it loads a paraphrase table), so
:class:`metrics.captions.CaptionScorer` keeps one between calls. Captions are
scored as given: tokenise them first (:mod:`metrics.ptb_tokenizer`), as coco-caption does.

Example:

```python
meteor = MeteorProcess(find_java())
try:
    corpus, per_image = meteor.score(
        ["a man riding a horse"], [["a man rides a horse", "a person riding a brown horse"]])
finally:
    meteor.close()
```
"""

from __future__ import annotations

import os
import queue
import subprocess
import tempfile
import threading
from collections.abc import Sequence

from pycocoevalcap.meteor import meteor as _meteor_module

from metrics.java_runtime import LINE_BREAKS, stderr_tail

# The jar ships next to the module that wraps it (pycocoevalcap is a namespace package).
METEOR_JAR = os.path.join(os.path.dirname(os.path.abspath(_meteor_module.__file__)),
                          _meteor_module.METEOR_JAR)
"""The METEOR 1.5 jar installed with ``pycocoevalcap``."""


def _meteor_text(text: str) -> str:
    """Removes what would break METEOR's line protocol: line breaks and the separator."""
    return " ".join(LINE_BREAKS.sub(" ", text).replace("|||", "").split())


class MeteorProcess:
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
        command = [java, "-jar", "-Xmx2G", METEOR_JAR, "-", "-", "-stdio", "-l", "en", "-norm"]
        try:
            self._process = subprocess.Popen(command, cwd=os.path.dirname(METEOR_JAR),
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
            return stderr_tail(self._stderr.read())
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

    def statistics(self, hypotheses: Sequence[str],
                   references: Sequence[Sequence[str]]) -> list[str]:
        """METEOR's sufficient statistics of each (hypothesis, references) pair, as the jar's
        ``SCORE`` command returns them (one line of numbers each)."""
        statistics = []
        for hypothesis, refs in zip(hypotheses, references, strict=True):
            hypothesis = _meteor_text(hypothesis)
            self._send(" ||| ".join(("SCORE", " ||| ".join(_meteor_text(r) for r in refs),
                                     hypothesis)))
            statistics.append(self._receive())
        return statistics

    def evaluate(self, statistics: Sequence[str]) -> tuple[float, list[float]]:
        """The jar's ``EVAL`` of a list of statistics: the corpus score (from the summed
        statistics, as METEOR 1.5 aggregates) and the score of each line. A list with repeats
        (a bootstrap resample) is scored as that corpus."""
        self._send("EVAL" + "".join(f" ||| {stats}" for stats in statistics))
        per_image = [self._number() for _ in statistics]
        return self._number(), per_image

    def score(self, hypotheses: Sequence[str],
              references: Sequence[Sequence[str]]) -> tuple[float, list[float]]:
        """Corpus METEOR and per-image scores for tokenised captions (as ``compute_score``)."""
        return self.evaluate(self.statistics(hypotheses, references))

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
