"""What an attention model attends to: statistics of its weights over a whole split.

Every real attention row (the one row of ``attention``; one per real hypothesis word of
``word_by_word``, and the delimiter's with ``attend_delimiter``) is a distribution ``α`` over
the premise's ``n`` real tokens. Averaged over all rows of a split, each beside what uniform
weights (``α_i = 1/n``) would give:

- ``entropy``: ``-Σ α_i log α_i`` in nats, against ``log n``;
- ``first``: the weight on premise position 0, against ``1/n``;
- ``shared``: the weight on premise positions holding a content word that occurs in the
  hypothesis, against the fraction of such positions; over the rows of pairs that have one;
- ``shared_after_first``: the same among positions ``1 … n-1`` with the weights renormalised
  over them (``Σ_{i≥1, shared} α_i / Σ_{i≥1} α_i``), so that a peak on position 0 does not hide
  where the rest of the weight goes; over the rows of pairs with a shared word after position 0;
- ``aligned`` (word by word only): the weight that the row of hypothesis word ``t`` puts on
  the premise positions holding that same word, against their fraction; over the rows whose
  word is a content word of the premise (the delimiter's row never is).

Which ids are content words is the task's choice (``content``, a boolean table over the
vocabulary, false at padding); on SNLI, :func:`content_words` keeps alphabetic tokens outside
:data:`FUNCTION_WORDS`.

:func:`per_example` runs inside the evaluation step and returns per-example sums, so a
split's attention maps are never gathered whole; :func:`summarise` turns the gathered sums into
means over rows. Both directions' statistics are of ``outputs["attention"]``, the premise
attended from the hypothesis (the two-way rows' reverse direction is not summarised).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

#: Function words of SNLI's sentences (lower case): never "content words" of the statistics.
FUNCTION_WORDS = frozenset(
    "a an the is are was were be been being am of in on at to for from by with without and or "
    "but as into onto over under near next up down out off while some two three there here "
    "this that these those it its he she they him her his their them we you i my our your "
    "has have had do does did".split())

#: statistic → the per-example row count it is averaged over.
STATISTICS = (("entropy", "rows"), ("first", "rows"), ("shared", "shared_rows"),
              ("shared_after_first", "shared_after_first_rows"),
              ("aligned", "aligned_rows"))


def content_words(tokens: Sequence[str]) -> np.ndarray:
    """``[len(tokens)]`` bool: alphabetic and not in :data:`FUNCTION_WORDS` (so never a
    reserved token such as ``<pad>``)."""
    return np.array([t.isalpha() and t.lower() not in FUNCTION_WORDS for t in tokens], bool)


def per_example(attention, premise, hypothesis, content, *, delimiter_row: bool = False
                ) -> dict[str, tf.Tensor]:
    """Per-example sums over the attention rows (module docstring), float32 ``[batch]`` each.

    Args:
        attention: ``[batch, L]`` (one row) or ``[batch, R, L]`` (word by word, ``R = H`` or,
            with ``delimiter_row``, ``1 + H``), exactly 0 at padded premise positions.
        premise: ids ``[batch, L]``, 0 at padding.
        hypothesis: ids ``[batch, H]``, 0 at padding, without the delimiter.
        content: bool ``[vocab]``, the content words (false at id 0).
        delimiter_row: the first of the ``R`` rows is the delimiter's.

    Returns:
        ``{"attention_<statistic>": Σ over counted rows, "attention_<statistic>_uniform": the
        same for uniform weights, "attention_<count>": rows counted}``.
    """
    alpha = tf.cast(attention, tf.float32)
    premise, hypothesis = tf.cast(premise, tf.int32), tf.cast(hypothesis, tf.int32)
    real = tf.cast(premise > 0, tf.float32)                                    # [B, L]
    n = tf.maximum(tf.reduce_sum(real, -1, keepdims=True), 1.0)                 # [B, 1]
    if alpha.shape.rank == 2:
        alpha, row_words = alpha[:, None, :], None
        row_real = tf.ones_like(alpha[:, :, 0])                                 # [B, 1]
    else:
        row_words = tf.pad(hypothesis, [[0, 0], [1, 0]]) if delimiter_row else hypothesis
        row_real = tf.cast(row_words > 0, tf.float32)                           # [B, R]
        if delimiter_row:
            row_real = tf.concat([tf.ones_like(row_real[:, :1]), row_real[:, 1:]], axis=1)
    is_content = tf.gather(tf.cast(content, tf.bool), premise)                  # [B, L]
    in_hypothesis = tf.reduce_any((premise[:, :, None] == hypothesis[:, None, :])
                                  & (hypothesis[:, None, :] > 0), axis=-1)
    shared = tf.cast(is_content & in_hypothesis, tf.float32)                    # [B, L]
    after = real * tf.cast(tf.range(tf.shape(premise)[1]) > 0, tf.float32)      # [B, L]

    def weight_on(positions):                                                   # [B, R]
        return tf.reduce_sum(alpha * positions[:, None, :], -1)

    log_alpha = tf.math.log(tf.where(alpha > 0, alpha, 1.0))
    rows = {"rows": row_real}
    values = {"entropy": (-tf.reduce_sum(alpha * log_alpha, -1), tf.math.log(n)),
              "first": (alpha[:, :, 0], 1.0 / n)}
    n_shared = tf.reduce_sum(shared, -1, keepdims=True)
    rows["shared_rows"] = row_real * tf.cast(n_shared > 0, tf.float32)
    values["shared"] = (weight_on(shared), n_shared / n)
    n_after = tf.reduce_sum(shared * after, -1, keepdims=True)
    rows["shared_after_first_rows"] = row_real * tf.cast(n_after > 0, tf.float32)
    values["shared_after_first"] = (
        weight_on(shared * after) / tf.maximum(weight_on(after), 1e-30),
        n_after / tf.maximum(n - 1.0, 1.0))
    if row_words is not None:
        aligned = tf.cast((premise[:, None, :] == row_words[:, :, None])
                          & is_content[:, None, :], tf.float32)                 # [B, R, L]
        n_aligned = tf.reduce_sum(aligned, -1)
        rows["aligned_rows"] = row_real * tf.cast(n_aligned > 0, tf.float32)
        values["aligned"] = (tf.reduce_sum(alpha * aligned, -1), n_aligned / n)
    sums = {f"attention_{name}": tf.reduce_sum(count, -1) for name, count in rows.items()}
    for name, count in STATISTICS:
        if name in values:
            value, uniform = values[name]
            sums[f"attention_{name}"] = tf.reduce_sum(rows[count] * value, -1)
            sums[f"attention_{name}_uniform"] = tf.reduce_sum(rows[count] * uniform, -1)
    return sums


def summarise(gathered: dict[str, np.ndarray]) -> dict[str, float]:
    """Means over the rows of a split from :func:`per_example`'s gathered sums (weight-0
    examples, the evaluation's padding, left out); a statistic without rows is left out."""
    if "attention_rows" not in gathered:
        return {}
    keep = gathered["weights"] > 0
    metrics: dict[str, float] = {}
    for name, count in STATISTICS:
        total = float(gathered[f"attention_{count}"][keep].sum()) \
            if f"attention_{count}" in gathered else 0.0
        if not total:
            continue
        for key in (f"attention_{name}", f"attention_{name}_uniform"):
            metrics[key] = float(gathered[key][keep].sum()) / total
        metrics[f"attention_{count}"] = int(round(total))
    return metrics
