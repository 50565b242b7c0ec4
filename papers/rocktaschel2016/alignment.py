"""A synthetic task whose answer is read best by attention that aligns the two sentences.

A premise is ``n`` distinct words (``n`` uniform in ``[min_premise_words, premise_words]``)
of a vocabulary of ``num_words``; a hypothesis is ``hypothesis_words`` distinct words, exactly
one of which (at a random place) occurs in the premise, at a position ``p ≥ 1`` (0-based, so
never the first). The label is the class (id mod 3) of the premise word *before* the match,
``w_{p-1}``: neither sentence alone determines it. The premise LSTM's output ``h_p`` has just
read ``w_{p-1}`` and ``w_p``, so an attention row that puts its weight on position ``p`` — the
premise word that matches a hypothesis word — can read the answer there. A model that does
not attend must instead carry, in the state the premise LSTM hands on, the class of every
premise word's predecessor.

The models are those of Table 1 (:class:`~papers.rocktaschel2016.model.EntailmentModel`), with
words as in Section 3: each word has a fixed random vector (``embedding_dim``, seeded; the
stand-in for fixed pretrained vectors), the delimiter a trained one.

Metrics: accuracy; the final evaluation adds the attention statistics of
:mod:`~papers.rocktaschel2016.attention_stats` and ``match_weight``, the weight on the right
position: the ``shared`` statistic for ``attention`` (the match is the only premise word the
hypothesis shares, so this is the weight of the one row on position ``p``) and the ``aligned``
one for ``word_by_word`` (the weight of the matching hypothesis word's row on position ``p``).
It writes heat maps of the first dev pairs into ``MODEL_DIR/attention/``.

Vocabulary: ``<pad>`` = 0, ``<delim>`` = 1, words ``w0 … w{num_words-1}`` = 2 …; every batch is
padded to ``premise_words`` and ``hypothesis_words`` (static shapes, no bucketing). The splits
are drawn from one seeded generator: test, dev, then train.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import keras
import numpy as np
import tensorflow as tf

from datasets import batching
from papers.rocktaschel2016 import attention_stats, plots
from papers.rocktaschel2016.model import EntailmentModel
from training.task import Task

PAD, DELIMITER = 0, 1
FIRST_WORD = 2
CLASSES = 3
#: dev pairs drawn by the final evaluation.
HEATMAPS = 3


def generate(count: int, *, num_words: int, min_premise_words: int, premise_words: int,
             hypothesis_words: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``count`` pairs: ``premise`` ``[count, premise_words]``, ``hypothesis``
    ``[count, hypothesis_words]`` (ids, 0-padded), ``label``, and where the match is:
    ``position`` (in the premise) and ``row`` (in the hypothesis)."""
    if not 2 <= min_premise_words <= premise_words:
        raise ValueError(f"need 2 <= min_premise_words <= premise_words, got "
                         f"{min_premise_words} and {premise_words}")
    if premise_words + hypothesis_words - 1 > num_words:
        raise ValueError(f"num_words={num_words} is too few for {premise_words} premise and "
                         f"{hypothesis_words} hypothesis words")
    premise = np.zeros((count, premise_words), np.int32)
    hypothesis = np.zeros((count, hypothesis_words), np.int32)
    label, position, row = (np.zeros(count, np.int32) for _ in range(3))
    for i in range(count):
        n = int(rng.integers(min_premise_words, premise_words + 1))
        words = rng.permutation(num_words)[:n + hypothesis_words - 1] + FIRST_WORD
        premise[i, :n] = words[:n]
        position[i] = rng.integers(1, n)
        row[i] = rng.integers(0, hypothesis_words)
        others = list(words[n:])
        hypothesis[i] = others[:row[i]] + [words[position[i]]] + others[row[i]:]
        label[i] = (words[position[i] - 1] - FIRST_WORD) % CLASSES
    return {"premise": premise, "hypothesis": hypothesis, "label": label,
            "position": position, "row": row}


