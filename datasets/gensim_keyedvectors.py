"""A restricted reader of gensim ``KeyedVectors`` files that needs no gensim.

``KeyedVectors.save(path)`` (gensim 3 and 4) pickles the whole object: its words (gensim 3:
``index2word`` and a ``vocab`` dict of ``Vocab(count, index)``; gensim 4: ``index_to_key``),
and its ``vectors`` as a numpy array, inline, or, above gensim's size limit, in a separate
``<path>.vectors.npy`` named in the pickle's ``__numpys`` list. :func:`read_keyed_vectors`
returns the words (in row order) and the vectors.

Unpickling can call any importable function, so ``pickle.load`` (which gensim's ``load`` runs) on
an untrusted file can run arbitrary code. This reader's unpickler resolves only the names such a
file needs, and none of them to the real thing:

- ``gensim.models.keyedvectors.{KeyedVectors, Word2VecKeyedVectors, Vocab}``: plain record
  classes here, which keep the attributes the file sets and nothing else;
- ``numpy.core.multiarray._reconstruct``, ``numpy.ndarray`` and ``numpy.dtype`` (``numpy._core``
  too): records of the array's shape, dtype name and raw bytes, turned into an array with
  ``numpy.frombuffer`` after the checks below;
- ``numpy.core.multiarray.scalar``: a number or string built the same way.

Only plain numeric, boolean and fixed-length string dtypes are accepted (never ``object``); an
array's bytes must match its shape and dtype exactly. Any other name (``posix.system``,
``builtins.eval``…), a persistent id, a record called with arguments, or a file without words
and a 2-D float matrix of matching length raises :class:`~datasets.errors.DataFormatError`,
naming the file; nothing from the file is ever called.

Example:

```python
words, vectors = read_keyed_vectors("test_model.kv")
len(words), vectors.shape          # 13013, (13013, 300)
read_keyed_vectors("evil.kv")      # DataFormatError: evil.kv: refusing to load posix.system: …
```
"""

from __future__ import annotations

import io
import os
import pickle
import re
from typing import Any

import numpy as np

from datasets.errors import DataFormatError, MissingDataError

_KEYED_VECTORS = ("KeyedVectors", "Word2VecKeyedVectors")
_NUMPY_CORE = ("numpy.core.multiarray", "numpy._core.multiarray")
#: dtype names a gensim file uses: bools, integers, floats, fixed-length str and bytes.
_DTYPE_NAME = re.compile(r"^(b1|[iu][1248]|f[248]|[US]\d{1,6})$")


class _Record:
    """A gensim object's attributes, as the pickle sets them (a stand-in for its class)."""

    def __init__(self):
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"{type(self).__name__} state is not a dict")
        self.state = state


class _KeyedVectorsRecord(_Record):
    pass


class _VocabRecord(_Record):
    pass


class _NdarrayMarker:
    """Stands for ``numpy.ndarray`` as the first argument of ``_reconstruct``."""


class _DtypeRecord:
    """``numpy.dtype(name, align, copy)`` with its pickled byte order, checked."""

    def __init__(self, name: Any, align: Any = False, copy: Any = True):
        del align, copy
        if not isinstance(name, str) or not _DTYPE_NAME.match(name):
            raise pickle.UnpicklingError(f"dtype {name!r:.40} is not a plain numeric or "
                                         "string dtype")
        self.dtype = np.dtype(name)

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 8 and state[0] == 3
                and state[1] in ("<", ">", "|", "=") and state[2:5] == (None, None, None)):
            raise pickle.UnpicklingError(f"unsupported dtype state {state!r:.80}")
        if state[5] not in (-1, self.dtype.itemsize):
            raise pickle.UnpicklingError(f"dtype {self.dtype} with item size {state[5]}")
        if state[1] in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(state[1])


class _ArrayRecord:
    """``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')`` and its ``__setstate__``."""

    def __init__(self):
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 5):
            raise pickle.UnpicklingError("unsupported ndarray state")
        _version, shape, dtype, fortran, raw = state
        if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
            raise pickle.UnpicklingError(f"bad array shape {shape!r:.80}")
        if not isinstance(dtype, _DtypeRecord) or not isinstance(raw, bytes):
            raise pickle.UnpicklingError("an array that is not a plain numeric or string array")
        size = int(np.prod(shape, dtype=np.int64))
        if len(raw) != size * dtype.dtype.itemsize:
            raise pickle.UnpicklingError(f"array of shape {shape} {dtype.dtype} has "
                                         f"{len(raw)} bytes")
        array = np.frombuffer(raw, dtype.dtype).reshape(shape, order="F" if fortran else "C")
        self.array = array.astype(array.dtype.newbyteorder("="))


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> _ArrayRecord:
    if cls is not _NdarrayMarker or shape != (0,) or typecode != b"b":
        raise pickle.UnpicklingError("_reconstruct is only used for plain ndarrays")
    return _ArrayRecord()


