"""Every paper reads its data through this package.

``datasets.load(name, split, data_dir=None, **options)`` parses the raw files of one split, as
the original distributions ship them, from ``data_dir`` (local or ``gs://``; see
``datasets/README.md`` for the layout), or loads the TFDS copy when ``data_dir`` is ``None``.
It returns a :class:`LoadedSplit` with ``.dataset`` (a ``tf.data.Dataset`` of dicts),
``.num_rows``, ``.dropped``, ``.source``, ``.label_names`` and ``.stats()``.

- ``sst5``: ``text``, ``label`` 0-4; options ``phrases``, ``unescape_ptb``; no TFDS.
- ``sst2``: ``text``, ``label`` 0/1; options ``phrases``, ``unescape_ptb``; no TFDS.
- ``glue_sst2``: ``text``, ``label`` 0/1 (test: -1); TFDS ``glue/sst2``.
- ``mrpc``: ``text_a``, ``text_b``, ``label`` 0/1; TFDS ``glue/mrpc``.
- ``snli``: ``text_a`` (premise), ``text_b`` (hypothesis), ``label`` 0-2; TFDS ``snli``.
- ``imdb``: ``text``, ``label`` 0/1; options ``dev_size``, ``remove_br``; TFDS ``imdb_reviews``.
- ``flickr8k``: ``image_id``, ``image_path``, ``captions`` (5 strings); options
  ``require_images``, ``image_dir``; no TFDS.

Text is ``tf.string``, labels ``tf.int64``. Then :mod:`datasets.text` (tokenizer, vocabulary),
:mod:`datasets.batching` (batches for the training loop), :mod:`datasets.word_vectors` (GloVe),
:mod:`datasets.images` and :mod:`datasets.captions` (Flickr8k).

Example:

```python
import datasets
train = datasets.load("snli", "train", data_dir="/data")
train.num_rows, train.dropped, train.stats()["sample"]
```
"""

from __future__ import annotations

import functools
import importlib
from inspect import Parameter, signature
from typing import TYPE_CHECKING

from datasets import paths
from datasets.errors import DataFormatError, DataUnavailableError, MissingDataError

if TYPE_CHECKING:
    from datasets.core import DatasetInfo, LoadedSplit

#: Names this package exports, by the module that defines them. They are imported on first
#: use, so ``datasets.errors`` and ``datasets.files`` can be imported without TensorFlow.
_EXPORTS = {
    "derive_seed": "batching", "eval_batches": "batching", "train_batches": "batching",
    "DataRequest": "batching", "SPLITS": "core", "DatasetInfo": "core", "LoadedSplit": "core",
    "Vocabulary": "text", "WordTokenizer": "text", "encode_text": "text",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"datasets.{_EXPORTS[name]}"), name)
    try:
        return importlib.import_module(f"datasets.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"datasets.{name}":
            raise
        raise AttributeError(f"module 'datasets' has no attribute {name!r}") from None


@functools.cache
def _datasets() -> dict[str, DatasetInfo]:
    from datasets.flickr8k import FLICKR8K
    from datasets.glue import GLUE_SST2, MRPC
    from datasets.imdb import IMDB
    from datasets.snli import SNLI
    from datasets.sst import SST2, SST5

    return {info.name: info for info in (SST5, SST2, GLUE_SST2, MRPC, SNLI, IMDB, FLICKR8K)}


def names() -> list[str]:
    """The registered dataset names, sorted."""
    return sorted(_datasets())


def info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name`` (splits, text fields, TFDS name, description)."""
    if name not in _datasets():
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(names())}")
    return _datasets()[name]


def options(name: str) -> dict[str, object]:
    """The options ``load`` accepts for ``name``, with their defaults."""
    parameters = signature(info(name).loader).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is Parameter.KEYWORD_ONLY}


def load(name: str, split: str, data_dir: str | None = None, **kwargs) -> LoadedSplit:
    """Parses one split of a dataset.

    Args:
        name: one of :func:`names`.
        split: ``"train"``, ``"dev"`` or ``"test"``.
        data_dir: the data directory (local or ``gs://``); ``None``: ``$KERAS_PAPERS_DATA_DIR``,
            and if that is unset too, the TFDS copy (downloaded on first use).
        **kwargs: dataset options (see :func:`options`).

    Returns:
        A :class:`LoadedSplit`.

    Raises:
        ValueError: unknown name, split or option.
        MissingDataError: a file of the split is not in ``data_dir``.
        DataFormatError: a file is malformed, or the split has no examples; the message names
            the file (and line and field).

    Example:

    ```python
    dev = datasets.load("sst2", "dev", "/data")
    dev.num_rows, dev.label_names      # 872, ("negative", "positive")
    ```
    """
    dataset = info(name)
    if split not in dataset.splits:
        raise ValueError(f"dataset {name!r} has no split {split!r}; valid: "
                         f"{', '.join(dataset.splits)}")
    valid = options(name)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for dataset {name!r}; valid: "
                         f"{', '.join(valid) or 'none'}")
    loaded = dataset.loader(split, paths.resolve_data_dir(data_dir), **kwargs)
    if loaded.num_rows == 0:
        dropped = (f" ({', '.join(f'{n} dropped: {why}' for why, n in loaded.dropped.items())})"
                   if loaded.dropped else "")
        raise DataFormatError(f"the {name} {split} split has no examples{dropped}",
                              path=", ".join(loaded.source) or None)
    return loaded


__all__ = [
    "SPLITS", "DataFormatError", "DataRequest", "DataUnavailableError", "DatasetInfo",
    "LoadedSplit", "MissingDataError", "Vocabulary", "WordTokenizer", "derive_seed",
    "encode_text", "eval_batches", "info", "load", "names", "options", "train_batches",
]
