"""Stanford Natural Language Inference corpus 1.0 (Bowman et al., EMNLP 2015).

Formats parsed, for each split (``train``, ``dev``, ``test``), the first file found of:

1. ``snli_1.0_{split}.jsonl``: the original JSON lines (fields ``gold_label``, ``sentence1``,
   ``sentence2``; the other fields are ignored);
2. ``snli_1.0_{split}.txt``: the original tab-separated file with a header line (columns
   ``gold_label``, ``sentence1``, ``sentence2`` among the 14);
3. ``{split}.tsv``: a tab-separated file whose header has at least ``gold_label``, ``sentence1``,
   ``sentence2`` (extra columns such as ``source_file`` are ignored);

each optionally gzip'd, in ``snli/``, ``snli/snli_1.0/`` or ``snli_1.0/`` under ``data_dir``. When
no train file is found, ``snli/train_sample_20k.tsv`` (a 20,000-pair sample of train) is read
instead and a warning is logged; ``LoadedSplit.info`` then says ``"sample": True`` and names the
file, so no result computed on it can be mistaken for one on the 550,152-pair train split.

Pairs whose ``gold_label`` is ``-`` (no majority among the annotators) are dropped, as in the
paper, and counted as ``dropped["no_gold_label"]``. Labels: 0 entailment, 1 neutral,
2 contradiction (TFDS's order). Schema: ``{"text_a": premise, "text_b": hypothesis, "label"}``.

Online (``data_dir=None``): TFDS ``snli``, whose label -1 pairs are dropped and counted likewise.
"""

from __future__ import annotations

import logging

from datasets import files
from datasets.core import LABEL, TEXT, TFDS_SPLITS, DatasetInfo, LoadedSplit, tfds_columns
from datasets.errors import MissingDataError

LABELS = ("entailment", "neutral", "contradiction")
_LABEL_IDS = {name: i for i, name in enumerate(LABELS)}
NO_GOLD_LABEL = "-"
SAMPLE = "train_sample_20k.tsv"
_DIRS = ("snli", "snli/snli_1.0", "snli_1.0")

logger = logging.getLogger(__name__)


def split_path(data_dir: str, split: str) -> tuple[str, bool]:
    """Returns ``(path, is_sample)`` of the file read for ``split`` (see the module docstring)."""
    names = [f"snli_1.0_{split}.jsonl", f"snli_1.0_{split}.txt", f"{split}.tsv"]
    candidates = [f"{d}/{n}" for d in _DIRS for n in names]
    try:
        return files.find_file(data_dir, candidates, f"SNLI {split}"), False
    except MissingDataError:
        if split != "train":
            raise
    path = files.find_file(data_dir, candidates + [f"snli/{SAMPLE}"], "SNLI train")
    logger.warning("SNLI: the full train split (snli_1.0_train.jsonl/.txt or train.tsv) is not in "
                   "%s; reading the 20,000-pair SAMPLE %s instead. Results are not comparable to "
                   "training on the 550,152 pairs.", data_dir, path)
    return path, True


def read_pairs(path: str) -> tuple[dict[str, list], dict[str, int]]:
    """Parses one SNLI file (jsonl, txt or tsv, by its name) into columns and dropped counts.

    Raises:
        DataFormatError: a line is malformed, a label unknown, or a sentence empty.
    """
    base = path[:-3] if path.endswith(".gz") else path
    if base.endswith(".jsonl"):
        rows = files.read_jsonl(path)
    else:
        _, rows = files.read_tsv(path, required=("gold_label", "sentence1", "sentence2"))
    columns = {"text_a": [], "text_b": [], "label": []}
    dropped = {}
    for n, row in rows:
        if files.field(row, "gold_label", path, n) == NO_GOLD_LABEL:
            dropped["no_gold_label"] = dropped.get("no_gold_label", 0) + 1
            continue
        columns["label"].append(files.label_field(row, "gold_label", _LABEL_IDS, path, n))
        columns["text_a"].append(files.text_field(row, "sentence1", path, n))
        columns["text_b"].append(files.text_field(row, "sentence2", path, n))
    return columns, dropped


def load_snli(split: str, data_dir: str | None) -> LoadedSplit:
    """SNLI: ``{"text_a": tf.string, "text_b": tf.string, "label": tf.int64}``."""
    schema = {"text_a": TEXT, "text_b": TEXT, "label": LABEL}
    if data_dir is None:
        columns, source = tfds_columns("snli", TFDS_SPLITS[split], {
            "premise": "text_a", "hypothesis": "text_b", "label": "label"})
        keep = [i for i, label in enumerate(columns["label"]) if label >= 0]
        dropped = {"no_gold_label": len(columns["label"]) - len(keep)}
        columns = {k: [v[i] for i in keep] for k, v in columns.items()}
        return LoadedSplit("snli", split, columns, schema, LABELS, dropped, [source],
                           {"sample": False})
    path, is_sample = split_path(data_dir, split)
    columns, dropped = read_pairs(path)
    return LoadedSplit("snli", split, columns, schema, LABELS, dropped, [path],
                       {"file": path, "sample": is_sample})


SNLI = DatasetInfo("snli", load_snli, ("train", "dev", "test"), ("text_a", "text_b"), "snli",
                   "SNLI 1.0 premise/hypothesis pairs, '-' pairs dropped")