def _scalar(dtype: Any, raw: Any) -> Any:
    if not isinstance(dtype, _DtypeRecord) or not isinstance(raw, bytes):
        raise pickle.UnpicklingError("a numpy scalar that is not a plain number or string")
    if len(raw) != dtype.dtype.itemsize:
        raise pickle.UnpicklingError(f"a {dtype.dtype} scalar of {len(raw)} bytes")
    return np.frombuffer(raw, dtype.dtype)[0].item()


class _KeyedVectorsUnpickler(pickle.Unpickler):
    def __init__(self, file, path: str):
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if module == "gensim.models.keyedvectors" and name in _KEYED_VECTORS:
            return _KeyedVectorsRecord
        if (module, name) == ("gensim.models.keyedvectors", "Vocab"):
            return _VocabRecord
        if (module, name) == ("numpy", "ndarray"):
            return _NdarrayMarker
        if (module, name) == ("numpy", "dtype"):
            return _DtypeRecord
        if module in _NUMPY_CORE and name == "_reconstruct":
            return _reconstruct
        if module in _NUMPY_CORE and name == "scalar":
            return _scalar
        raise DataFormatError(
            f"refusing to load {module}.{name}: a gensim KeyedVectors file needs only "
            "gensim's KeyedVectors and Vocab classes and numpy arrays, dtypes and scalars",
            path=self.path)

    def persistent_load(self, pid: Any) -> Any:
        raise DataFormatError(f"unexpected persistent id {pid!r:.60}", path=self.path)


def read_keyed_vectors(path: str) -> tuple[list[str], np.ndarray]:
    """Reads a gensim 3 or 4 ``KeyedVectors.save`` file without gensim and without running code.

    Args:
        path: the pickle; vectors saved separately are read from ``<path>.vectors.npy``
            (``numpy.load`` with ``allow_pickle=False``, memory-mapped).

    Returns:
        ``(words, vectors)``: the word of each row and a float ``[len(words), dim]`` array.

    Raises:
        MissingDataError: ``path`` (or its ``.vectors.npy``) does not exist.
        DataFormatError: the file refers to anything but the names above, is truncated, or
            does not hold words and a matching 2-D float matrix; the message names the file.
    """
    if not os.path.isfile(path):
        raise MissingDataError("no such gensim KeyedVectors file", path=path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        root = _KeyedVectorsUnpickler(io.BytesIO(data), path).load()
    except DataFormatError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, MemoryError, RecursionError) as e:
        raise DataFormatError(f"not a readable gensim KeyedVectors file ({e})",
                              path=path) from None
    if not isinstance(root, _KeyedVectorsRecord):
        raise DataFormatError(f"holds a {type(root).__name__}, not gensim KeyedVectors",
                              path=path)
    return _words(root.state, path), _vectors(root.state, path)


def _words(state: dict, path: str) -> list[str]:
    words = state.get("index_to_key", state.get("index2word"))
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise DataFormatError("no list of words (index_to_key / index2word)", path=path)
    vocab = state.get("vocab")
    if isinstance(vocab, dict):  # gensim 3: each Vocab must point at its word's row
        for word, entry in vocab.items():
            row = entry.state.get("index") if isinstance(entry, _VocabRecord) else None
            if not (isinstance(row, int) and 0 <= row < len(words) and words[row] == word):
                raise DataFormatError(f"vocab entry {word!r:.40} does not match index2word",
                                      path=path, field="vocab")
    return list(words)


def _vectors(state: dict, path: str) -> np.ndarray:
    separate = state.get("__numpys", [])
    if isinstance(separate, list) and "vectors" in separate:
        npy = f"{path}.vectors.npy"
        if not os.path.isfile(npy):
            raise MissingDataError("the vectors saved beside the pickle are missing", path=npy)
        try:
            vectors = np.load(npy, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            raise DataFormatError(f"not a plain .npy array ({e})", path=npy) from None
    else:
        record = state.get("vectors")
        vectors = record.array if isinstance(record, _ArrayRecord) else None
    if vectors is None or vectors.ndim != 2 or vectors.dtype.kind != "f":
        raise DataFormatError("no 2-D float array of vectors", path=path, field="vectors")
    words = state.get("index_to_key", state.get("index2word"))
    if vectors.shape[0] != len(words):
        raise DataFormatError(f"{len(words)} words but vectors of shape {vectors.shape}",
                              path=path, field="vectors")
    return vectors
