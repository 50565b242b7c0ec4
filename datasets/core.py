"""The result of loading one split, and the description of a registered dataset.

Every loader parses its raw files eagerly in Python into columns (lists), so row counts, dropped
rows and label distributions are exact before any ``tf.data`` pipeline runs; the files are small
(the largest, IMDB, is about 130 MB of text). :attr:`LoadedSplit.dataset` then turns the columns
into a ``tf.data.Dataset`` of dicts with ``from_tensor_slices``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import socket
import threading
import urllib.parse
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

#: The split names every dataset uses (TFDS calls the dev split "validation").
SPLITS = ("train", "dev", "test")
TFDS_SPLITS = {"train": "train", "dev": "validation", "test": "test"}

#: The label of an example whose label is not distributed (GLUE SST-2 test).
UNLABELLED = -1

TEXT = tf.TensorSpec([], tf.string)
LABEL = tf.TensorSpec([], tf.int64)


@dataclasses.dataclass
class LoadedSplit:
    """One split of one dataset, parsed.

    Args:
        name: the dataset name, e.g. ``"sst2"``.
        split: ``"train"``, ``"dev"`` or ``"test"``.
        columns: column name → one Python value per row (``str``, ``int`` or a list of ``str``).
        schema: column name → the ``tf.TensorSpec`` of one example of ``dataset``.
        label_names: the class names; label id ``i`` is ``label_names[i]``.
        dropped: reason → number of rows the dataset's own convention drops (e.g.
            ``{"no_gold_label": 158}``). Empty when nothing was dropped.
        source: the files (or TFDS name) that were read.
        info: further facts for ``inspect``, e.g. ``{"sample": True}`` when SNLI train is read
            from the 20k sample, or the list of missing Flickr8k images.

    Example:

    ```python
    sst2 = datasets.load("sst2", "dev", data_dir="/data")
    sst2.num_rows          # 872
    sst2.dropped           # {"neutral": 229}
    for ex in sst2.dataset.take(1):
        ex["text"], ex["label"]
    ```
    """

    name: str
    split: str
    columns: dict[str, list]
    schema: dict[str, tf.TensorSpec]
    label_names: tuple[str, ...]
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)
    source: list[str] = dataclasses.field(default_factory=list)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if set(self.columns) != set(self.schema):
            raise ValueError(f"columns {sorted(self.columns)} != schema {sorted(self.schema)}")
        lengths = {k: len(v) for k, v in self.columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns have different lengths: {lengths}")

    @property
    def num_rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    @functools.cached_property
    def dataset(self) -> tf.data.Dataset:
        """A ``tf.data.Dataset`` of dicts, one per row, in file order (see ``schema``)."""
        tensors = {}
        for key, spec in self.schema.items():
            shape = (self.num_rows, *spec.shape)
            if spec.dtype == tf.string:
                array = np.asarray(self.columns[key], dtype=object).reshape(shape)
            else:
                array = np.asarray(self.columns[key], dtype=spec.dtype.as_numpy_dtype)
                array = array.reshape(shape)
            tensors[key] = tf.constant(array, dtype=spec.dtype)
        return tf.data.Dataset.from_tensor_slices(tensors)

    def fingerprint(self, rows: Sequence[int] | None = None) -> str:
        """A SHA-256 of the examples (of ``rows``, default all), whatever file or folder held
        them: the name, split and every column except file paths (``*_path``)."""
        digest = hashlib.sha256(f"{self.name}/{self.split}".encode())
        indices = range(self.num_rows) if rows is None else [int(i) for i in rows]
        for key in sorted(k for k in self.columns if not k.endswith("_path")):
            column = self.columns[key]
            digest.update(key.encode())
            digest.update(json.dumps([column[i] for i in indices]).encode())
        return digest.hexdigest()

    def subset(self, limit: int, seed: int) -> np.ndarray:
        """The rows of a fixed random subset of ``limit`` rows, in file order (all rows when
        ``limit`` is 0 or not below :attr:`num_rows`).

        The subset is the first ``limit`` of one permutation drawn with ``seed``, so for one
        seed a smaller subset lies inside a larger one (nested subsets, for learning curves),
        and every run with the same ``(limit, seed)`` sees the same examples.
        """
        if not 0 < limit < self.num_rows:
            return np.arange(self.num_rows)
        order = np.random.default_rng(seed).permutation(self.num_rows)
        return np.sort(order[:limit])

    def label_counts(self) -> dict[str, int]:
        """Label name → number of rows (``"unlabelled"`` for label -1); empty without labels."""
        if "label" not in self.columns:
            return {}
        counts = collections.Counter(self.columns["label"])
        names = {i: n for i, n in enumerate(self.label_names)}
        names[UNLABELLED] = "unlabelled"
        return {names[i]: counts[i] for i in sorted(counts)}

    def stats(self) -> dict[str, Any]:
        """Rows, dropped rows with reasons, label distribution, files read and further facts."""
        return {"rows": self.num_rows, "dropped": dict(self.dropped),
                "labels": self.label_counts(), "source": list(self.source), **self.info}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset.

    Args:
        name: the name passed to ``datasets.load``.
        loader: ``loader(split, data_dir, **options) -> LoadedSplit``; ``data_dir`` is already
            resolved and ``None`` means the online source.
        splits: the splits ``load`` accepts.
        text_fields: the string columns that hold text (what ``inspect`` measures).
        tfds_name: the TFDS dataset read when ``data_dir`` is ``None`` (``None``: none exists).
        description: one line.
    """

    name: str
    loader: Callable[..., LoadedSplit]
    splits: tuple[str, ...]
    text_fields: tuple[str, ...]
    tfds_name: str | None
    description: str


