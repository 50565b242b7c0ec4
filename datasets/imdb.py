"""IMDB Large Movie Review Dataset v1.0 (Maas et al., ACL 2011): binary sentiment of reviews.

Formats parsed (the first found under ``data_dir``):

1. the folder layout of ``aclImdb_v1.tar.gz``:
   ``imdb/aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` (or ``aclImdb/...`` directly under
   ``data_dir``), one UTF-8 review per file. ``train/unsup`` (unlabelled) is not read.
2. a JSON-lines export, ``imdb/aclImdb_v1_labeled.jsonl`` (optionally gzip'd): one object per
   review with at least ``split`` (``train``/``test``; ``unsup`` rows are ignored), ``label``
   (``pos``/``neg``), ``id`` (the ``<id>`` of the file name) and ``text``.

Either way a split is ordered positive reviews first, then negative, each by id, so the two
layouts give identical datasets. 25,000 train / 25,000 test reviews, labels 0 neg / 1 pos.

IMDB has no dev split. ``dev_size=N`` (even, default 0) carves one out of train deterministically:
for each class, the N/2 reviews with the largest ids (``train/pos`` and ``train/neg`` ids
``12500 - N/2 ... 12499`` in the standard release) form ``dev`` and are removed from ``train``.
Reviews of one movie have consecutive ids in the release, so a contiguous block shares at most
one movie with the rest of train, where a random sample would share many. With ``dev_size=0``
the ``dev`` split raises ``ValueError``.

``remove_br=True`` (default) replaces each run of the HTML line breaks ``<br />`` that the
reviews contain (``<br /><br />``, with any spaces between them) by one space, so word
tokenizers do not produce ``br`` tokens; ``False`` keeps the text verbatim.

Online (``data_dir=None``): TFDS ``imdb_reviews``; there ``dev`` is ``train[-N:]`` in TFDS's order
(not class-balanced) and ``train`` is ``train[:-N]``.
"""

from __future__ import annotations

import functools
import re

import tensorflow as tf

from datasets import files
from datasets.core import LABEL, TEXT, DatasetInfo, LoadedSplit, tfds_columns
from datasets.errors import DataFormatError, MissingDataError

LABELS = ("neg", "pos")
_LABEL_IDS = {name: i for i, name in enumerate(LABELS)}
_FILE_NAME = re.compile(r"^(\d+)_(\d+)\.txt$")
_BR = re.compile(r"<br\s*/?>(?:\s*<br\s*/?>)*", re.IGNORECASE)
JSONL = "aclImdb_v1_labeled.jsonl"

# A review: (label id, id, text).
Review = tuple[int, int, str]


def _order(review: Review) -> tuple[int, int]:
    return (-review[0], review[1])  # positive first, then by id


def read_folder(root: str, split: str) -> list[Review]:
    """Reads ``root/{split}/{pos,neg}/<id>_<rating>.txt``.

    Raises:
        MissingDataError: a class folder is missing.
        DataFormatError: a file name does not match ``<id>_<rating>.txt``, or a review is
            empty or not UTF-8.
    """
    reviews = []
    for name, label in _LABEL_IDS.items():
        folder = files.join(root, split, name)
        if not tf.io.gfile.isdir(folder):
            raise MissingDataError("IMDB class folder not found", path=folder)
        for file_name in tf.io.gfile.listdir(folder):
            match = _FILE_NAME.match(file_name)
            path = files.join(folder, file_name)
            if not match:
                raise DataFormatError("file name is not <id>_<rating>.txt", path=path)
            text = files.read_text(path).strip()
            if not text:
                raise DataFormatError("empty review", path=path, field="text")
            reviews.append((label, int(match.group(1)), text))
    return sorted(reviews, key=_order)