class AlignmentTask(Task):
    """The synthetic alignment task (module docstring) with a Table 1 model."""

    metric = "accuracy"
    eval_splits = ("dev", "test")

    @functools.cached_property
    def _data(self) -> dict[str, dict[str, np.ndarray]]:
        p = self.params
        rng = np.random.default_rng(int(p["data_seed"]))
        shape = {key: int(p[key]) for key in ("num_words", "min_premise_words",
                                               "premise_words", "hypothesis_words")}
        return {name: generate(int(p[f"{name}_examples"]), rng=rng, **shape)
                for name in ("test", "dev", "train")}

    def num_examples(self, split: str) -> int:
        return len(self._data[split]["label"])

    def dataset(self, request: batching.DataRequest) -> tf.data.Dataset:
        """Batches of the generated pairs; every pair has the same lengths, so shapes are
        always static, whatever ``request.static_shapes``."""
        data = self._data[request.split]
        ds = tf.data.Dataset.from_tensor_slices(
            {key: data[key] for key in ("premise", "hypothesis", "label")})
        return batching.batches(ds, dataclasses.replace(request, static_shapes=True))

    def build_model(self) -> keras.Model:
        p = self.params
        vocab_size, dim = int(p["num_words"]) + FIRST_WORD, int(p["embedding_dim"])
        model = EntailmentModel(
            p["model"], vocab_size=vocab_size, input_dim=dim, delimiter_id=DELIMITER,
            k=int(p["k"]), hand_on=p["hand_on"], attend_delimiter=bool(p["attend_delimiter"]),
            dropout=float(p["dropout"]), trainable_rows=[DELIMITER])
        ids = tf.constant([[FIRST_WORD]], tf.int32)
        model({"premise": ids, "hypothesis": ids})
        vectors = np.random.default_rng(int(p["data_seed"]) + 1).normal(
            0.0, dim ** -0.5, (vocab_size, dim)).astype(np.float32)
        vectors[PAD] = 0.0
        vectors[DELIMITER] = model.words.learned.numpy()[DELIMITER]    # U(-0.05, 0.05)
        model.words.set_vectors(vectors)
        return model

    def loss(self, features, labels, outputs):
        return keras.losses.sparse_categorical_crossentropy(
            labels, tf.cast(self.logits(outputs), tf.float32), from_logits=True)

    def eval_step(self, inputs, model):
        """The default outputs and the per-example attention statistics (every word is a
        content word)."""
        features, labels, weights = inputs
        outputs = model(features, training=False)
        content = np.arange(int(self.params["num_words"]) + FIRST_WORD) >= FIRST_WORD
        return {"logits": tf.cast(self.logits(outputs), tf.float32), "labels": labels,
                "weights": weights,
                "loss": tf.cast(self.loss(features, labels, outputs), tf.float32),
                **attention_stats.per_example(
                    outputs["attention"], features["premise"], features["hypothesis"], content,
                    delimiter_row=bool(self.params["attend_delimiter"]))}

    def compute_final_metrics(self, gathered, split):
        metrics = {**self.compute_metrics(gathered, split),
                   **attention_stats.summarise(gathered)}
        by = "aligned" if self.params["model"] == "word_by_word" else "shared"
        metrics["match_weight"] = metrics[f"attention_{by}"]
        return metrics

    def write_artifacts(self, model, split, gathered, directory) -> list[str]:
        """Heat maps of the first dev pairs, the match's column and row marked in the title."""
        if split != "dev":
            return []
        data = self._data["dev"]
        n = min(HEATMAPS, len(data["label"]))
        outputs = model({"premise": data["premise"][:n], "hypothesis": data["hypothesis"][:n]})
        paths = []
        for i in range(n):
            premise = [f"w{t - FIRST_WORD}" for t in data["premise"][i] if t]
            rows = [f"w{t - FIRST_WORD}" for t in data["hypothesis"][i]]
            if self.params["attend_delimiter"]:
                rows = ["<delim>"] + rows
            path = os.path.join(directory, "attention", f"dev_{i}.png")
            plots.plot_attention(
                premise, rows, np.asarray(outputs["attention"][i]), path,
                title=f"dev {i}: match {premise[data['position'][i]]} at premise position "
                      f"{data['position'][i]}, label {data['label'][i]}")
            paths.append(path)
        return paths
