"""BERT input features inside ``tf.data``: WordPiece, ``[CLS] a [SEP] b [SEP]``, truncation.

Devlin et al. (2019, §3 and Figure 2) feed BERT one or two segments as
``[CLS] a_1 … a_n [SEP] b_1 … b_m [SEP]``. Each token's segment id is 0 for ``[CLS]``, the tokens
of ``a`` and the first ``[SEP]``, and 1 for the tokens of ``b`` and the final ``[SEP]``. A pair
longer than ``max_seq_length`` is truncated "longest first", as google-research/bert's
``_truncate_seq_pair``: repeatedly drop the last token of the longer segment (of ``b`` on a tie).
A single text keeps its first ``max_seq_length - 2`` pieces, or with ``truncation="head_tail"``
its first ``head_tokens`` and its last ``max_seq_length - 2 - head_tokens`` pieces (Sun et al.
2019, "How to Fine-Tune BERT for Text Classification?", §5.3.1: 128 + 382 of 510 for IMDB).

Tokenisation matches the Hugging Face ``BertTokenizer`` a checkpoint was trained with, in
TensorFlow ops so it runs inside the input pipeline:

1. clean: drop NUL, U+FFFD and every other control/format character (Unicode category C) and
   turn every whitespace character into a space;
2. if ``lowercase``: lower-case; if ``strip_accents``: NFD-decompose and drop the combining marks
   (category Mn), so "Café" becomes "cafe";
3. split on whitespace, punctuation (ASCII symbols and Unicode category P) and around every CJK
   ideograph, then greedy longest-match-first WordPiece with ``##`` continuations (a word longer
   than 100 bytes or with no match is ``[UNK]``): ``tf_text.FastBertTokenizer``.

tensorflow-text's own lower-casing applies NFKC case folding, which rewrites compatibility
characters ("´" → " ́", "…" → "...") that the checkpoint's tokenizer keeps, so step 2 is done
here with ``tf.strings.lower`` and NFD instead. Known difference from Python's ``str.lower``:
the Greek capital sigma always becomes "σ" (Python writes "ς" at the end of a word).

Features use the names of ``keras_hub.models.BertBackbone``'s inputs: ``token_ids``,
``segment_ids`` and ``padding_mask`` (1 on real tokens), all int32.

Example:

```python
encoder = WordPieceEncoder("vocab.txt", lowercase=True, max_seq_length=128)
features = encoder(tf.constant(["Café déjà vu!"]))          # padded to 128
features = encoder(tf.constant(["a premise"]), tf.constant(["a hypothesis"]))
ds = ds.map(lambda ex: (encoder(ex["text_a"], ex["text_b"]), ex["label"]))  # batched strings
```
"""

from __future__ import annotations

import math
from typing import Sequence

import tensorflow as tf
import tensorflow_text as tf_text

TRUNCATIONS = ("longest_first", "head_tail")
FEATURES = ("token_ids", "segment_ids", "padding_mask")


def read_vocabulary(path: str) -> list[str]:
    """The WordPiece vocabulary, one token per line; line ``i`` is token id ``i``."""
    with tf.io.gfile.GFile(path, "r") as f:
        tokens = [line.rstrip("\r\n") for line in f]
    while tokens and not tokens[-1]:
        tokens.pop()
    if not tokens:
        raise ValueError(f"{path}: the vocabulary is empty")
    return tokens


def normalize_text(text: tf.Tensor, *, lowercase: bool = True,
                   strip_accents: bool | None = None) -> tf.Tensor:
    """BERT's text cleaning, lower-casing and accent stripping as string ops (steps 1-2 above).

    Args:
        text: a string tensor of any shape.
        lowercase: lower-case (uncased checkpoints).
        strip_accents: NFD-decompose and drop combining marks; ``None`` follows ``lowercase``
            (the Hugging Face default).
    """
    if strip_accents is None:
        strip_accents = lowercase
    text = tf.strings.regex_replace(text, "[\\x00\\x{FFFD}]", "")
    text = tf.strings.regex_replace(text, "[\\t\\n\\r\\p{Zs}]", " ")
    text = tf.strings.regex_replace(text, "\\p{C}", "")
    if lowercase:
        text = tf.strings.lower(text, encoding="utf-8")
    if strip_accents:
        text = tf_text.normalize_utf8(text, "NFD")
        text = tf.strings.regex_replace(text, "\\p{Mn}", "")
    return text