@functools.lru_cache(maxsize=1)
def _read_jsonl(path: str, length: int, mtime: int) -> dict[str, list[Review]]:
    del length, mtime  # part of the cache key only: a changed file is read again
    by_split: dict[str, list[Review]] = {"train": [], "test": []}
    for n, row in files.read_jsonl(path):
        split = files.field(row, "split", path, n)
        if split == "unsup":
            continue
        if split not in by_split:
            raise DataFormatError(f"unknown split {split!r}; expected train, test or unsup",
                                  path=path, line=n, field="split")
        label = files.label_field(row, "label", _LABEL_IDS, path, n)
        review_id = files.field(row, "id", path, n)
        if not isinstance(review_id, int) or isinstance(review_id, bool):
            raise DataFormatError(f"expected an integer id, found {review_id!r}", path=path,
                                  line=n, field="id")
        by_split[split].append((label, review_id, files.text_field(row, "text", path, n)))
    return {split: sorted(reviews, key=_order) for split, reviews in by_split.items()}


def read_jsonl(path: str, split: str) -> list[Review]:
    """Reads the reviews of ``split`` from the JSON-lines export (parsed once per process)."""
    if not files.exists(path):
        raise MissingDataError("file not found", path=path)
    stat = tf.io.gfile.stat(path)
    return _read_jsonl(path, stat.length, stat.mtime_nsec)[split]


def carve_dev(reviews: list[Review], dev_size: int) -> tuple[list[Review], list[Review]]:
    """Splits train into ``(train, dev)``: dev is the ``dev_size // 2`` largest ids per class."""
    per_class = dev_size // 2
    train, dev = [], []
    for label in sorted(_LABEL_IDS.values(), reverse=True):
        group = [r for r in reviews if r[0] == label]
        if per_class >= len(group):
            raise ValueError(f"dev_size={dev_size} leaves no {LABELS[label]} train reviews")
        train += group[:len(group) - per_class]
        dev += group[len(group) - per_class:]
    return train, dev


def _source(data_dir: str) -> tuple[str, bool]:
    for folder in ("imdb/aclImdb", "aclImdb"):
        root = files.join(data_dir, folder)
        if tf.io.gfile.isdir(files.join(root, "train")):
            return root, True
    return files.find_file(data_dir, [f"imdb/{JSONL}"], "IMDB (aclImdb/ folder or jsonl)"), False


def load_imdb(split: str, data_dir: str | None, *, dev_size: int = 0,
              remove_br: bool = True) -> LoadedSplit:
    """IMDB: ``{"text": tf.string, "label": tf.int64 (0 neg, 1 pos)}``; see the module docstring."""
    if dev_size < 0 or dev_size % 2:
        raise ValueError(f"imdb dev_size must be a non-negative even number, got {dev_size}")
    if split == "dev" and not dev_size:
        raise ValueError("IMDB has no dev split: pass dev_size=N to hold out N train reviews")
    schema = {"text": TEXT, "label": LABEL}
    info = {"dev_size": dev_size}
    if data_dir is None:
        tfds_split = {"train": f"train[:-{dev_size}]" if dev_size else "train",
                      "dev": f"train[-{dev_size}:]", "test": "test"}[split]
        columns, source = tfds_columns("imdb_reviews", tfds_split, {"text": "text",
                                                                    "label": "label"})
    else:
        path, is_folder = _source(data_dir)
        base = "test" if split == "test" else "train"
        reviews = read_folder(path, base) if is_folder else read_jsonl(path, base)
        if split != "test" and dev_size:
            reviews = carve_dev(reviews, dev_size)[split == "dev"]
        columns = {"text": [r[2] for r in reviews], "label": [r[0] for r in reviews]}
        source = files.join(path, base) if is_folder else path
    if remove_br:
        columns["text"] = [_BR.sub(" ", text) for text in columns["text"]]
    return LoadedSplit("imdb", split, columns, schema, LABELS, source=[source], info=info)


IMDB = DatasetInfo("imdb", load_imdb, ("train", "dev", "test"), ("text",), "imdb_reviews",
                   "IMDB movie reviews (Maas 2011), binary; dev carved from train by dev_size")
