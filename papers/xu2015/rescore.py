r"""Rescores a run from its captions file alone (:mod:`papers.xu2015.caption_records`).

With the references in the file, anyone can rescore the captions (with another metric
implementation, or this one) without the model, the features or the data::

    python -m papers.xu2015.rescore --captions=runs/soft/captions_test.jsonl

prints BLEU-1..4, METEOR, CIDEr and ROUGE-L as coco-caption computes them, each with its 95 %
bootstrap interval over the images (:meth:`metrics.captions.CaptionScorer.intervals`), as JSON.

With ``--against=OTHER``, another run's captions of the same images, it compares the two on the
same resamples of the images (a paired bootstrap,
:meth:`metrics.captions.CaptionScorer.paired_intervals`): per metric both scores, their
difference with its 95 % interval, and the fraction of resamples on which ``--captions`` scores
higher (two runs' own intervals can overlap while their difference's excludes 0)::

    python -m papers.xu2015.rescore --captions=runs/hard/captions_test.jsonl \
        --against=runs/soft/captions_test.jsonl

A file that cannot be read ends with one line, ``rescore: error: …``, and status 2.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from absl import app, flags

from training import cli


def _read(path: str) -> tuple[dict[str, list[str]], dict[str, str]]:
    """A captions file's references and generated caption, each keyed by image."""
    from papers.xu2015.caption_records import read_captions

    records = read_captions(path)
    return ({r["image"]: r["references"] for r in records},
            {r["image"]: r["caption"] for r in records})


def rescore(path: str, *, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The paper's metrics of a captions file, with bootstrap intervals over its images."""
    from metrics.captions import CaptionScorer

    references, hypotheses = _read(path)
    with CaptionScorer() as scorer:
        scores = scorer.score(references, hypotheses)
        intervals = scorer.intervals(references, hypotheses, resamples=resamples, seed=seed)
    return {"captions": path, "images": len(hypotheses),
            "metrics": {k: v for k, v in scores.items() if k[0].isupper()},
            "intervals_95": intervals, "bootstrap_resamples": resamples}


def compare(path: str, against: str, *, resamples: int = 1000, seed: int = 0
            ) -> dict[str, Any]:
    """Two captions files of the same images, compared on the same bootstrap resamples."""
    from datasets.errors import DataFormatError
    from metrics.captions import CaptionScorer

    (references, hypotheses), (theirs, baseline) = _read(path), _read(against)
    if theirs != references:
        differ = sorted(set(references) ^ set(theirs)) or sorted(
            i for i in references if references[i] != theirs[i])
        raise DataFormatError(f"{against} is not a captions file of the same images and "
                              f"references as {path} (first difference: image {differ[0]})",
                              path=against)
    with CaptionScorer() as scorer:
        ours, base = scorer.score(references, hypotheses), scorer.score(references, baseline)
        paired = scorer.paired_intervals(references, hypotheses, baseline,
                                         resamples=resamples, seed=seed)
    metrics = {}
    for name, result in paired.items():
        if result is not None:
            metrics[name] = {"captions": ours[name], "against": base[name],
                             "difference": ours[name] - base[name],
                             "difference_ci95": result["ci95"],
                             "captions_higher": result["higher"]}
    return {"captions": path, "against": against, "images": len(hypotheses), "metrics": metrics,
            "bootstrap_resamples": resamples}


FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The program's flags, defined when it runs (importing the module for its functions
    defines none, so several such modules can be imported in one process)."""
    flags.DEFINE_string("captions", None, "A captions_<split>.jsonl file written by a run.",
                        flag_values=flag_values)
    flags.DEFINE_string("against", None, "Another run's captions file of the same images: "
                        "compare the two on the same resamples.", flag_values=flag_values)
    flags.DEFINE_integer("resamples", 1000, "Bootstrap resamples of the images.",
                         flag_values=flag_values)
    flags.DEFINE_integer("seed", 0, "Seed of the bootstrap.", flag_values=flag_values)


def main(argv):
    del argv
    if not FLAGS.captions:
        print("rescore: error: --captions=FILE is required", file=sys.stderr)
        return 2
    cli.import_tensorflow()  # the data package imports it: its start-up lines stay hidden
    from datasets.errors import DataFormatError

    try:
        if FLAGS.against:
            result = compare(FLAGS.captions, FLAGS.against, resamples=FLAGS.resamples,
                             seed=FLAGS.seed)
        else:
            result = rescore(FLAGS.captions, resamples=FLAGS.resamples, seed=FLAGS.seed)
    except (DataFormatError, FileNotFoundError, OSError) as e:
        print(f"rescore: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