def truncated_pair_lengths(len_a: tf.Tensor, len_b: tf.Tensor, budget: int
                           ) -> tuple[tf.Tensor, tf.Tensor]:
    """Lengths after google-research/bert's ``_truncate_seq_pair`` with ``budget`` tokens.

    Dropping the last token of the longer segment (``b`` on a tie) until the pair fits ends
    with ``a`` keeping ``min(len_a, max(ceil(budget / 2), budget - len_b))`` tokens and ``b``
    the rest of the budget, capped at ``len_b``.
    """
    len_a = tf.convert_to_tensor(len_a)
    len_b = tf.cast(len_b, len_a.dtype)
    budget_t = tf.cast(budget, len_a.dtype)
    keep_a = tf.minimum(len_a, tf.maximum(tf.cast(math.ceil(budget / 2), len_a.dtype),
                                          budget_t - len_b))
    keep_b = tf.minimum(len_b, budget_t - keep_a)
    fits = len_a + len_b <= budget_t
    return tf.where(fits, len_a, keep_a), tf.where(fits, len_b, keep_b)


class WordPieceEncoder:
    """Turns strings (or string pairs) into BERT features with TensorFlow ops.

    Args:
        vocab_path: the checkpoint's ``vocab.txt``.
        lowercase: lower-case before WordPiece (uncased checkpoints).
        strip_accents: strip accents; ``None`` follows ``lowercase``.
        max_seq_length: the length of a packed sequence, ``[CLS]`` and ``[SEP]`` included.
        truncation: ``"longest_first"`` or ``"head_tail"`` (single texts only; Sun et al. 2019).
        head_tokens: with ``"head_tail"``, the pieces kept from the start; the rest of the
            ``max_seq_length - 2`` budget comes from the end.

    Call it on a batch (``[batch]`` strings, or two such tensors for pairs) to get padded int32
    features ``[batch, length]``; :meth:`encode` returns the unpadded ragged features that
    :func:`train_batches` and :func:`eval_batches` pad per batch or to a fixed length.
    """

    def __init__(self, vocab_path: str, *, lowercase: bool = True,
                 strip_accents: bool | None = None, max_seq_length: int = 128,
                 truncation: str = "longest_first", head_tokens: int = 128):
        if truncation not in TRUNCATIONS:
            raise ValueError(f"unknown truncation {truncation!r}; valid: {', '.join(TRUNCATIONS)}")
        if max_seq_length < 3:
            raise ValueError(f"max_seq_length must be at least 3, got {max_seq_length}")
        if truncation == "head_tail" and not 0 <= head_tokens <= max_seq_length - 2:
            raise ValueError(f"head_tokens={head_tokens} must lie in [0, max_seq_length - 2 = "
                             f"{max_seq_length - 2}]")
        self.vocab_path = vocab_path
        self.vocabulary = read_vocabulary(vocab_path)
        self.lowercase = lowercase
        self.strip_accents = lowercase if strip_accents is None else strip_accents
        self.max_seq_length = max_seq_length
        self.truncation = truncation
        self.head_tokens = head_tokens
        ids = {token: i for i, token in enumerate(self.vocabulary)}
        for token in ("[CLS]", "[SEP]", "[PAD]", "[UNK]"):
            if token not in ids:
                raise ValueError(f"{vocab_path}: {token} is not in the vocabulary")
        self.cls_id, self.sep_id, self.pad_id = ids["[CLS]"], ids["[SEP]"], ids["[PAD]"]
        if self.pad_id != 0:
            raise ValueError(f"{vocab_path}: [PAD] must be token 0, it is {self.pad_id}")
        self._tokenizer = tf_text.FastBertTokenizer(
            self.vocabulary, token_out_type=tf.int32, unknown_token="[UNK]",
            lower_case_nfd_strip_accents=False, support_detokenization=False)

    # --------------------------------------------------------------------------- pieces
    def tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """WordPiece ids of a ``[batch]`` string tensor: int32 ``[batch, (pieces)]``."""
        texts = tf.convert_to_tensor(texts, tf.string)
        normalized = normalize_text(texts, lowercase=self.lowercase,
                                    strip_accents=self.strip_accents)
        return self._tokenizer.tokenize(normalized)

    def _truncate_single(self, pieces: tf.RaggedTensor) -> tf.RaggedTensor:
        budget = self.max_seq_length - 2
        if self.truncation == "longest_first":
            return pieces[:, :budget]
        lengths = pieces.row_lengths()
        positions = tf.ragged.range(lengths)
        tail = tf.cast(budget - self.head_tokens, lengths.dtype)
        keep = (positions < self.head_tokens) | (positions >= tf.expand_dims(lengths - tail, 1))
        keep |= tf.expand_dims(lengths <= budget, 1)
        return tf.ragged.boolean_mask(pieces, keep)

    def _truncate_pair(self, a: tf.RaggedTensor, b: tf.RaggedTensor
                       ) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        keep_a, keep_b = truncated_pair_lengths(a.row_lengths(), b.row_lengths(),
                                                self.max_seq_length - 3)
        a = tf.ragged.boolean_mask(a, tf.ragged.range(a.row_lengths()) < keep_a[:, None])
        b = tf.ragged.boolean_mask(b, tf.ragged.range(b.row_lengths()) < keep_b[:, None])
        return a, b

    # --------------------------------------------------------------------------- features
    def encode(self, text_a: tf.Tensor, text_b: tf.Tensor | None = None
               ) -> dict[str, tf.RaggedTensor]:
        """Truncated, packed, unpadded features of a batch: int32 ``[batch, (length)]``.

        ``token_ids`` is ``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]``; ``segment_ids`` is 0 up
        to and including the first ``[SEP]`` and 1 after it; ``padding_mask`` is all ones.
        """
        a = self.tokenize(text_a)
        batch = a.nrows()
        cls = tf.fill([batch, 1], self.cls_id)
        sep = tf.fill([batch, 1], self.sep_id)
        if text_b is None:
            a = self._truncate_single(a)
            token_ids = tf.concat([cls, a, sep], axis=1)
            segment_ids = tf.zeros_like(token_ids)
        else:
            if self.truncation == "head_tail":
                raise ValueError("truncation='head_tail' is for single texts, not pairs")
            b = self.tokenize(text_b)
            a, b = self._truncate_pair(a, b)
            first = tf.concat([cls, a, sep], axis=1)
            second = tf.concat([b, sep], axis=1)
            token_ids = tf.concat([first, second], axis=1)
            segment_ids = tf.concat([tf.zeros_like(first), tf.ones_like(second)], axis=1)
        return {"token_ids": token_ids, "segment_ids": segment_ids,
                "padding_mask": tf.ones_like(token_ids)}

    def __call__(self, text_a: tf.Tensor, text_b: tf.Tensor | None = None, *,
                 pad_to_max: bool = True) -> dict[str, tf.Tensor]:
        """Padded features of a ``[batch]`` of texts (or pairs): int32 ``[batch, length]``.

        ``length`` is ``max_seq_length`` (static) when ``pad_to_max``, else the batch's longest.
        """
        ragged = self.encode(text_a, text_b)
        shape = [None, self.max_seq_length if pad_to_max else None]
        return {k: v.to_tensor(0, shape=shape) for k, v in ragged.items()}



