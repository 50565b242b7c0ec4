"""A synthetic sequence-to-sequence task for the RNN Encoder-Decoder: reverse a sequence.

The source is a random sequence of ``min_length`` to ``max_length`` symbols over an alphabet of
``num_symbols``; the target is the same sequence reversed, followed by ``<end>``. The answer is
known, no data has to be downloaded, and an Encoder-Decoder that passes everything through the
fixed-size summary ``c`` (Cho et al. 2014, Section 2.2) solves it: the last symbols read are
the first to be written.

Vocabulary: ``<pad>`` = 0, ``<start>`` = 1, ``<end>`` = 2, symbols ``3 ... num_symbols + 2``.
Every example is padded to fixed lengths (``max_length`` source tokens and ``max_length + 1``
target tokens), so all batches have static shapes (XLA, TPU) and no bucketing is needed.

Splits are drawn from one seeded generator without replacement: the train, dev and test
sequences are pairwise distinct.
"""

from __future__ import annotations

import dataclasses
import functools

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from datasets import batching
from layers import decoding
from papers.cho2014.model import RNNEncoderDecoder
from training.task import Task

PAD, START, END = 0, 1, 2
NUM_SPECIAL = 3


def generate_splits(num_symbols: int, min_length: int, max_length: int,
                    sizes: dict[str, int], seed: int) -> dict[str, list[tuple[int, ...]]]:
    """Distinct random sequences (token ids ``>= NUM_SPECIAL``) for each split.

    Lengths are uniform in ``[min_length, max_length]``, symbols uniform; a sequence drawn twice
    is redrawn, so no sequence occurs in two splits (or twice in one). Deterministic in
    ``seed``; the splits are filled in the order test, dev, train.
    """
    total = sum(sizes.values())
    capacity = sum(num_symbols ** n for n in range(min_length, max_length + 1))
    if total > capacity // 2:
        raise ValueError(f"{total} distinct sequences requested, only {capacity} exist")
    rng = np.random.default_rng(seed)
    seen: set[tuple[int, ...]] = set()
    pool: list[tuple[int, ...]] = []
    while len(pool) < total:
        length = int(rng.integers(min_length, max_length + 1))
        sequence = tuple(int(t) for t in rng.integers(0, num_symbols, size=length) + NUM_SPECIAL)
        if sequence not in seen:
            seen.add(sequence)
            pool.append(sequence)
    splits, start = {}, 0
    for name in ("test", "dev", "train"):
        splits[name] = pool[start:start + sizes[name]]
        start += sizes[name]
    return splits


def encode_examples(sequences: list[tuple[int, ...]], max_length: int) -> dict[str, np.ndarray]:
    """``source`` ``[n, max_length]``, ``decoder_input`` and ``target`` ``[n, max_length + 1]``.

    ``target`` is the reversed source then ``<end>``; ``decoder_input`` is ``<start>`` then
    ``target`` without its last token (teacher forcing); all are ``<pad>``-padded.
    """
    n = len(sequences)
    source = np.full((n, max_length), PAD, np.int32)
    target = np.full((n, max_length + 1), PAD, np.int32)
    for i, sequence in enumerate(sequences):
        source[i, :len(sequence)] = sequence
        target[i, :len(sequence)] = sequence[::-1]
        target[i, len(sequence)] = END
    decoder_input = np.concatenate(
        [np.full((n, 1), START, np.int32), target[:, :-1]], axis=1)
    return {"source": source, "decoder_input": decoder_input, "target": target}


