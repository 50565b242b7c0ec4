"""Word-level sentence classification on SST, the task of the course's ladder from logistic
regression to recurrent networks (the models are in :mod:`papers.baselines.model`; the
recurrent rows are registered under ``cho2014``).

The vocabulary is built from the training split only (``min_count``) and saved as
``vocab.txt`` in the model dir; a resumed or evaluated run loads it from there. The
bag-of-words models read the counts of every vocabulary word (padding not counted), computed
from the padded word ids in the input pipeline; the recurrent models read the ids. The
bag-of-words rows add the course's L2 penalty λ Σ W² over their kernels. The hyperparameters of
each model are in :mod:`papers.baselines.experiments`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from datasets import batching, text
from papers.baselines.experiments import BOW_MODELS, MODELS
from papers.baselines.model import build_classifier
from training import export
from training.task import Task, text_columns


class WordClassificationTask(Task):
    """Sentence classification on a word vocabulary (see the module docstring)."""

    metric = "accuracy"

    def __init__(self, params, data_dir, model_dir):
        super().__init__(params, data_dir, model_dir)
        if params["model"] not in MODELS:
            raise ValueError(f"unknown model {params['model']!r}; valid: {', '.join(MODELS)}")
        self.dataset_name = params["dataset"]
        self.tokenizer = text.WordTokenizer(lowercase=params["lowercase"])
        self.vocab: text.Vocabulary | None = None

    # ------------------------------------------------------------------------------ data
    def split_options(self, split: str) -> dict:
        return {"phrases": self.params["phrases"] and split == "train"}

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def prepare(self, env) -> None:
        self.vocab = self.vocabulary(lambda: text.Vocabulary.from_texts(
            self.split("train").columns["text"], self.tokenizer,
            min_count=self.params["min_count"]))
        #: the class names, kept in the run dir (prediction reads no dataset)
        self.label_names = self.run_record("labels.json",
                                           lambda: list(self.split("train").label_names))

    def dataset(self, request: batching.DataRequest) -> tf.data.Dataset:
        ds = text.encode_text(self.split(request.split).dataset, self.tokenizer, self.vocab,
                              max_length=self.params["max_length"])

        def split_fn(batch):
            return self.features(batch["text_ids"]), batch["label"]

        return batching.batches(ds, request, split_fn=split_fn,
                                static_lengths={"text_ids": self.params["max_length"]},
                                group_by_length=self.params["model"] not in BOW_MODELS)

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
        names = self.label_names

        def serve(text_):
            tokens = self.vocab.lookup(self.tokenizer(text_))[:, :self.params["max_length"]]
            logits = model(self.features(tokens.to_tensor(text.Vocabulary.pad_id)))
            return export.classification_outputs(tf.nn.softmax(logits), names)

        return serve, [tf.TensorSpec([None], tf.string, name="text")], [self.vocab.table]

    def predict(self, model, inputs, output_dir=""):
        """Labels and class probabilities of raw sentences."""
        serve, _, _ = self.serving_endpoint(model)
        outputs = serve(tf.constant(text_columns(inputs, 1)[0]))
        return export.classification_records(outputs, self.label_names)

    # ------------------------------------------------------------------------------ model
    def build_model(self) -> keras.Model:
        vectors = self._glove_matrix() if self.params.get("glove") else None
        return build_classifier(self.params["model"], vocab_size=len(self.vocab),
                                classes=self.num_classes, params=self.params, vectors=vectors)

    def _glove_matrix(self):
        from datasets import word_vectors

        if self.params["embedding_dim"] != 50:
            raise ValueError("glove=True needs embedding_dim=50 (GloVe 6B 50d)")
        matrix, _ = word_vectors.embedding_matrix(self.vocab, seed=0)
        return matrix

    def loss(self, features, labels, outputs):
        return keras.losses.sparse_categorical_crossentropy(labels, outputs, from_logits=True)

    def regularization_loss(self, model):
        """λ Σ W² over the kernels of the bag-of-words models (the course's L2 penalty)."""
        if self.params["model"] not in BOW_MODELS or not self.params["l2"]:
            return tf.constant(0.0)
        kernels = [w for w in model.trainable_weights if w.path.endswith("kernel")]
        return self.params["l2"] * tf.add_n([tf.reduce_sum(tf.square(k)) for k in kernels])
