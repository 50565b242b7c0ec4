"""Word-level tokenization (tensorflow-text), vocabularies, and ids inside ``tf.data``.

:class:`WordTokenizer` runs as TensorFlow ops (``tf_text.case_fold_utf8`` and
``tf_text.regex_split``), so the same code tokenizes inside a ``tf.data`` pipeline and, batched,
when a vocabulary is built in Python. Rules, in order:

1. ``lowercase=True``: Unicode case folding (``tf_text.case_fold_utf8``: lowercase plus NFKC,
   e.g. ``"Straße"`` → ``"strasse"``). GloVe 6B is lowercased.
2. ``split_punctuation=True``:

   - English clitics are split off as in the Penn Treebank (and GloVe's tokenizer):
     ``dog's`` → ``dog 's``, ``don't`` → ``do n't``, ``can't`` → ``ca n't``, ``we'll`` →
     ``we 'll`` (likewise ``'re 've 'd 'm``);
   - a word is a run of letters, marks and digits, which may contain single ``.``, ``,``, ``'`` or
     ``-`` *between* two such characters: ``t-shirt``, ``o'neill``, ``1,000``, ``3.5`` and
     ``u.s`` (then ``.``) stay whole;
   - every other non-space character is its own token (``"``, ``(``, ``!``, ``/``), except that
     runs of ``-`` and of ``.`` stay together (``--``, ``...``), and so do the PTB quotes
     ``````` and ``''`` (GLUE's SST-2 keeps them; GloVe has both).

   Already tokenized text (SST, SNLI dev/test, Flickr8k) comes out unchanged apart from case.
   ``split_punctuation=False`` splits on whitespace only.
3. ``drop_punctuation=True``: tokens without a letter or digit are removed (for captions).

Whitespace is any Unicode space separator (so the no-break space in SST's ``8 1/2`` separates).

:class:`Vocabulary` maps tokens to ids with PAD = 0 and OOV = 1, built from the training split
only, saved as one token per line (written atomically) and looked up with a
``tf.lookup.StaticHashTable``.

Example:

```python
tokenizer = WordTokenizer()
train = datasets.load("sst2", "train", data_dir)
vocab = Vocabulary.from_texts(train.columns["text"], tokenizer, min_count=1)
vocab.save(os.path.join(model_dir, "vocab.txt"))
ds = encode_text(train.dataset, tokenizer, vocab, fields=("text",))
# elements: {"text_ids": int64 [None], "label": int64 []}
```
"""

from __future__ import annotations

import collections
from typing import Iterable, Sequence

import tensorflow as tf
import tensorflow_text as tf_text

from datasets import files

_W = r"\pL\pM\pN"  # letters, combining marks, digits
_SPACE = r"[\s\pZ]+"
_CLITIC = rf"([{_W}])((?i:n't|'s|'re|'ve|'d|'ll|'m))([\s\pZ]|$|[^{_W}])"
_TOKEN = (rf"[{_W}]+(?:[.,'\-][{_W}]+)*"    # words, with inner . , ' -
          r"|'(?i:s|re|ve|d|ll|m)\b"         # split-off clitics
          r"|``|''|-+|\.+"                   # PTB quotes, dashes and ellipses
          rf"|[^{_W}\s\pZ]")                 # any other symbol, alone
_HAS_WORD_CHAR = r".*[\pL\pN].*"

PAD = "<pad>"
OOV = "<unk>"