def encode_examples(dataset: tf.data.Dataset, encoder: WordPieceEncoder,
                    text_keys: Sequence[str], *, chunk_size: int = 256) -> tf.data.Dataset:
    """Replaces the text columns of a dataset of dicts by unpadded BERT features.

    Tokenisation runs on chunks of ``chunk_size`` examples (vectorised) that are split again,
    so the order of the examples is kept. ``text_keys`` names one text column or two (a pair);
    the other columns (e.g. ``label``) pass through.

    Returns:
        A dataset of dicts with int32 ``token_ids``, ``segment_ids``, ``padding_mask`` of shape
        ``[length]`` and the other columns, with the input's cardinality.
    """
    from datasets import batching

    if len(text_keys) not in (1, 2):
        raise ValueError(f"text_keys must name one or two columns, got {list(text_keys)}")
    missing = [k for k in text_keys if k not in dataset.element_spec]
    if missing:
        raise ValueError(f"text columns {missing} not in {sorted(dataset.element_spec)}")
    cardinality = int(dataset.cardinality())

    def encode_chunk(examples):
        features = encoder.encode(*[examples[k] for k in text_keys])
        rest = {k: v for k, v in examples.items() if k not in text_keys}
        return {**features, **rest}

    chunks = dataset.batch(chunk_size).map(encode_chunk, num_parallel_calls=tf.data.AUTOTUNE,
                                           deterministic=True)
    encoded = batching.unbatch_rows(chunks)
    if cardinality >= 0:
        encoded = encoded.apply(tf.data.experimental.assert_cardinality(cardinality))
    return encoded


