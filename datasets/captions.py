"""Caption text for Show, Attend and Tell (Xu et al., ICML 2015) on Flickr8k.

Normalisation (:data:`CAPTION_TOKENIZER`, a :class:`~datasets.text.WordTokenizer`):

- lowercase;
- the possessive/contraction ``'s`` becomes its own word: Flickr8k mostly writes ``dog 's``
  already, and ``dog's`` gives the same two tokens ``dog``, ``'s``;
- hyphenated words stay one word (``t-shirt``, ``snow-covered``); a hyphen that is not between
  two letters or digits (``merry-go -round``) is punctuation;
- every token without a letter or digit (``.``, ``,``, ``"``, ``-``, ``&``) is removed.

So ``"A dog's t-shirt , red ."`` → ``a dog 's t-shirt red``. Each caption is then wrapped in
``<start>`` ... ``<end>``. The vocabulary keeps the ``max_words`` most frequent words of the
*train* captions (Xu et al. use a fixed vocabulary of 10,000; Flickr8k train has fewer distinct
words, so the default keeps them all) after ``<pad>`` = 0, ``<unk>`` = 1, ``<start>``, ``<end>``.

Example:

```python
train = datasets.load("flickr8k", "train", data_dir, require_images=False)
vocab = caption_vocabulary(all_captions(train), max_words=5000)
pairs = caption_pairs(datasets.load("flickr8k", "train", data_dir).dataset)
ds = encode_captions(pairs, vocab, max_length=40)
# {"image_id", "image_path", "caption_ids": int64 [<= 40] starting with <start>, ending with <end>}
```
"""

from __future__ import annotations

from typing import Iterable

import tensorflow as tf

from datasets.core import LoadedSplit
from datasets.text import OOV, PAD, Vocabulary, WordTokenizer, encode_text

START = "<start>"
END = "<end>"
RESERVED = (PAD, OOV, START, END)
CAPTION_TOKENIZER = WordTokenizer(lowercase=True, split_punctuation=True, drop_punctuation=True)


def all_captions(split: LoadedSplit) -> list[str]:
    """Every caption of a loaded Flickr8k split, image by image."""
    return [caption for captions in split.columns["captions"] for caption in captions]


def caption_vocabulary(captions: Iterable[str], *, max_words: int | None = None,
                       min_count: int = 1) -> Vocabulary:
    """The vocabulary of the ``max_words`` most frequent words of ``captions`` (train only).

    Ids: ``<pad>`` 0, ``<unk>`` 1, ``<start>`` 2, ``<end>`` 3, then words by decreasing count.
    """
    max_size = None if max_words is None else max_words + len(RESERVED)
    return Vocabulary.from_texts(captions, CAPTION_TOKENIZER, min_count=min_count,
                                 max_size=max_size, reserved=RESERVED)


def caption_pairs(ds: tf.data.Dataset) -> tf.data.Dataset:
    """One element per (image, caption): ``{"image_id", "image_path", "caption"}``.

    Args:
        ds: ``LoadedSplit.dataset`` of ``flickr8k`` (``captions``: ``[5]`` strings).
    """
    per_image = int(ds.element_spec["captions"].shape[0])
    cardinality = int(ds.cardinality())

    def explode(example):
        return tf.data.Dataset.from_tensor_slices({
            "image_id": tf.fill([per_image], example["image_id"]),
            "image_path": tf.fill([per_image], example["image_path"]),
            "caption": example["captions"]})

    ds = ds.flat_map(explode)
    if cardinality >= 0:
        ds = ds.apply(tf.data.experimental.assert_cardinality(cardinality * per_image))
    return ds


def encode_captions(ds: tf.data.Dataset, vocab: Vocabulary, *, max_length: int | None = None,
                    keep_text: bool = False) -> tf.data.Dataset:
    """Adds ``caption_ids``: ``<start>`` word ids ``<end>``, at most ``max_length`` ids in all.

    Args:
        ds: elements with a scalar string ``caption`` (see :func:`caption_pairs`).
        vocab: from :func:`caption_vocabulary`.
        max_length: the longest sequence, ``<start>`` and ``<end>`` included; longer captions
            keep their first words.
        keep_text: keep the ``caption`` string.
    """
    return encode_text(ds, CAPTION_TOKENIZER, vocab, fields=("caption",), max_length=max_length,
                       boundary_tokens=(START, END), keep_text=keep_text)
