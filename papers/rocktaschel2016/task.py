"""Recognising textual entailment on SNLI with the models of Rocktäschel et al. (2016).

The vocabulary holds every token of the (possibly subsetted) training split and of the
evaluation splits, after ``<pad>``, ``<unk>`` and ``<delim>`` (the token the second LSTM reads
between premise and hypothesis, Figure 1). Its vectors follow Section 3 (see
:class:`~papers.rocktaschel2016.model.WordInputs`): a token with a pretrained vector keeps it
fixed; ``<delim>``, ``<unk>`` and the training tokens without one are trained from
U(-0.05, 0.05); tokens without one that only the evaluation splits contain keep fixed random
vectors (seeded). The vocabulary is written to ``vocab.txt`` once; a resumed or evaluated run
reads it back.

Metrics: accuracy on train (Table 1 reports it), dev and test; for the attention models the
final evaluation adds statistics of the attention weights on every split (entropy, weight on
the first premise word, weight on premise words shared with the hypothesis, each beside what
uniform weights give; :mod:`~papers.rocktaschel2016.attention_stats`), and on dev it writes
attention heat maps of its first examples into ``MODEL_DIR/attention/``, and
``evaluate.py --predict="premise<TAB>hypothesis"`` prints the label with its probabilities and
writes the pair's heat map.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from datasets import batching, text, word_vectors
from datasets.snli import LABELS
from papers.rocktaschel2016 import attention_stats, plots
from papers.rocktaschel2016.model import EntailmentModel
from training import export
from training.task import Task, text_columns

DELIMITER = "<delim>"
RESERVED = (text.PAD, text.OOV, DELIMITER)
#: dev examples drawn by the final evaluation.
HEATMAPS = 6


class EntailmentTask(Task):
    """SNLI entailment with a Table 1 model (see the module docstring)."""

    metric = "accuracy"
    eval_splits = ("train", "dev", "test")
    dataset_name = "snli"
    prediction_columns = 2

    def __init__(self, params: dict, data_dir: str | None, model_dir: str):
        super().__init__(params, data_dir, model_dir)
        self.tokenizer = text.WordTokenizer(lowercase=params["lowercase"])
        self.vocab: text.Vocabulary | None = None

    # ----------------------------------------------------------------------------- data
    def rows(self, name: str) -> np.ndarray:
        """The rows of ``name`` used: for train a nested random subset of ``train_examples``
        (the first n of one fixed permutation, so smaller subsets lie inside larger ones)."""
        if name != "train":
            return np.arange(self.split(name).num_rows)
        return self.split(name).subset(int(self.params["train_examples"]),
                                       int(self.params["subset_seed"]))

    def data_identity(self) -> dict[str, Any]:
        return {name: self.split(name).fingerprint(self.rows(name)) for name in ("train", "dev")}

    def num_examples(self, split: str) -> int:
        return len(self.rows(split))

    def prepare(self, env) -> None:
        self.vocab = self.vocabulary(self._build_vocabulary)

    def _build_vocabulary(self) -> text.Vocabulary:
        train = self.split("train")
        texts = [train.columns[key][i] for i in self.rows("train") for key in ("text_a",
                                                                                 "text_b")]
        vocab = text.Vocabulary.from_texts(texts, self.tokenizer, reserved=RESERVED)
        seen = set(vocab.tokens)
        extra = []
        for name in ("dev", "test"):
            for tokens in self.tokenizer.tokenize_py(
                    self.split(name).columns["text_a"] + self.split(name).columns["text_b"]):
                extra += [t for t in tokens if t not in seen and not seen.add(t)]
        return text.Vocabulary(vocab.tokens + extra)

    def _train_tokens(self) -> set[str]:
        train = self.split("train")
        texts = [train.columns[key][i] for i in self.rows("train") for key in ("text_a",
                                                                                 "text_b")]
        return {t for tokens in self.tokenizer.tokenize_py(texts) for t in tokens}

    def dataset(self, request):
        loaded = self.split(request.split)
        rows = self.rows(request.split)
        columns = {key: tf.constant(np.asarray(loaded.columns[key], dtype=object)[rows])
                   for key in ("text_a", "text_b")}
        columns["label"] = tf.constant(np.asarray(loaded.columns["label"], np.int64)[rows])
        ds = text.encode_text(tf.data.Dataset.from_tensor_slices(columns), self.tokenizer,
                              self.vocab, fields=("text_a", "text_b"))
        lengths = {"text_a_ids": int(self.params["premise_length"]),
                   "text_b_ids": int(self.params["hypothesis_length"]) - 1}  # and <delim>
        ds = ds.map(lambda ex: {**ex, **{k: ex[k][:n] for k, n in lengths.items()}})

        def split_fn(batch):
            return {"premise": batch["text_a_ids"], "hypothesis": batch["text_b_ids"]}, \
                batch["label"]

        return batching.batches(ds, request, split_fn=split_fn, static_lengths=lengths,
                                group_by_length=True)

    # ----------------------------------------------------------------------------- model
    def vectors(self) -> tuple[np.ndarray, list[int]]:
        """The vectors of the vocabulary and the ids of its trained rows (module docstring)."""
        matrix, found = word_vectors.embedding_matrix(self.vocab, self.params["embedding"],
                                                      seed=0, init="uniform", scale=0.05)
        def trained_rows():
            in_train = self._train_tokens() | set(RESERVED[1:])
            return [i for i, token in enumerate(self.vocab.tokens)
                    if i != self.vocab.pad_id and not found[i] and token in in_train]

        # kept in the run dir, so prediction builds the same model without the data
        return matrix, self.run_record("trained_rows.json", trained_rows)

    def build_model(self) -> keras.Model:
        p = self.params
        matrix, trained = self.vectors()
        model = EntailmentModel(
            p["model"], vocab_size=len(self.vocab), input_dim=matrix.shape[1],
            delimiter_id=self.vocab.token_id(DELIMITER), k=int(p["k"]), cell=p["cell"],
            shared=bool(p["shared"]), two_way=bool(p["two_way"]), dropout=float(p["dropout"]),
            output_tanh=bool(p["output_tanh"]), trainable_rows=trained, hand_on=p["hand_on"],
            attend_delimiter=bool(p["attend_delimiter"]))
        ids = tf.constant([[1, 2]], tf.int32)
        model({"premise": ids, "hypothesis": ids})
        model.words.set_vectors(matrix)
        return model

    def loss(self, features, labels, outputs):
        return keras.losses.sparse_categorical_crossentropy(
            labels, tf.cast(self.logits(outputs), tf.float32), from_logits=True)

    def regularization_loss(self, model):
        """λ Σ ‖W‖² over the model's trained parameters except the word vectors (the paper's
        ℓ2-regularisation, ``l2``)."""
        if not self.params["l2"]:
            return tf.constant(0.0)
        vectors = {id(w) for w in model.words.embedding_weights()}
        return float(self.params["l2"]) * tf.add_n(
            [tf.reduce_sum(tf.square(tf.cast(w, tf.float32))) for w in model.trainable_weights
             if id(w) not in vectors])

    # ----------------------------------------------------------------------------- evaluation
    def content_words(self) -> np.ndarray:
        """bool ``[vocab]``: the content words of the attention statistics."""
        if getattr(self, "_content", None) is None:
            self._content = attention_stats.content_words(self.vocab.tokens)
        return self._content

    def eval_step(self, inputs, model):
        """The default outputs and, for the attention models, the per-example attention
        statistics (:func:`attention_stats.per_example`), computed here so that the split's
        attention maps are never gathered."""
        features, labels, weights = inputs
        outputs = model(features, training=False)
        step = {"logits": tf.cast(self.logits(outputs), tf.float32), "labels": labels,
                "weights": weights,
                "loss": tf.cast(self.loss(features, labels, outputs), tf.float32)}
        if "attention" in outputs:
            step.update(attention_stats.per_example(
                outputs["attention"], features["premise"], features["hypothesis"],
                self.content_words(), delimiter_row=bool(self.params["attend_delimiter"])))
        return step

    def compute_final_metrics(self, gathered, split):
        """Accuracy, loss, examples and the attention statistics (attention models)."""
        return {**self.compute_metrics(gathered, split), **attention_stats.summarise(gathered)}

    # ----------------------------------------------------------------------------- serving
    def serving_endpoint(self, model):
        """``premise``, ``hypothesis``: strings → ``label``, ``label_id``, ``probabilities``
        (and ``attention`` for the attention models); tokenizer and vocabulary in the graph."""
        def ids(texts):
            return self.vocab.lookup(self.tokenizer(texts)).to_tensor(text.Vocabulary.pad_id)

        def serve(premise, hypothesis):
            outputs = model({"premise": ids(premise), "hypothesis": ids(hypothesis)})
            served = export.classification_outputs(
                tf.nn.softmax(tf.cast(outputs["logits"], tf.float32)), LABELS)
            if "attention" in outputs:
                served["attention"] = tf.cast(outputs["attention"], tf.float32)
            return served

        signature = [tf.TensorSpec([None], tf.string, name=n) for n in ("premise", "hypothesis")]
        return serve, signature, [self.vocab.table]

    # ----------------------------------------------------------------------------- pictures
    def _draw(self, model, premises, hypotheses, paths, titles) -> list[dict[str, Any]]:
        """Labels of the pairs, with a heat map each (into ``paths``) for attention models."""
        serve, _, _ = self.serving_endpoint(model)
        outputs = serve(tf.constant(list(premises)), tf.constant(list(hypotheses)))
        results = export.classification_records(outputs, LABELS)
        if "attention" not in outputs or not paths:
            return results
        premise_tokens = self.tokenizer.tokenize_py(premises)
        hypothesis_tokens = self.tokenizer.tokenize_py(hypotheses)
        first = [DELIMITER] if self.params["attend_delimiter"] else []
        for n, result in enumerate(results):
            plots.plot_attention(premise_tokens[n], first + hypothesis_tokens[n],
                                 outputs["attention"][n].numpy(), paths[n],
                                 title=f"{titles[n]}: {result['label']} "
                                       f"({result['probabilities'][result['label']]:.2f})")
            result["files"] = [paths[n]]
        return results

    def write_artifacts(self, model, split, gathered, directory) -> list[str]:
        """Heat maps of the first dev examples (Figures 2-3 of the paper)."""
        if split != "dev" or self.params["model"] not in ("attention", "word_by_word"):
            return []
        loaded = self.split("dev")
        n = min(HEATMAPS, loaded.num_rows)
        paths = [os.path.join(directory, "attention", f"dev_{i}.png") for i in range(n)]
        titles = [f"dev {i}, gold {LABELS[loaded.columns['label'][i]]}" for i in range(n)]
        self._draw(model, loaded.columns["text_a"][:n], loaded.columns["text_b"][:n], paths,
                   titles)
        return paths

    def predict(self, model, inputs: Sequence[str], output_dir: str) -> list[dict[str, Any]]:
        """Labels of ``"premise<TAB>hypothesis"`` pairs, with their attention heat maps.

        The model reads what it was trained on: the first ``premise_length`` tokens of a
        premise and ``hypothesis_length - 1`` of a hypothesis (the dataset's cut, so a
        20,000-word premise is neither run nor drawn at full length); a pair that was cut says
        so in its ``note``.
        """
        premises, hypotheses = text_columns(inputs, 2)
        premises, premise_notes = self._cut(premises, int(self.params["premise_length"]),
                                            "premise", "premise_length")
        hypotheses, hypothesis_notes = self._cut(
            hypotheses, int(self.params["hypothesis_length"]) - 1, "hypothesis",
            "hypothesis_length - 1")
        draw = self.params["model"] in ("attention", "word_by_word")
        paths = [os.path.join(output_dir, f"attention_{i}.png") for i in range(len(inputs))]
        results = self._draw(model, premises, hypotheses, paths if draw else [],
                             [f"input {i + 1}" for i in range(len(inputs))])
        for result, *notes in zip(results, premise_notes, hypothesis_notes):
            if any(notes):
                result["note"] = "; ".join(note for note in notes if note)
        return results

    def _cut(self, texts: Sequence[str], limit: int, what: str, name: str
             ) -> tuple[list[str], list[str | None]]:
        """``texts`` cut to their first ``limit`` tokens, and a note for each one cut."""
        cut, notes = [], []
        for text_, tokens in zip(texts, self.tokenizer.tokenize_py(list(texts))):
            if len(tokens) <= limit:
                cut.append(text_)
                notes.append(None)
                continue
            cut.append(" ".join(tokens[:limit]))
            notes.append(f"the {what} has {len(tokens)} tokens; the model read its first "
                         f"{limit} ({name}), as in training")
        return cut, notes
