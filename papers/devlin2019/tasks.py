"""Fine-tuning tasks of Devlin et al. 2019 on the shared loop: SST-2, MRPC, SNLI and IMDB.

Every task fine-tunes all parameters of a pre-trained encoder plus a new classification layer
(§4.1) with the fine-tuning recipe of §A.3: Adam(W) with learning rate in {5e-5, 3e-5, 2e-5},
batch size 16 or 32, 2-4 epochs, dropout 0.1, a 10% linear warm-up, weight decay 0.01 and
gradient clipping at global norm 1.0 (google-research/bert ``run_classifier.py`` and
``optimization.py``). The hyperparameter dicts below hold the defaults of each experiment;
``train.py --params`` overrides them by name.

| task | dataset | input | metric | eval splits |
| --- | --- | --- | --- | --- |
| :class:`SST2Task` | ``glue_sst2`` or ``sst2`` | sentence | accuracy | dev (+ test for ``sst2``) |
| :class:`MRPCTask` | ``mrpc`` | sentence pair | F1 of "equivalent" (and accuracy) | dev, test |
| :class:`SNLITask` | ``snli`` | premise, hypothesis | accuracy | dev, test |
| :class:`IMDBTask` | ``imdb`` | review, head+tail truncated | accuracy | dev (held out), test |

Hyperparameters shared by all tasks (:data:`BASE_HPARAMS`):

- ``encoder``: see :mod:`papers.devlin2019.encoders` (default ``"minilm_l6_h384"``, offline).
- ``pooling``: ``"cls"`` (BERT's pooled ``[CLS]``) or ``"mean"`` (masked mean of tokens).
- ``hidden_dims``: extra dense layers in the head, written ``256:128`` (default none).
- ``max_seq_length``: tokens per packed sequence (128; IMDB 512).
- ``learning_rate``, ``batch_size``, ``epochs``, ``warmup_proportion``, ``weight_decay``,
  ``adam_epsilon``, ``dropout``, ``clip_norm``: the §A.3 recipe.
- ``truncation``: ``"longest_first"`` or ``"head_tail"`` with ``head_tokens`` (Sun et al. 2019).
- ``train_examples`` / ``eval_examples``: use a subset of that many examples of train / of each
  evaluation split (0: all). The subset is a fixed random sample (``subset_seed``) kept in file
  order, so it is the same in every run and, for IMDB whose file is sorted by label, balanced
  in expectation.
- ``length_bucketing``: group training examples of similar length (less padding on CPU/GPU;
  ignored with static shapes).

Example:

```python
task = SST2Task(SST2_HPARAMS, data_dir="/data", model_dir="/tmp/run")
task.prepare()
batches = task.dataset("train", batch_size=32, training=True, seed=0)
model = task.build_model()
optimizer = task.build_optimizer(total_steps=1000)
```
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

import datasets
from datasets import wordpiece
from papers.devlin2019 import encoders
from papers.devlin2019.model import build_classifier
from training import optimizers
from training.task import Task

#: The §A.3 fine-tuning recipe with the offline MiniLM encoder; every task starts from it.
BASE_HPARAMS: dict[str, Any] = {
    "encoder": encoders.DEFAULT_ENCODER,
    "pooling": "cls",
    "hidden_dims": (),
    "max_seq_length": 128,
    "learning_rate": 2e-5,
    "batch_size": 32,
    "epochs": 3,
    "warmup_proportion": 0.1,
    "weight_decay": 0.01,
    "adam_epsilon": 1e-6,
    # False: google-research/bert's update m / (√v + ε); True: torch.optim.AdamW's (bias-corrected)
    "adam_bias_correction": False,
    "dropout": 0.1,
    "clip_norm": 1.0,
    "truncation": "longest_first",
    "head_tokens": 128,
    "train_examples": 0,
    "eval_examples": 0,
    "subset_seed": 0,
    "length_bucketing": True,
}

#: ``dataset``: ``"glue_sst2"`` (GLUE's 67k phrase-level train, unlabelled test) or ``"sst2"``
#: (the 6,920 / 872 / 1,821 sentences from the treebank; its test split is GLUE's test sentences,
#: labelled).
SST2_HPARAMS: dict[str, Any] = {**BASE_HPARAMS, "dataset": "glue_sst2"}
MRPC_HPARAMS: dict[str, Any] = {**BASE_HPARAMS}
SNLI_HPARAMS: dict[str, Any] = {**BASE_HPARAMS}
#: Sun et al. 2019 (§5.3): 512 tokens, the first 128 and the last 382 of a long review;
#: 2,000 train reviews (1,000 per class) are held out as dev for model selection.
IMDB_HPARAMS: dict[str, Any] = {**BASE_HPARAMS, "max_seq_length": 512,
                                "truncation": "head_tail", "head_tokens": 128,
                                "dev_size": 2000}


class BertClassificationTask(Task):
    """Fine-tunes a BERT encoder to classify a text or a text pair (Devlin et al. 2019, §4.1).

    Subclasses set :attr:`dataset_name`, :attr:`text_keys`, :attr:`label_names` and the
    metric. ``model_dir`` receives ``encoder.json`` (the resolved encoder) and a copy of the
    vocabulary in :meth:`prepare`.
    """

    dataset_name: str = ""
    text_keys: tuple[str, ...] = ("text",)
    label_names: tuple[str, ...] = ()
    dataset_options: tuple[str, ...] = ()
    eval_splits: tuple[str, ...] = ("dev", "test")

    def __init__(self, params: dict, data_dir: str | None, model_dir: str):
        super().__init__(params, data_dir, model_dir)
        missing = sorted(set(BASE_HPARAMS) - set(self.params))
        if missing:
            raise ValueError(f"{type(self).__name__} is missing hyperparameters {missing}")
        self.spec = encoders.resolve_encoder(self.params["encoder"])
        max_len = int(self.params["max_seq_length"])
        if max_len > self.spec.max_position_embeddings:
            raise ValueError(f"max_seq_length={max_len} exceeds the encoder's "
                             f"max_position_embeddings={self.spec.max_position_embeddings}")
        self.encoder = wordpiece.WordPieceEncoder(
            self.spec.vocab_path, lowercase=self.spec.lowercase,
            strip_accents=self.spec.strip_accents, max_seq_length=max_len,
            truncation=self.params["truncation"], head_tokens=int(self.params["head_tokens"]))
        self._splits: dict[str, tuple[tf.data.Dataset, int]] = {}

    # ----------------------------------------------------------------------------- data
    def prepare(self) -> None:
        if not self.model_dir:
            return
        from training import io

        io.atomic_write_json(os.path.join(self.model_dir, "encoder.json"), self.spec.to_json())
        with tf.io.gfile.GFile(self.spec.vocab_path, "rb") as f:
            io.atomic_write_bytes(os.path.join(self.model_dir, "vocab.txt"), f.read())

    def _load(self, split: str) -> tuple[tf.data.Dataset, int]:
        if split not in self._splits:
            options = {k: self.params[k] for k in self.dataset_options}
            loaded = datasets.load(self.dataset_name, split, self.data_dir, **options)
            columns = loaded.columns
            indices = np.arange(loaded.num_rows)
            limit = int(self.params["train_examples" if split == "train" else "eval_examples"])
            if 0 < limit < loaded.num_rows:
                rng = np.random.default_rng(int(self.params["subset_seed"]))
                indices = np.sort(rng.permutation(loaded.num_rows)[:limit])
            labels = np.asarray(columns["label"], np.int64)[indices]
            if (labels < 0).any():
                raise ValueError(f"{self.dataset_name} {split} has unlabelled examples "
                                 f"(label -1): it cannot be trained or evaluated on")
            tensors = {k: tf.constant(np.asarray(columns[k], dtype=object)[indices], tf.string)
                       for k in self.text_keys}
            tensors["label"] = tf.constant(labels)
            self._splits[split] = (tf.data.Dataset.from_tensor_slices(tensors), len(indices))
        return self._splits[split]

    def num_examples(self, split: str) -> int:
        return self._load(split)[1]

    def dataset(self, split: str, *, batch_size: int, training: bool, seed: int, epoch: int = 0,
                input_context: tf.distribute.InputContext | None = None,
                static_shapes: bool = False) -> tf.data.Dataset:
        ds, count = self._load(split)
        if training:
            chunk = 50 if self.params["length_bucketing"] else 1
            return wordpiece.train_batches(ds, self.encoder, self.text_keys, batch_size,
                                           seed=seed, epoch=epoch, input_context=input_context,
                                           static_shapes=static_shapes, sort_chunk_batches=chunk)
        return wordpiece.eval_batches(ds, self.encoder, self.text_keys, batch_size,
                                      num_examples=count, input_context=input_context,
                                      static_shapes=static_shapes)

    # ----------------------------------------------------------------------------- model
    def build_model(self) -> keras.Model:
        return build_classifier(
            self.spec, len(self.label_names), pooling=self.params["pooling"],
            hidden_dims=[int(d) for d in self.params["hidden_dims"]],
            dropout=float(self.params["dropout"]))

    def build_optimizer(self, total_steps: int) -> keras.optimizers.Optimizer:
        return optimizers.bert_adamw(
            float(self.params["learning_rate"]), total_steps,
            warmup_proportion=float(self.params["warmup_proportion"]),
            weight_decay=float(self.params["weight_decay"]),
            epsilon=float(self.params["adam_epsilon"]),
            bias_correction=bool(self.params["adam_bias_correction"]))

    def loss(self, labels, outputs) -> tf.Tensor:
        return keras.losses.sparse_categorical_crossentropy(
            labels, tf.cast(outputs, tf.float32), from_logits=True)

    # ----------------------------------------------------------------------------- predict
    def predict_texts(self, model: keras.Model, texts: Sequence[str], *,
                      batch_size: int = 32) -> list[dict[str, Any]]:
        """Labels and class probabilities of raw texts (pairs: ``"a<TAB>b"``).

        Returns:
            One dict per input: ``label`` (the name), ``label_id`` and ``probabilities``
            (label name -> probability).
        """
        columns = [[] for _ in self.text_keys]
        for n, text in enumerate(texts):
            parts = text.split("\t") if len(self.text_keys) == 2 else [text]
            if len(parts) != len(self.text_keys):
                raise ValueError(f"input {n + 1} must be two texts separated by a tab "
                                 f"(premise/sentence 1, hypothesis/sentence 2): {text!r}")
            for column, part in zip(columns, parts):
                column.append(part)
        results = []
        for start in range(0, len(texts), batch_size):
            batch = [tf.constant(c[start:start + batch_size], tf.string) for c in columns]
            features = self.encoder(*batch, pad_to_max=False)
            logits = model(features, training=False)
            probabilities = keras.ops.convert_to_numpy(
                keras.ops.softmax(keras.ops.cast(logits, "float32"), axis=-1))
            for row in probabilities:
                best = int(row.argmax())
                results.append({"label": self.label_names[best], "label_id": best,
                                "probabilities": {name: float(p) for name, p in
                                                  zip(self.label_names, row)}})
        return results


def binary_f1(labels: np.ndarray, predictions: np.ndarray, positive: int = 1
              ) -> dict[str, float]:
    """Precision, recall and F1 of the ``positive`` class, in percent."""
    tp = float(np.sum((predictions == positive) & (labels == positive)))
    fp = float(np.sum((predictions == positive) & (labels != positive)))
    fn = float(np.sum((predictions != positive) & (labels == positive)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": 100.0 * precision, "recall": 100.0 * recall, "f1": 100.0 * f1}


class SST2Task(BertClassificationTask):
    """SST-2 binary sentiment (Socher et al. 2013), accuracy (Devlin et al. Table 1).

    ``params["dataset"]``: ``"glue_sst2"`` (default) trains on GLUE's 67,349 phrases and
    sentences; GLUE does not distribute its test labels, so only dev is evaluated. ``"sst2"``
    reads the treebank's sentences (6,920 train) and also evaluates its labelled test split,
    the 1,821 sentences of GLUE's test set.
    """

    dataset_name = "glue_sst2"
    text_keys = ("text",)
    label_names = ("negative", "positive")
    eval_splits = ("dev",)
    DATASETS = ("glue_sst2", "sst2")

    def __init__(self, params: dict, data_dir: str | None, model_dir: str):
        super().__init__(params, data_dir, model_dir)
        self.dataset_name = self.params.get("dataset", "glue_sst2")
        if self.dataset_name not in self.DATASETS:
            raise ValueError(f"SST2Task dataset must be one of {self.DATASETS}, got "
                             f"{self.dataset_name!r}")
        if self.dataset_name == "sst2":
            self.eval_splits = ("dev", "test")


class MRPCTask(BertClassificationTask):
    """MRPC paraphrase pairs (Dolan & Brockett 2005): F1 of "equivalent" and accuracy.

    GLUE reports F1 and accuracy; Devlin et al. Table 1 prints F1. ``test`` is the labelled
    original MSR test set (1,725 pairs), the set GLUE's leaderboard scores.
    """

    dataset_name = "mrpc"
    text_keys = ("text_a", "text_b")
    label_names = ("not_equivalent", "equivalent")
    metric = "f1"

    def compute_metrics(self, gathered: dict[str, np.ndarray]) -> dict[str, float]:
        metrics = super().compute_metrics(gathered)
        keep = gathered["weights"] > 0
        predictions = gathered["logits"][keep].argmax(-1)
        metrics.update(binary_f1(gathered["labels"][keep], predictions, positive=1))
        return metrics


class SNLITask(BertClassificationTask):
    """SNLI entailment / neutral / contradiction (Bowman et al. 2015), accuracy.

    Only a 20,000-pair sample of SNLI train is available offline (``datasets.load`` reports it
    in ``info["sample"]``); dev (9,842) and test (9,824) are complete.
    """

    dataset_name = "snli"
    text_keys = ("text_a", "text_b")
    label_names = ("entailment", "neutral", "contradiction")


class IMDBTask(BertClassificationTask):
    """IMDB reviews (Maas et al. 2011), binary sentiment accuracy (Sun et al. 2019 §5).

    Reviews are long (in a 4,000-review sample of train: median 223 word pieces, 13% above
    510): by default each keeps its first 128 and last 382 pieces (``truncation="head_tail"``).
    ``dev_size`` train reviews are held out as dev; the loader replaces ``<br />`` tags by
    spaces.
    """

    dataset_name = "imdb"
    text_keys = ("text",)
    label_names = ("negative", "positive")
    dataset_options = ("dev_size",)

    def __init__(self, params: dict, data_dir: str | None, model_dir: str):
        super().__init__(params, data_dir, model_dir)
        if "dev_size" not in self.params:
            raise ValueError("IMDBTask needs the dev_size hyperparameter (see IMDB_HPARAMS)")


TASKS: dict[str, type[BertClassificationTask]] = {
    "sst2": SST2Task, "mrpc": MRPCTask, "snli": SNLITask, "imdb": IMDBTask}
HPARAMS: dict[str, dict[str, Any]] = {
    "sst2": SST2_HPARAMS, "mrpc": MRPC_HPARAMS, "snli": SNLI_HPARAMS, "imdb": IMDB_HPARAMS}


# ------------------------------------------------------------------------------ predict
def _run_record(model_dir: str) -> dict[str, Any]:
    for name in ("config.json", "results.json"):
        path = os.path.join(model_dir, name)
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path) as f:
                record = json.load(f)
            if "experiment" in record and "params" in record:
                return record
    raise FileNotFoundError(f"{model_dir} has no config.json or results.json naming the "
                            f"experiment and its params: is it a finished training run?")


def predict(model_dir: str, texts: Sequence[str], *, batch_size: int = 32,
            data_dir: str | None = None) -> list[dict[str, Any]]:
    """Classifies ``texts`` with the best checkpoint of a finished fine-tuning run.

    Args:
        model_dir: the run's directory (``config.json``/``results.json`` and ``best/``).
        texts: one text per input; for pair tasks (MRPC, SNLI) ``"sentence 1<TAB>sentence 2"``.
        batch_size: inputs per forward pass.
        data_dir: passed to the task (not read: prediction needs no dataset).

    Returns:
        One dict per text: ``label``, ``label_id`` and ``probabilities`` (label -> probability).
    """
    from papers import registry
    from training import loop

    record = _run_record(model_dir)
    experiment = registry.get(record["experiment"])
    params = experiment.params_with_overrides(
        {k: v for k, v in record["params"].items() if k in experiment.hparams})
    for key, default in experiment.hparams.items():
        if isinstance(default, tuple) and isinstance(params[key], list):
            params[key] = tuple(params[key])
    task, model = loop.restore_best(experiment, params, model_dir, data_dir)
    if not isinstance(task, BertClassificationTask):
        raise ValueError(f"{record['experiment']} is not a BERT classification experiment")
    return task.predict_texts(model, list(texts), batch_size=batch_size)