class ReverseSeq2SeqTask(Task):
    """Reversing random sequences with the RNN Encoder-Decoder (Cho et al. 2014).

    Training: teacher forcing; the per-example loss is the sequence's negative
    log-likelihood ``-log p(y | x) = -Σ_t log p(y_t | y_<t, x)``, the *sum* of the token
    cross-entropies up to and including ``<end>`` (equation 4 of the paper maximises the mean
    over examples of this log-likelihood). Model selection decodes greedily and scores
    exact-sequence accuracy (``sequence_accuracy``), token accuracy (over the reference's
    positions, ``<end>`` included) and the teacher-forced loss; the final evaluation adds
    beam search with ``beam_width`` hypotheses and ``length_penalty``
    (``beam_sequence_accuracy``, ``beam_token_accuracy``), both through
    :mod:`layers.decoding`.
    """

    metric = "sequence_accuracy"
    metric_mode = "max"
    has_final_eval_step = True

    @property
    def max_target_length(self) -> int:
        return int(self.params["max_length"]) + 1

    @functools.cached_property
    def _data(self) -> dict[str, dict[str, np.ndarray]]:
        p = self.params
        sizes = {"train": int(p["train_examples"]), "dev": int(p["dev_examples"]),
                 "test": int(p["test_examples"])}
        splits = generate_splits(int(p["num_symbols"]), int(p["min_length"]),
                                 int(p["max_length"]), sizes, int(p["data_seed"]))
        return {name: encode_examples(seqs, int(p["max_length"]))
                for name, seqs in splits.items()}

    @property
    def vocab_size(self) -> int:
        return int(self.params["num_symbols"]) + NUM_SPECIAL

    def num_examples(self, split: str) -> int:
        return len(self._data[split]["source"])

    def arrays(self, split: str) -> dict[str, np.ndarray]:
        """The split's padded arrays (see :func:`encode_examples`)."""
        return self._data[split]

    def dataset(self, request: batching.DataRequest) -> tf.data.Dataset:
        """Batches ``({"source", "decoder_input"}, target, weights)`` from
        :mod:`datasets.batching`; shapes are always static (see the module docstring),
        whatever ``request.static_shapes``."""
        ds = tf.data.Dataset.from_tensor_slices(dict(self._data[request.split]))
        return batching.batches(ds, dataclasses.replace(request, static_shapes=True),
                                label_key="target")

    def build_model(self) -> keras.Model:
        p = self.params
        return RNNEncoderDecoder(
            self.vocab_size, self.vocab_size, embedding_dim=int(p["embedding_dim"]),
            hidden_units=int(p["hidden_units"]), maxout_units=int(p["maxout_units"]),
            softmax_rank=int(p["softmax_rank"]), init_std=float(p["init_std"]),
            pad_id=PAD, start_id=START, end_id=END)

    def build_optimizer(self, total_steps: int) -> keras.optimizers.Optimizer:
        """``params['optimizer']`` with a cosine decay from ``learning_rate`` to
        ``final_learning_rate`` over ``total_steps`` (constant if the two are equal).

        The paper trains with Adadelta (ε = 1e-6, ρ = 0.95), available as
        ``optimizer=adadelta``; Adam learns this small task much faster.
        """
        optimizer = super().build_optimizer(total_steps)
        initial = float(self.params["learning_rate"])
        final = float(self.params.get("final_learning_rate", initial))
        if final != initial:
            config = optimizer.get_config()
            config["learning_rate"] = keras.optimizers.schedules.CosineDecay(
                initial, decay_steps=max(1, int(total_steps)), alpha=final / initial)
            optimizer = optimizer.__class__.from_config(config)
        return optimizer

    def loss(self, features, labels, outputs):
        """Sequence negative log-likelihood ``[batch]``: the summed token cross-entropy."""
        token = keras.losses.sparse_categorical_crossentropy(
            labels, ops.cast(outputs, "float32"), from_logits=True)
        return ops.sum(token * ops.cast(ops.not_equal(labels, PAD), "float32"), axis=-1)

    def decode(self, model: RNNEncoderDecoder, source, beam_width: int = 1):
        """The best output sequence ``[batch, max_length + 1]``: greedy (``beam_width=1``) or
        the best of a beam search."""
        state, constants = model.start_decoding(source)
        ids = {"start_id": START, "end_id": END, "pad_id": PAD,
               "max_length": self.max_target_length}
        if beam_width == 1:
            return decoding.greedy_search(model.decode_step, state, constants, **ids).sequences
        beams = decoding.beam_search(model.decode_step, state, constants, beam_width=beam_width,
                                     length_penalty=float(self.params["length_penalty"]), **ids)
        return beams.sequences[:, 0]

    def eval_step(self, inputs, model: keras.Model) -> dict[str, tf.Tensor]:
        features, labels, weights = inputs
        logits = model(features, training=False)
        return {"predictions": self.decode(model, features["source"]),
                "labels": labels, "weights": weights,
                "loss": tf.cast(self.loss(features, labels, logits), tf.float32)}

    def final_eval_step(self, inputs, model: keras.Model) -> dict[str, tf.Tensor]:
        outputs = self.eval_step(inputs, model)
        outputs["beam_predictions"] = self.decode(model, inputs[0]["source"],
                                                  int(self.params["beam_width"]))
        return outputs

    @staticmethod
    def _accuracies(predictions: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        real = labels != PAD
        return (100.0 * float(np.mean(np.all(predictions == labels, axis=1))),
                100.0 * float(np.sum((predictions == labels) & real) / max(1, np.sum(real))))

    def compute_metrics(self, gathered: dict[str, np.ndarray], split: str) -> dict[str, float]:
        keep = gathered["weights"] > 0
        labels = gathered["labels"][keep]
        sequence, token = self._accuracies(gathered["predictions"][keep], labels)
        return {"sequence_accuracy": sequence, "token_accuracy": token,
                "loss": float(np.mean(gathered["loss"][keep])), "examples": int(keep.sum())}

    def compute_final_metrics(self, gathered: dict[str, np.ndarray], split: str
                              ) -> dict[str, float]:
        metrics = self.compute_metrics(gathered, split)
        keep = gathered["weights"] > 0
        beam, beam_token = self._accuracies(gathered["beam_predictions"][keep],
                                            gathered["labels"][keep])
        metrics.update(beam_sequence_accuracy=beam, beam_token_accuracy=beam_token,
                       beam_width=int(self.params["beam_width"]))
        return metrics