class WordTokenizer:
    """Splits strings into words; see the module docstring for the exact rules.

    Args:
        lowercase: case-fold first.
        split_punctuation: split clitics and punctuation off words; ``False``: whitespace only.
        drop_punctuation: remove tokens that contain no letter or digit.

    Example:

    ```python
    WordTokenizer()(tf.constant(["The dog's t-shirt, isn't it?"]))
    # <tf.RaggedTensor [[b'the', b'dog', b"'s", b't-shirt', b',', b'is', b"n't", b'it', b'?']]>
    ```
    """

    def __init__(self, lowercase: bool = True, split_punctuation: bool = True,
                 drop_punctuation: bool = False):
        self.lowercase = lowercase
        self.split_punctuation = split_punctuation
        self.drop_punctuation = drop_punctuation

    def get_config(self) -> dict:
        return {"lowercase": self.lowercase, "split_punctuation": self.split_punctuation,
                "drop_punctuation": self.drop_punctuation}

    def __call__(self, texts) -> tf.RaggedTensor | tf.Tensor:
        """Tokenizes a string tensor of any rank; adds one ragged dimension.

        A scalar gives a dense 1-D string tensor; shape ``[n]`` gives a ``RaggedTensor``
        ``[n, None]``; shape ``[n, m]`` gives ``[n, m, None]``.
        """
        texts = tf.convert_to_tensor(texts, tf.string)
        if texts.shape.rank == 0:
            return self(texts[tf.newaxis])[0]
        if self.lowercase:
            texts = tf_text.case_fold_utf8(texts)
        if self.split_punctuation:
            texts = tf.strings.regex_replace(texts, _CLITIC, r"\1 \2\3")
            tokens = tf_text.regex_split(texts, rf"{_SPACE}|{_TOKEN}", _TOKEN)
        else:
            tokens = tf_text.regex_split(texts, _SPACE)
        if self.drop_punctuation:
            keep = tokens.with_flat_values(
                tf.strings.regex_full_match(tokens.flat_values, _HAS_WORD_CHAR))
            tokens = tf.ragged.boolean_mask(tokens, keep)
        return tokens

    tokenize = __call__

    def tokenize_py(self, texts: Iterable[str], batch_size: int = 4096) -> list[list[str]]:
        """Tokenizes Python strings (in batches, with the same ops) into lists of ``str``."""
        texts = list(texts)
        out = []
        for start in range(0, len(texts), batch_size):
            batch = self(tf.constant(texts[start:start + batch_size], tf.string))
            out.extend([t.decode("utf-8") for t in row] for row in batch.to_list())
        return out


class Vocabulary:
    """Token ↔ id mapping with ``<pad>`` = 0 and ``<unk>`` (out of vocabulary) = 1.

    Args:
        tokens: the tokens in id order; ``tokens[0]`` is the padding token and ``tokens[1]``
            the OOV token. Further reserved tokens (e.g. ``<start>``) follow them.

    Example:

    ```python
    vocab = Vocabulary.build([["a", "b", "a"], ["c"]], min_count=1)
    vocab.tokens                  # ["<pad>", "<unk>", "a", "b", "c"]
    vocab.lookup(tf.constant(["a", "zzz"]))   # [2, 1]
    vocab.save("/tmp/model/vocab.txt"); Vocabulary.load("/tmp/model/vocab.txt")
    ```
    """

    pad_id = 0
    oov_id = 1

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if len(tokens) < 2:
            raise ValueError("a vocabulary needs at least the padding and OOV tokens")
        for token in tokens:
            if not isinstance(token, str) or not token or "\n" in token or "\r" in token:
                raise ValueError(f"invalid vocabulary token {token!r}: tokens are non-empty "
                                 "strings without line breaks")
        self._ids = {token: i for i, token in enumerate(tokens)}
        if len(self._ids) != len(tokens):
            dupes = [t for t, n in collections.Counter(tokens).items() if n > 1]
            raise ValueError(f"duplicate vocabulary tokens: {dupes[:10]}")
        self.tokens = tokens
        self._table = None

    @classmethod
    def build(cls, token_lists: Iterable[Iterable[str]], *, min_count: int = 1,
              max_size: int | None = None, reserved: Sequence[str] = (PAD, OOV)) -> "Vocabulary":
        """Builds a vocabulary from tokenized (training) texts.

        Args:
            token_lists: one list of tokens per text.
            min_count: keep tokens seen at least this often.
            max_size: the largest vocabulary size, reserved tokens included; the most frequent
                tokens are kept.
            reserved: the first ids: padding, OOV, then any others (e.g. ``<start>``,
                ``<end>``).

        Returns:
            Tokens ordered by decreasing count, ties broken alphabetically, after ``reserved``.
        """
        counts = collections.Counter()
        for tokens in token_lists:
            counts.update(tokens)
        for token in reserved:
            counts.pop(token, None)
        ordered = sorted((t for t, c in counts.items() if c >= min_count),
                         key=lambda t: (-counts[t], t))
        if max_size is not None:
            if max_size < len(reserved):
                raise ValueError(f"max_size={max_size} is smaller than the {len(reserved)} "
                                 "reserved tokens")
            ordered = ordered[:max_size - len(reserved)]
        return cls(list(reserved) + ordered)

    @classmethod
    def from_texts(cls, texts: Iterable[str], tokenizer: WordTokenizer,
                   **kwargs) -> "Vocabulary":
        """:meth:`build` on ``tokenizer.tokenize_py(texts)``; kwargs go to :meth:`build`."""
        return cls.build(tokenizer.tokenize_py(texts), **kwargs)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._ids

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def token_id(self, token: str) -> int:
        """The id of ``token``, or :attr:`oov_id`."""
        return self._ids.get(token, self.oov_id)

    def save(self, path: str) -> None:
        """Writes one token per line (UTF-8), atomically: a temporary file is renamed over it."""
        files.atomic_write_text(path, "".join(token + "\n" for token in self.tokens))

    @classmethod
    def load(cls, path: str) -> "Vocabulary":
        """Reads a file written by :meth:`save`."""
        lines = files.read_text(path).split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return cls(lines)

    @property
    def table(self) -> tf.lookup.StaticHashTable:
        """A ``tf.lookup.StaticHashTable`` token → id (default: OOV), created once."""
        if self._table is None:
            initializer = tf.lookup.KeyValueTensorInitializer(
                tf.constant(self.tokens, tf.string),
                tf.range(len(self.tokens), dtype=tf.int64))
            self._table = tf.lookup.StaticHashTable(initializer, default_value=self.oov_id)
        return self._table

    def lookup(self, tokens):
        """Ids (int64) of a string ``Tensor`` or ``RaggedTensor`` of tokens."""
        if isinstance(tokens, tf.RaggedTensor):
            return tokens.with_flat_values(self.table.lookup(tokens.flat_values))
        return self.table.lookup(tf.convert_to_tensor(tokens, tf.string))


