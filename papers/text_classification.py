"""Word-level sentence classification on SST: the course's ladder from logistic regression to
recurrent networks, shared by ``papers/baselines`` and ``papers/cho2014``.

Models (``params["model"]``):

- ``bow_logreg``: softmax regression on bag-of-words counts, p(y|x) = softmax(W x + b), trained
  with SGD and the L2 penalty λ Σ W² (biases not penalised).
- ``mlp``: two hidden layers on the bag-of-words counts; dropout after each non-linearity,
  active in training only.
- ``rnn`` (tanh Elman RNN), ``gru`` (Cho et al. 2014's GRU, :class:`layers.ChoGRU`), ``lstm``,
  ``bigru`` (a bidirectional Cho GRU) and ``gru2`` (two stacked Cho GRUs): word embeddings
  (optionally initialised from GloVe 6B 50d) → recurrent encoder → final state → dropout →
  softmax. Padded steps are masked, so padding never changes a prediction.

The vocabulary is built from the training split only (``min_count``) and saved as
``vocab.txt`` in the model dir; a resumed or evaluated run loads it from there. The
hyperparameters of each model are in ``papers/text_classification_hparams.py``.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

import datasets
from datasets import batching, text
from layers import ChoGRU
from papers.text_classification_hparams import BOW_MODELS, MODELS
from training import export
from training.task import Task, text_columns

class WordClassificationTask(Task):
    """Sentence classification on a word vocabulary (see the module docstring)."""

    metric = "accuracy"

    def __init__(self, params, data_dir, model_dir):
        super().__init__(params, data_dir, model_dir)
        if params["model"] not in MODELS:
            raise ValueError(f"unknown model {params['model']!r}; valid: {', '.join(MODELS)}")
        self.tokenizer = text.WordTokenizer(lowercase=params["lowercase"])
        self._splits = {}
        self.vocab: text.Vocabulary | None = None

    # ------------------------------------------------------------------------------ data
    def split(self, name: str) -> datasets.LoadedSplit:
        if name not in self._splits:
            phrases = self.params["phrases"] and name == "train"
            self._splits[name] = datasets.load(self.params["dataset"], name, self.data_dir,
                                               phrases=phrases)
        return self._splits[name]

    @property
    def num_classes(self) -> int:
        return len(self.split("train").label_names)

    def data_identity(self) -> dict:
        return {split: self.split(split).fingerprint() for split in ("train", "dev")}

    def prepare(self, env) -> None:
        path = os.path.join(self.model_dir, "vocab.txt")
        if tf.io.gfile.exists(path):
            self.vocab = text.Vocabulary.load(path)
            return
        self.vocab = text.Vocabulary.from_texts(self.split("train").columns["text"],
                                                self.tokenizer,
                                                min_count=self.params["min_count"])
        self.vocab.save(path)

    def num_examples(self, split: str) -> int:
        return self.split(split).num_rows

    def dataset(self, split, *, batch_size, training, seed, epoch=0, input_context=None,
                static_shapes=False):
        ds = text.encode_text(self.split(split).dataset, self.tokenizer, self.vocab,
                              max_length=self.params["max_length"])
        bow = self.params["model"] in BOW_MODELS

        def split_fn(batch):
            return self.features(batch["text_ids"]), batch["label"]

        shapes = {"static_shapes": static_shapes,
                  "static_lengths": {"text_ids": self.params["max_length"]},
                  "split_fn": split_fn, "input_context": input_context}
        if training:
            return batching.train_batches(ds, batch_size, seed=seed, epoch=epoch,
                                          group_by_length=not bow, **shapes)
        return batching.eval_batches(ds, batch_size, **shapes)

    def features(self, ids):
        """The model's input from padded word ids ``[batch, length]``: the ids, or for the
        bag-of-words models the counts of every vocabulary word (padding not counted)."""
        if self.params["model"] not in BOW_MODELS:
            return ids
        vocab_size = len(self.vocab)
        counts = tf.math.bincount(tf.cast(ids, tf.int32), minlength=vocab_size,
                                  maxlength=vocab_size, axis=-1, dtype=tf.float32)
        counts.set_shape([ids.shape[0], vocab_size])  # bincount drops the static batch size
        no_pad = tf.one_hot(text.Vocabulary.pad_id, vocab_size, on_value=0.0, off_value=1.0)
        return counts * no_pad

    # ------------------------------------------------------------------------------ serving
    def serving_endpoint(self, model):
        """``text``: strings → ``label``, ``label_id``, ``probabilities``; the tokenizer and
        the vocabulary run in the graph."""
        names = self.split("train").label_names

        def serve(text_):
            tokens = self.vocab.lookup(self.tokenizer(text_))[:, :self.params["max_length"]]
            logits = model(self.features(tokens.to_tensor(text.Vocabulary.pad_id)))
            return export.classification_outputs(tf.nn.softmax(logits), names)

        return serve, [tf.TensorSpec([None], tf.string, name="text")], [self.vocab.table]

    def predict(self, model, inputs, output_dir=""):
        """Labels and class probabilities of raw sentences."""
        serve, _, _ = self.serving_endpoint(model)
        outputs = serve(tf.constant(text_columns(inputs, 1)[0]))
        return export.classification_records(outputs, self.split("train").label_names)

    # ------------------------------------------------------------------------------ model
    def build_model(self) -> keras.Model:
        p, kind, classes = self.params, self.params["model"], self.num_classes
        vocab_size = len(self.vocab)
        if kind in BOW_MODELS:
            inputs = keras.Input((vocab_size,), name="bag_of_words")
            x = inputs
            if kind == "mlp":
                for i in range(2):
                    x = keras.layers.Dense(p["hidden"], activation="tanh", name=f"hidden_{i}")(x)
                    x = keras.layers.Dropout(p["dropout"], name=f"dropout_{i}")(x)
            return keras.Model(inputs, keras.layers.Dense(classes, name="softmax")(x), name=kind)

        inputs = keras.Input((None,), dtype="int64", name="ids")
        embedding = keras.layers.Embedding(vocab_size, p["embedding_dim"], mask_zero=True,
                                           trainable=p["train_embeddings"], name="embedding")
        x = embedding(inputs)
        if p["glove"]:
            embedding.set_weights([self._glove_matrix()])
        x = keras.layers.Dropout(p["dropout"], name="embedding_dropout")(x)
        h = p["hidden"]
        if kind == "rnn":
            x = keras.layers.SimpleRNN(h, activation="tanh", name="rnn")(x)
        elif kind == "lstm":
            x = keras.layers.LSTM(h, name="lstm")(x)
        elif kind == "gru":
            x = ChoGRU(h, name="gru")(x)
        elif kind == "bigru":
            x = keras.layers.Bidirectional(ChoGRU(h), name="bigru")(x)
        elif kind == "gru2":
            x = ChoGRU(h, return_sequences=True, name="gru_1")(x)
            x = keras.layers.Dropout(p["dropout"], name="between_dropout")(x)
            x = ChoGRU(h, name="gru_2")(x)
        x = keras.layers.Dropout(p["dropout"], name="output_dropout")(x)
        return keras.Model(inputs, keras.layers.Dense(classes, name="softmax")(x), name=kind)

    def _glove_matrix(self) -> np.ndarray:
        from datasets import word_vectors

        if self.params["embedding_dim"] != 50:
            raise ValueError("glove=True needs embedding_dim=50 (GloVe 6B 50d)")
        matrix, found = word_vectors.embedding_matrix(self.vocab, seed=0)
        return matrix

    def loss(self, features, labels, outputs):
        return keras.losses.sparse_categorical_crossentropy(labels, outputs, from_logits=True)

    def regularization_loss(self, model):
        """λ Σ W² over the kernels of the bag-of-words models (the course's L2 penalty)."""
        if self.params["model"] not in BOW_MODELS or not self.params["l2"]:
            return tf.constant(0.0)
        kernels = [w for w in model.trainable_weights if w.path.endswith("kernel")]
        return self.params["l2"] * tf.add_n([tf.reduce_sum(tf.square(k)) for k in kernels])
