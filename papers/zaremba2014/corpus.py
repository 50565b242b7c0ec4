"""IMDB as a word-level language-modelling corpus: reviews, vocabulary, streams, plain text.

Which reviews (``datasets.imdb``, the ``<br />`` line breaks replaced by spaces):

- **train**: IMDB's 25,000 training reviews in one fixed random order (a permutation seeded by
  ``subset_seed``), the first ``train_examples`` of them (0: all). Smaller subsets lie inside
  larger ones.
- **dev** and **test**: IMDB's 25,000 test reviews in another fixed order (seeded by
  ``subset_seed + 1``): dev is its first ``eval_examples`` reviews, test the next
  ``eval_examples``. IMDB's train and test halves are reviews of disjoint sets of movies (Maas
  et al. 2011), so no held-out review is about a movie seen in training.

Tokens: :class:`datasets.text.WordTokenizer` (lowercased, punctuation and clitics split off),
every review followed by ``<eos>``, as Zaremba et al.'s and PyTorch's loaders end every line
of the Penn Treebank with ``<eos>``. The corpus of a split is its reviews in the order above.

Vocabulary (:func:`build_vocabulary`): ``<pad>``, ``<unk>``, ``<eos>`` and the
``vocab_size - 3`` most frequent tokens of the training reviews (ties alphabetical); every other
token is ``<unk>``. ``<pad>`` is never in a corpus (the suite's vocabularies reserve id 0 for
it); with ``vocab_size=10000`` the model's softmax has 10,000 entries as on the Penn Treebank.

Streams (:func:`batchify`): a corpus of ``N`` tokens is cut into ``n`` contiguous streams of
``N // n`` tokens each (the last ``N mod n`` tokens are dropped), as ``batchify`` in PyTorch's
word-language-model example and ``replicate`` in Zaremba et al.'s ``data.lua`` do.

Plain text (:func:`write_text_corpus`): ``train.txt``, ``valid.txt`` and ``test.txt``, one
review a line, tokens separated by spaces, out-of-vocabulary tokens written as ``<unk>``: the
format of PyTorch's example (it appends ``<eos>`` to every line), so it reads exactly the
suite's token sequence. The suite's tokenizer splits on ASCII and Unicode ``Z`` whitespace only;
Python's ``str.split``, which the example uses, also splits on a few control characters (IMDB's
reviews hold U+0085, Windows-1252's ellipsis, as a token of its own): :func:`plain_token` writes
each such character as ``<U+0085>``, so every vocabulary token reads back as one token.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from datasets import text
from training import io

EOS = "<eos>"
RESERVED = (text.PAD, text.OOV, EOS)
#: The file names of PyTorch's word-language-model example, by split.
TEXT_FILES = {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"}


def review_rows(split: str, available: int, *, train_examples: int, eval_examples: int,
                subset_seed: int) -> np.ndarray:
    """The rows (indices into IMDB's train or test half) of ``split``'s reviews, in corpus
    order (see the module docstring).

    Raises:
        ValueError: the split is unknown, or dev and test together need more test reviews
            than there are.
    """
    if split == "train":
        order = np.random.default_rng(subset_seed).permutation(available)
        return order[:train_examples] if 0 < train_examples < available else order
    if split not in ("dev", "test"):
        raise ValueError(f"unknown split {split!r}; valid: train, dev, test")
    if not 0 < 2 * eval_examples <= available:
        raise ValueError(f"eval_examples={eval_examples}: dev and test take that many of the "
                         f"{available} IMDB test reviews each")
    order = np.random.default_rng(subset_seed + 1).permutation(available)
    start = 0 if split == "dev" else eval_examples
    return order[start:start + eval_examples]


def build_vocabulary(token_lists: Sequence[Sequence[str]], size: int) -> text.Vocabulary:
    """``<pad>``, ``<unk>``, ``<eos>`` and the ``size - 3`` most frequent tokens."""
    return text.Vocabulary.build(token_lists, max_size=size, reserved=RESERVED)


def encode(token_lists: Sequence[Sequence[str]], vocab: text.Vocabulary) -> np.ndarray:
    """The ids of the reviews' tokens, each review followed by ``<eos>``: int32 ``[N]``."""
    eos = vocab.token_id(EOS)
    ids = []
    for tokens in token_lists:
        ids.extend(vocab.token_id(t) for t in tokens)
        ids.append(eos)
    return np.asarray(ids, np.int32)


def batchify(ids: np.ndarray, streams: int) -> np.ndarray:
    """``[streams, len(ids) // streams]``: row ``i`` is the ``i``-th contiguous piece.

    Raises:
        ValueError: fewer than two tokens per stream.
    """
    if streams < 1:
        raise ValueError(f"the number of streams must be at least 1, got {streams}")
    length = len(ids) // streams
    if length < 2:
        raise ValueError(f"a corpus of {len(ids)} tokens cannot be cut into {streams} streams "
                         "of at least 2 tokens: use fewer streams (a smaller batch size) or "
                         "more reviews")
    return np.asarray(ids[:streams * length]).reshape(streams, length)


def reviews_of(ids: np.ndarray, vocab: text.Vocabulary) -> list[list[str]]:
    """The corpus's reviews as token lists (``<eos>`` removed); the inverse of :func:`encode`
    up to out-of-vocabulary tokens, which come back as ``<unk>``."""
    eos = vocab.token_id(EOS)
    ends = np.flatnonzero(np.asarray(ids) == eos)
    starts = np.concatenate([[0], ends[:-1] + 1])
    tokens = vocab.tokens
    return [[tokens[i] for i in ids[s:e]] for s, e in zip(starts, ends)]


def plain_token(token: str) -> str:
    """``token`` as the text files write it: characters ``str.split`` splits on as ``<U+XXXX>``."""
    return "".join(f"<U+{ord(c):04X}>" if c.isspace() else c for c in token)


def write_text_corpus(directory: str, corpora: dict[str, np.ndarray],
                      vocab: text.Vocabulary) -> dict[str, str]:
    """Writes ``train.txt``, ``valid.txt``, ``test.txt`` (see the module docstring) atomically.

    Args:
        directory: the folder (created).
        corpora: split → the ids of its corpus (:func:`encode`).
        vocab: the vocabulary of the ids.

    Returns:
        split → the path written.

    Raises:
        ValueError: two tokens would read back as one (:func:`plain_token`), or a corpus does
            not end with ``<eos>``.
    """
    plain = [plain_token(token) for token in vocab.tokens]
    if len(set(plain)) != len(plain):
        raise ValueError("two vocabulary tokens are written alike: "
                         f"{sorted(t for t in plain if plain.count(t) > 1)[:4]}")
    eos = vocab.token_id(EOS)
    paths = {}
    for split, ids in corpora.items():
        if len(ids) == 0 or ids[-1] != eos:
            raise ValueError(f"the {split} corpus must end with {EOS}")
        lines = [" ".join(map(plain_token, review)) + "\n" for review in reviews_of(ids, vocab)]
        path = os.path.join(directory, TEXT_FILES[split])
        io.atomic_write_text(path, "".join(lines))
        paths[split] = path
    return paths
