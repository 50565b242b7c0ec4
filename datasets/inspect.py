"""Prints what a dataset's raw files contain, as JSON, split by split.

For each split: rows, rows dropped with their reason, the label distribution, the files read,
dataset-specific facts (e.g. SNLI's ``sample`` flag, Flickr8k's missing images) and token-length
percentiles of every text field under :class:`datasets.text.WordTokenizer` (lowercased,
punctuation split).

Usage:

```
python -m datasets.inspect --dataset=sst2 --data_dir=/data
python -m datasets.inspect --dataset=imdb --data_dir=/data --options=dev_size=5000
python -m datasets.inspect --dataset=flickr8k --splits=test --options=require_images=false
```

A split whose files are missing or malformed is reported with an ``error`` entry and the command
exits with status 1.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import tensorflow as tf
from absl import app, flags

import datasets
from datasets.core import LoadedSplit
from datasets.errors import DataFormatError
from datasets.text import WordTokenizer

PERCENTILES = (50, 90, 95, 99)

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command-line flags (only when run as a program, so importing this module
    next to another program's flags, e.g. ``--data_dir``, does not clash)."""
    flags.DEFINE_string("dataset", None, f"one of: {', '.join(datasets.names())}")
    flags.DEFINE_string("data_dir", None,
                        "data directory (default: $KERAS_PAPERS_DATA_DIR, or TFDS)")
    flags.DEFINE_list("splits", None, "splits to inspect (default: all of the dataset's)")
    flags.DEFINE_list("options", [],
                      "dataset options as key=value, e.g. phrases=true,dev_size=5000")


def parse_options(name: str, items: list[str]) -> dict[str, Any]:
    """``["phrases=true"]`` → ``{"phrases": True}``, typed like the option's default."""
    defaults = datasets.options(name)
    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in defaults:
            raise ValueError(f"bad option {item!r} for {name}; valid: {', '.join(defaults)}")
        default = defaults[key]
        if isinstance(default, bool):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"option {key} expects true or false, got {value!r}")
            parsed[key] = value.lower() in ("true", "1")
        elif isinstance(default, int):
            parsed[key] = int(value)
        else:
            parsed[key] = value
    return parsed


def token_lengths(texts: list[str], tokenizer: WordTokenizer, batch_size: int = 2048
                  ) -> dict[str, float]:
    """Percentiles, mean and max of the number of tokens per text."""
    lengths = []
    for start in range(0, len(texts), batch_size):
        batch = tf.constant(texts[start:start + batch_size], tf.string)
        lengths.append(tokenizer(batch).row_lengths().numpy())
    values = np.concatenate(lengths) if lengths else np.zeros([0])
    if not values.size:
        return {}
    stats = {f"p{p}": round(float(np.percentile(values, p)), 2) for p in PERCENTILES}
    stats.update(mean=round(float(values.mean()), 2), max=int(values.max()))
    return stats


def split_report(split: LoadedSplit, text_fields: tuple[str, ...],
                 tokenizer: WordTokenizer) -> dict[str, Any]:
    """``split.stats()`` plus token-length percentiles of each text field."""
    report = split.stats()
    lengths = {}
    for name in text_fields:
        column = split.columns[name]
        texts = [t for row in column for t in row] if column and isinstance(column[0], list) \
            else list(column)
        lengths[name] = token_lengths(texts, tokenizer)
    report["token_lengths"] = lengths
    return report


def inspect_dataset(name: str, data_dir: str | None, splits: list[str] | None = None,
                    **kwargs) -> tuple[dict[str, Any], bool]:
    """Returns ``(report, ok)``; ``ok`` is False if a split could not be read."""
    dataset = datasets.info(name)
    tokenizer = WordTokenizer()
    report: dict[str, Any] = {"dataset": name, "data_dir": data_dir, "options": kwargs,
                              "splits": {}}
    ok = True
    for split in splits or dataset.splits:
        try:
            loaded = datasets.load(name, split, data_dir, **kwargs)
        except DataFormatError as e:  # includes MissingDataError
            report["splits"][split] = {"error": str(e)}
            ok = False
            continue
        except ValueError as e:  # e.g. IMDB's dev split without dev_size
            report["splits"][split] = {"skipped": str(e)}
            continue
        report["splits"][split] = split_report(loaded, dataset.text_fields, tokenizer)
    return report, ok


def main(argv: list[str]) -> None:
    del argv
    if not FLAGS.dataset:
        raise app.UsageError(f"--dataset is required: one of {', '.join(datasets.names())}")
    kwargs = parse_options(FLAGS.dataset, FLAGS.options)
    report, ok = inspect_dataset(FLAGS.dataset, datasets.paths.resolve_data_dir(FLAGS.data_dir),
                                 FLAGS.splits, **kwargs)
    json.dump(report, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    define_flags()
    app.run(main)