#: Seconds to wait for a TFDS dataset's download hosts (probed together) before calling one
#: unreachable.
DOWNLOAD_PROBE_SECONDS = 10.0


def _download(tfds_name: str, builder) -> None:
    """Downloads and prepares a TFDS dataset that is not in TFDS's data dir yet, or raises
    :class:`~datasets.errors.DataUnavailableError` in one line at once when its download hosts
    cannot be reached (offline, TFDS would retry each file for minutes and end in a
    traceback)."""
    from datasets.errors import DataUnavailableError

    where = (f"{tfds_name} is neither in --data_dir (none given) nor downloaded in "
             f"{builder.data_dir_root}")
    hosts = sorted({urllib.parse.urlparse(url).hostname for url in builder.url_infos or {}})
    with concurrent.futures.ThreadPoolExecutor(max(len(hosts), 1)) as probes:  # one wait for all
        up = list(probes.map(lambda host: reachable(host, 443, DOWNLOAD_PROBE_SECONDS), hosts))
    down = [host for host, ok in zip(hosts, up) if not ok]
    if down:
        raise DataUnavailableError(f"{where}, and it cannot be downloaded: "
                                   f"{', '.join(down)} cannot be reached. Pass --data_dir (or "
                                   f"set $KERAS_PAPERS_DATA_DIR) with its files; see "
                                   f"datasets/README.md")
    try:
        builder.download_and_prepare()
    except OSError as e:  # requests' errors are OSErrors too
        raise DataUnavailableError(f"{where}, and its download failed ({type(e).__name__}: "
                                   f"{str(e)[:200]}). Pass --data_dir with its files, or try "
                                   f"again") from None


def reachable(host: str, port: int, timeout: float) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds, name lookup
    included (in a daemon thread: a lookup that hangs cannot hold the caller or its exit)."""
    opened, done = threading.Event(), threading.Event()

    def connect():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            opened.set()
        except OSError:
            pass
        finally:
            done.set()

    threading.Thread(target=connect, daemon=True).start()
    done.wait(timeout)
    return opened.is_set()


def tfds_columns(tfds_name: str, split: str, fields: dict[str, str]) -> tuple[dict[str, list], str]:
    """Loads a whole TFDS split into memory.

    Args:
        tfds_name: e.g. ``"glue/sst2"``.
        split: a TFDS split expression, e.g. ``"validation"`` or ``"train[:-5000]"``.
        fields: TFDS feature name → column name, e.g. ``{"sentence": "text"}``.

    Returns:
        ``(columns, source)``: strings decoded to ``str``, integers to ``int``, and a source
        string like ``"tfds:glue/sst2/validation"``.
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder(tfds_name)
    if not builder.is_prepared():
        _download(tfds_name, builder)
    data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    columns = {}
    for feature, column in fields.items():
        values = data[feature]
        if values.dtype == object:
            columns[column] = [v.decode("utf-8") for v in values]
        else:
            columns[column] = [int(v) for v in values]
    return columns, f"tfds:{tfds_name}/{split}"