def _split(label_key: str):
    def split(batch):
        return {k: batch[k] for k in FEATURES}, batch[label_key]
    return split


def train_batches(dataset: tf.data.Dataset, encoder: WordPieceEncoder, text_keys: Sequence[str],
                  batch_size: int, *, seed: int, epoch: int = 0,
                  input_context: tf.distribute.InputContext | None = None,
                  static_shapes: bool = False, group_by_length: bool = True,
                  label_key: str = "label") -> tf.data.Dataset:
    """One epoch of shuffled, tokenised training batches ``(features, labels, weights)``.

    :func:`datasets.batching.train_batches` after tokenisation: the order of epoch *e* is a
    function of ``(seed, epoch)``; with ``group_by_length`` examples of similar length share a
    batch (each padded to its longest), with ``static_shapes`` every batch is
    ``[batch_size, max_seq_length]`` (TPU, XLA). An epoch has ``examples // global batch``
    steps.
    """
    from datasets import batching

    return batching.train_batches(
        encode_examples(dataset, encoder, text_keys), batch_size, seed=seed, epoch=epoch,
        split_fn=_split(label_key), group_by_length=group_by_length,
        length_fn=lambda example: tf.shape(example["token_ids"])[0],
        static_shapes=static_shapes, static_lengths={k: encoder.max_seq_length for k in FEATURES},
        input_context=input_context)


def eval_batches(dataset: tf.data.Dataset, encoder: WordPieceEncoder, text_keys: Sequence[str],
                 batch_size: int, *, num_examples: int,
                 input_context: tf.distribute.InputContext | None = None,
                 static_shapes: bool = False, label_key: str = "label") -> tf.data.Dataset:
    """Tokenised evaluation batches ``(features, labels, weights)``, in order.

    :func:`datasets.batching.eval_batches` after tokenisation: every example exactly once,
    padded with weight-0 examples to full batches on every replica; each batch is padded to its
    longest sequence, or to ``max_seq_length`` with ``static_shapes``.
    """
    from datasets import batching

    return batching.eval_batches(
        encode_examples(dataset, encoder, text_keys), batch_size, num_examples=num_examples,
        split_fn=_split(label_key), static_shapes=static_shapes,
        static_lengths={k: encoder.max_seq_length for k in FEATURES},
        input_context=input_context)
