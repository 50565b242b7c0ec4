"""The restricted gensim KeyedVectors reader: the wefe file as gensim reads it, gensim 4 files
(inline and beside the pickle), and refusal of pickles that would run code or smuggle objects."""

import os
import pickle

import numpy as np
import pytest
from gensim.models import KeyedVectors

from datasets import word_vectors
from datasets.errors import DataFormatError, MissingDataError
from datasets.gensim_keyedvectors import read_keyed_vectors


class _RunsCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _Evaluates:
    def __reduce__(self):
        return eval, ("__import__('os').getcwd()",)


class _ShortArray:
    """Pickles like a float32 2 × 2 array whose state carries 12 bytes instead of 16."""

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return (_reconstruct, (np.ndarray, (0,), b"b"),
                (1, (2, 2), np.dtype("f4"), False, b"\0" * 12))


def _keyed_vectors_pickle(vectors) -> bytes:
    """A gensim 4 KeyedVectors pickle whose ``vectors`` attribute is ``vectors``."""
    kv = KeyedVectors(2)
    kv.add_vectors(["a", "b"], np.ones((2, 2), np.float32))
    kv.vectors = vectors
    return pickle.dumps(kv, protocol=4)


def test_the_wefe_file_reads_as_gensim_loads_it():
    path = word_vectors.word2vec_googlenews_13k_path()
    words, vectors = read_keyed_vectors(path)  # succeeds only if the file names nothing else
    reference = KeyedVectors.load(path)  # so unpickling it with gensim is safe here
    assert words == reference.index_to_key and len(words) == 13013
    assert vectors.dtype == np.float32 and np.array_equal(vectors, reference.vectors)


def test_the_13k_subset_is_the_26k_subset_unnormalised():
    small = word_vectors.load_vectors("word2vec-googlenews-300d-13k")
    large = word_vectors.load_vectors("word2vec-googlenews-300d-26k")
    shared = [w for w in small.index if w in large.index]
    assert len(small) == 13013 and small.dim == 300 and len(shared) == 7906
    raw = np.stack([small.vector(w) for w in shared])
    assert np.linalg.norm(raw, axis=1).max() > 2  # raw, not unit length
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(unit, np.stack([large.vector(w) for w in shared]), atol=2e-6)


@pytest.mark.parametrize("sep_limit", [10 * 1024 ** 2, 0])
def test_gensim4_files_inline_and_beside(tmp_path, sep_limit):
    kv = KeyedVectors(3)
    words = ["the", "Café", "new_york", "x"]
    kv.add_vectors(words, np.arange(12, dtype=np.float32).reshape(4, 3) - 5.5)
    path = str(tmp_path / "g.kv")
    kv.save(path, sep_limit=sep_limit)
    assert os.path.exists(path + ".vectors.npy") == (sep_limit == 0)
    read_words, vectors = read_keyed_vectors(path)
    assert read_words == words
    np.testing.assert_array_equal(vectors, kv.vectors)
    assert word_vectors.load_vectors(path).vector("Café").tolist() == kv["Café"].tolist()


@pytest.mark.parametrize("payload, refused", [
    (_RunsCommand, r"refusing to load (posix|nt)\.system"),
    (_Evaluates, r"refusing to load builtins\.eval"),
])
def test_code_in_the_pickle_is_refused_and_never_run(tmp_path, payload, refused):
    marker = tmp_path / "ran"
    obj = payload(f"touch {marker}") if payload is _RunsCommand else payload()
    path = tmp_path / "evil.kv"
    path.write_bytes(pickle.dumps({"vectors": obj}, protocol=4))
    with pytest.raises(DataFormatError, match=rf"evil\.kv: {refused}"):
        read_keyed_vectors(str(path))
    assert not marker.exists()


@pytest.mark.parametrize("data, message", [
    (_keyed_vectors_pickle(np.array([[1, "a"], [2, "b"]], dtype=object)),
     "dtype 'O8' is not a plain numeric or string dtype"),
    (_keyed_vectors_pickle(_ShortArray()), r"float32 has 12 bytes"),
    # a record class called with arguments (REDUCE) instead of created empty
    (b"\x80\x04cgensim.models.keyedvectors\nKeyedVectors\n(S'x'\ntR.", "not a readable"),
    (pickle.dumps({"vectors": [1.0]}), "holds a dict, not gensim KeyedVectors"),
    (_keyed_vectors_pickle(np.ones((3, 2), np.float32)), r"2 words but vectors of shape"),
    (_keyed_vectors_pickle(np.ones(2, np.float32)), "no 2-D float array"),
])
def test_anything_but_words_and_arrays_is_refused(tmp_path, data, message):
    path = tmp_path / "bad.kv"
    path.write_bytes(data)
    with pytest.raises(DataFormatError, match=rf"bad\.kv.*{message}"):
        read_keyed_vectors(str(path))


def test_truncated_and_missing_files(tmp_path, monkeypatch):
    with open(word_vectors.word2vec_googlenews_13k_path(), "rb") as f:
        (tmp_path / "cut.kv").write_bytes(f.read(4096))
    with pytest.raises(DataFormatError, match=r"cut\.kv: not a readable gensim KeyedVectors"):
        read_keyed_vectors(str(tmp_path / "cut.kv"))
    with pytest.raises(MissingDataError, match="no such gensim KeyedVectors file"):
        read_keyed_vectors(str(tmp_path / "absent.kv"))
    monkeypatch.setenv("KERAS_PAPERS_WORD2VEC_13K", str(tmp_path / "absent.kv"))
    with pytest.raises(MissingDataError, match=r"run \./setup\.sh.*wefe==1\.0\.1"):
        word_vectors.load_vectors("word2vec-googlenews-300d-13k")
