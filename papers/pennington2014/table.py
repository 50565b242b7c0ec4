"""The benchmark table of one vector set: every benchmark, as JSON-ready numbers and markdown.

:func:`evaluate_set` runs the analogies (each method), WordSim-353 and SimLex-999 on one vector
set with :mod:`papers.pennington2014.benchmarks`; :func:`markdown_rows` prints them as rows of
:data:`HEADER`, with the published numbers of :mod:`papers.pennington2014.reported` on a second
row where there are any.

The benchmarks are deterministic; their uncertainty is that of a finite test set. An accuracy
carries the half-width of its 95% normal-approximation interval, 1.96 √(p(1 − p) / n) (the
questions share words, so this understates it); a Spearman ρ its 95% interval from Fisher's z
with Fieller, Hartley & Pearson's (1957) variance 1.06 / (n − 3).

Example:

```python
result = evaluate_set("glove-6b-50d", restrict=30000, methods=["add"])
result["analogies"]["add"]["total"]["accuracy"], result["pairs"]["simlex999"]["spearman"]
print(HEADER, *markdown_rows(result), sep="\\n")
```
"""

from __future__ import annotations

import math
import time

from papers.pennington2014 import benchmarks
from papers.pennington2014.reported import PUBLISHED
from papers.pennington2014.vectors import Embeddings

HEADER = ("| vectors | vocabulary | method | semantic % | syntactic % | total % "
          "| questions answered | WordSim-353 ρ × 100 [95%] (pairs) "
          "| SimLex-999 ρ × 100 [95%] (pairs) |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def accuracy_half_width(correct: int, questions: int) -> float:
    """Half the width of the 95% normal-approximation interval of an accuracy, in percent."""
    if questions == 0:
        return float("nan")
    p = correct / questions
    return 100 * 1.96 * math.sqrt(p * (1 - p) / questions)


def spearman_interval(rho: float, pairs: int) -> tuple[float, float]:
    """The 95% interval of Spearman's ρ over ``pairs`` pairs (Fisher z, variance 1.06/(n − 3))."""
    if pairs <= 3 or abs(rho) >= 1:
        return float("nan"), float("nan")
    z, half = math.atanh(rho), 1.96 * math.sqrt(1.06 / (pairs - 3))
    return math.tanh(z - half), math.tanh(z + half)


def evaluate_set(source: str, restrict: int | None, methods: list[str]) -> dict:
    """Every benchmark on one vector set: a JSON-ready dict (accuracies in percent, ρ × 100)."""
    start = time.perf_counter()
    emb = Embeddings.load(source)
    result = {"vectors": source, "words": len(emb), "dim": emb.dim,
              "vocabulary": len(emb) if restrict is None else min(restrict, len(emb)),
              "load_seconds": time.perf_counter() - start, "analogies": {}, "pairs": {}}
    for method in methods:
        start = time.perf_counter()
        found = benchmarks.evaluate_analogies(
            emb, benchmarks.benchmark_path(benchmarks.ANALOGIES), restrict=restrict,
            method=method)
        result["analogies"][method] = {
            "seconds": time.perf_counter() - start, "skipped": found.skipped,
            **{part: {"accuracy": score.accuracy, "correct": score.correct,
                      "questions": score.questions,
                      "half_width_95": accuracy_half_width(score.correct, score.questions)}
               for part, score in (("semantic", found.semantic),
                                   ("syntactic", found.syntactic), ("total", found.total))},
            "sections": {name: [s.correct, s.questions] for name, s in found.sections.items()}}
    for name in benchmarks.PAIR_FILES:
        pairs = benchmarks.evaluate_word_pairs(emb, benchmarks.benchmark_path(name),
                                               restrict=restrict)
        low, high = spearman_interval(pairs.spearman, pairs.pairs)
        result["pairs"][name.split(".")[0]] = {
            "spearman": 100 * pairs.spearman, "interval_95": [100 * low, 100 * high],
            "pairs": pairs.pairs, "skipped": pairs.skipped}
    return result


def markdown_rows(result: dict) -> list[str]:
    """The table rows of one set, ours and (a second line) the published numbers."""
    rows = []
    for method, found in result["analogies"].items():
        answered = found["total"]["questions"]
        pairs = " | ".join(f"{p['spearman']:.1f} [{p['interval_95'][0]:.1f}, "
                           f"{p['interval_95'][1]:.1f}] ({p['pairs']})"
                           for p in result["pairs"].values())
        rows.append(
            f"| {result['vectors']} | {result['vocabulary']:,} | "
            f"{'3CosAdd' if method == 'add' else '3CosMul'} | "
            + " | ".join(f"{found[p]['accuracy']:.2f} ± {found[p]['half_width_95']:.2f}"
                         for p in ("semantic", "syntactic", "total"))
            + f" | {answered:,} of {answered + found['skipped']:,} | {pairs} |")
    published = PUBLISHED.get(result["vectors"], {})
    if published:
        cells = [f"{published[k].value:.1f}" if k in published else "—"
                 for k in ("analogy_semantic", "analogy_syntactic", "analogy_total",
                           "wordsim353", "simlex999")]
        rows.append(f"| published ({'; '.join(sorted({r.source for r in published.values()}))})"
                    f" | | | {' | '.join(cells[:3])} | | {' | '.join(cells[3:])} |")
    return rows


