"""GLUE (Wang et al., 2018) SST-2 and MRPC, from the TSV files GLUE distributes.

Formats parsed (tab-separated, header line, UTF-8 with an optional byte-order mark, read with
``csv.QUOTE_NONE`` because the sentences contain unbalanced ``"``):

- ``glue_sst2`` (Socher et al., 2013, as packaged by GLUE): ``SST-2/{train,dev}.tsv`` with columns
  ``sentence, label`` (67,349 / 872 rows; train is phrase-level, lowercased, PTB-tokenized) and
  ``test.tsv`` with ``index, sentence`` (1,821 rows, **unlabelled**: ``label`` is -1). For a
  labelled sentence-level test set use ``sst2`` (from the trees).
- ``mrpc`` (Microsoft Research Paraphrase Corpus; Dolan & Brockett, 2005): ``MRPC/{train,dev}.tsv``
  with ``Quality, #1 ID, #2 ID, #1 String, #2 String`` (3,668 / 408 pairs) and ``test.tsv`` with
  ``index`` in place of ``Quality`` (1,725 pairs). GLUE hides the test labels, but they are in the
  original corpus's ``msr_paraphrase_test.txt``, which lists the same pairs in the same order: row
  *i* of ``test.tsv`` takes the ``Quality`` of row *i* there, after checking that both ids match
  (a mismatch raises :class:`~datasets.errors.DataFormatError`).

Surrounding whitespace of the sentences is removed (GLUE's SST-2 sentences end in a space).
Online (``data_dir=None``) these are TFDS ``glue/sst2`` and ``glue/mrpc``, whose test labels are -1.
"""

from __future__ import annotations

from datasets import files
from datasets.core import (LABEL, TEXT, TFDS_SPLITS, UNLABELLED, DatasetInfo, LoadedSplit,
                           tfds_columns)
from datasets.errors import DataFormatError

SST2_LABELS = ("negative", "positive")
MRPC_LABELS = ("not_equivalent", "equivalent")
_BINARY = {"0": 0, "1": 1}


def load_glue_sst2(split: str, data_dir: str | None) -> LoadedSplit:
    """GLUE SST-2: ``{"text": tf.string, "label": tf.int64}`` (test: label -1)."""
    schema = {"text": TEXT, "label": LABEL}
    if data_dir is None:
        columns, source = tfds_columns("glue/sst2", TFDS_SPLITS[split],
                                       {"sentence": "text", "label": "label"})
        return LoadedSplit("glue_sst2", split, columns, schema, SST2_LABELS, source=[source])
    path = files.find_file(data_dir, [f"sst/glue_sst2/{split}.tsv", f"SST-2/{split}.tsv",
                                      f"glue_data/SST-2/{split}.tsv"], f"GLUE SST-2 ({split})")
    labelled = split != "test"
    _, rows = files.read_tsv(path, required=("sentence", "label") if labelled else
                             ("index", "sentence"))
    texts = [files.text_field(row, "sentence", path, n) for n, row in rows]
    labels = ([files.label_field(row, "label", _BINARY, path, n) for n, row in rows]
              if labelled else [UNLABELLED] * len(rows))
    return LoadedSplit("glue_sst2", split, {"text": texts, "label": labels}, schema, SST2_LABELS,
                       source=[path], info={"labelled": labelled})


def _mrpc_path(data_dir: str, folder: str, name: str, what: str) -> str:
    """``mrpc/<folder>/<name>`` (the shared layout), else GLUE's ``MRPC/<name>``."""
    return files.find_file(data_dir, [f"mrpc/{folder}/{name}", f"MRPC/{name}",
                                      f"glue_data/MRPC/{name}"], what)


def load_mrpc(split: str, data_dir: str | None) -> LoadedSplit:
    """GLUE MRPC: ``{"text_a": tf.string, "text_b": tf.string, "label": tf.int64}``.

    The test labels come from the original ``msr_paraphrase_test.txt`` (see the module
    docstring); online (TFDS) they are -1.
    """
    schema = {"text_a": TEXT, "text_b": TEXT, "label": LABEL}
    if data_dir is None:
        columns, source = tfds_columns("glue/mrpc", TFDS_SPLITS[split],
                                       {"sentence1": "text_a", "sentence2": "text_b",
                                        "label": "label"})
        return LoadedSplit("mrpc", split, columns, schema, MRPC_LABELS, source=[source])
    columns = ("#1 ID", "#2 ID", "#1 String", "#2 String")
    path = _mrpc_path(data_dir, "glue", f"{split}.tsv", f"GLUE MRPC ({split})")
    _, rows = files.read_tsv(path, required=(("index",) if split == "test" else ("Quality",))
                             + columns)
    source = [path]
    if split == "test":
        original = _mrpc_path(data_dir, "original", "msr_paraphrase_test.txt",
                              "MRPC test labels (original msr_paraphrase_test.txt)")
        _, labelled_rows = files.read_tsv(original, required=("Quality",) + columns)
        if len(labelled_rows) != len(rows):
            raise DataFormatError(f"{len(labelled_rows)} pairs, but {path} has {len(rows)}",
                                  path=original)
        for (n, row), (m, labelled) in zip(rows, labelled_rows):
            for column in ("#1 ID", "#2 ID"):
                if row[column].strip() != labelled[column].strip():
                    raise DataFormatError(
                        f"id {labelled[column]!r} does not match {row[column]!r} on line {n} of "
                        f"{path}: the files are not in the same order", path=original, line=m,
                        field=column)
        labels = [files.label_field(row, "Quality", _BINARY, original, m)
                  for m, row in labelled_rows]
        source.append(original)
    else:
        labels = [files.label_field(row, "Quality", _BINARY, path, n) for n, row in rows]
    return LoadedSplit(
        "mrpc", split,
        {"text_a": [files.text_field(row, "#1 String", path, n) for n, row in rows],
         "text_b": [files.text_field(row, "#2 String", path, n) for n, row in rows],
         "label": labels},
        schema, MRPC_LABELS, source=source)


GLUE_SST2 = DatasetInfo("glue_sst2", load_glue_sst2, ("train", "dev", "test"), ("text",),
                        "glue/sst2", "GLUE SST-2 (phrase-level train, lowercased); test unlabelled")
MRPC = DatasetInfo("mrpc", load_mrpc, ("train", "dev", "test"), ("text_a", "text_b"), "glue/mrpc",
                   "GLUE MRPC paraphrase pairs; test labels from the original corpus")
