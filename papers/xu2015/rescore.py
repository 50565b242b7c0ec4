r"""Rescores a run from its captions file alone (:mod:`papers.xu2015.caption_records`).

With the references in the file, anyone can rescore the captions (with another metric
implementation, or this one) without the model, the features or the data::

    python -m papers.xu2015.rescore --captions=runs/soft/captions_test.jsonl

prints BLEU-1..4, METEOR, CIDEr and ROUGE-L as coco-caption computes them, each with its 95 %
bootstrap interval over the images (:meth:`metrics.captions.CaptionScorer.intervals`), as JSON.
A file that cannot be read ends with one line, ``rescore: error: …``, and status 2.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from absl import app, flags

from training import cli


def rescore(path: str, *, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The paper's metrics of a captions file, with bootstrap intervals over its images."""
    from metrics.captions import CaptionScorer
    from papers.xu2015.caption_records import read_captions

    records = read_captions(path)
    references = {r["image"]: r["references"] for r in records}
    hypotheses = {r["image"]: r["caption"] for r in records}
    with CaptionScorer() as scorer:
        scores = scorer.score(references, hypotheses)
        intervals = scorer.intervals(references, hypotheses, resamples=resamples, seed=seed)
    return {"captions": path, "images": len(records),
            "metrics": {k: v for k, v in scores.items() if k[0].isupper()},
            "intervals_95": intervals, "bootstrap_resamples": resamples}


FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The program's flags, defined when it runs (importing the module for its functions
    defines none, so several such modules can be imported in one process)."""
    flags.DEFINE_string("captions", None, "A captions_<split>.jsonl file written by a run.",
                        flag_values=flag_values)
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
        result = rescore(FLAGS.captions, resamples=FLAGS.resamples, seed=FLAGS.seed)
    except (DataFormatError, FileNotFoundError, OSError) as e:
        print(f"rescore: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