def encode_text(ds: tf.data.Dataset, tokenizer: WordTokenizer, vocab: Vocabulary, *,
                fields: Sequence[str] = ("text",), max_length: int | None = None,
                boundary_tokens: tuple[str, str] | None = None, keep_text: bool = False,
                batch_size: int = 1024) -> tf.data.Dataset:
    """Adds ``<field>_ids`` (int64 ``[length]``) for each string field of a dataset of dicts.

    Tokenization and lookup run on batches of ``batch_size`` for speed; the result has one
    element per input element, in order, and keeps a known cardinality.

    Args:
        ds: elements are dicts with scalar string ``fields``.
        tokenizer: the tokenizer the vocabulary was built with.
        vocab: the vocabulary.
        fields: the string fields to encode.
        max_length: keep at most this many ids (``None``: all), boundary tokens included;
            the first words are kept.
        boundary_tokens: ``(start, end)`` tokens of ``vocab`` put around every sequence,
            e.g. ``("<start>", "<end>")`` for captions.
        keep_text: keep the string fields; by default they are removed.
        batch_size: the internal batch size.

    Returns:
        A dataset of dicts: the other fields unchanged plus ``<field>_ids``.

    Example:

    ```python
    ds = encode_text(snli.dataset, tokenizer, vocab, fields=("text_a", "text_b"))
    # {"text_a_ids": int64 [None], "text_b_ids": int64 [None], "label": int64 []}
    ```
    """
    cardinality = int(ds.cardinality())
    table = vocab.table
    if boundary_tokens is not None:
        for token in boundary_tokens:
            if token not in vocab:
                raise ValueError(f"boundary token {token!r} is not in the vocabulary")
        start_id, end_id = (vocab.token_id(t) for t in boundary_tokens)
    words = max_length - 2 if max_length is not None and boundary_tokens else max_length
    if words is not None and words < 1:
        raise ValueError(f"max_length={max_length} leaves no room for words")

    def encode_batch(batch):
        out = {k: v for k, v in batch.items() if keep_text or k not in fields}
        for name in fields:
            tokens = tokenizer(batch[name])
            ids = tokens.with_flat_values(table.lookup(tokens.flat_values))
            if words is not None:
                ids = ids[:, :words]
            if boundary_tokens is not None:
                rows = ids.nrows()
                ids = tf.concat([tf.fill([rows, 1], tf.constant(start_id, tf.int64)), ids,
                                 tf.fill([rows, 1], tf.constant(end_id, tf.int64))], axis=1)
            out[f"{name}_ids"] = ids.to_tensor(default_value=vocab.pad_id)
            out[f"{name}_length"] = ids.row_lengths()
        return out

    def trim(example):
        for name in fields:
            example[f"{name}_ids"] = example[f"{name}_ids"][:example.pop(f"{name}_length")]
        return example

    ds = (ds.batch(batch_size).map(encode_batch, num_parallel_calls=tf.data.AUTOTUNE)
          .unbatch().map(trim))
    if cardinality >= 0:
        ds = ds.apply(tf.data.experimental.assert_cardinality(cardinality))
    return ds
