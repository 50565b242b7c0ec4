"""Fine-tuning tasks of Devlin et al. 2019 on the shared loop: SST-2, MRPC, SNLI and IMDB.

Every task fine-tunes all parameters of a pre-trained encoder plus a new classification layer
(§4.1) with the fine-tuning recipe of §A.3: Adam(W) with learning rate in {5e-5, 3e-5, 2e-5},
batch size 16 or 32, 2-4 epochs, dropout 0.1, a 10% linear warm-up, weight decay 0.01 and
gradient clipping at global norm 1.0 (google-research/bert ``run_classifier.py`` and
``optimization.py``).

| task | dataset | input | metric | eval splits |
| --- | --- | --- | --- | --- |
| :class:`SST2Task` | ``glue_sst2`` or ``sst2`` | sentence | accuracy | dev (+ test for ``sst2``) |
| :class:`MRPCTask` | ``mrpc`` | sentence pair | F1 of "equivalent" (and accuracy) | dev, test |
| :class:`SNLITask` | ``snli`` | premise, hypothesis | accuracy | dev, test |
| :class:`IMDBTask` | ``imdb`` | review, head+tail truncated | accuracy | dev (held out), test |

The hyperparameters of each experiment, and the A.3 grid, are in
``papers/devlin2019/experiments.py``; ``train.py --params`` overrides them by name.

Example:

```python
task = SST2Task(SST2_HPARAMS, data_dir="/data", model_dir="/tmp/run")
task.prepare(RunEnv(cache_dir="/tmp/cache"))
batches = task.dataset(DataRequest("train", batch_size=32, training=True, seed=0))
model = task.build_model()
optimizer = task.build_optimizer(total_steps=1000)
```
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from datasets import wordpiece
from datasets.batching import DataRequest
from papers.devlin2019 import encoders
from papers.devlin2019.experiments import BASE_HPARAMS
from papers.devlin2019.model import build_classifier
from training import export, optimizers
from training.task import Task, text_columns

class BertClassificationTask(Task):
    """Fine-tunes a BERT encoder to classify a text or a text pair (Devlin et al. 2019, §4.1).

    Subclasses set :attr:`dataset_name`, :attr:`text_keys`, :attr:`label_names` and the
    metric. ``model_dir`` receives ``encoder.json`` (the resolved encoder) and a copy of the
    vocabulary in :meth:`prepare`.
    """

    dataset_name: str = ""
    text_keys: tuple[str, ...] = ("text",)

    @property
    def prediction_columns(self) -> int:
        return len(self.text_keys)
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
        self._splits: dict[str, tuple[tf.data.Dataset, int, str]] = {}

    # ----------------------------------------------------------------------------- data
    def data_identity(self) -> dict[str, Any]:
        return {split: self._load(split)[2] for split in ("train", "dev")}

    def prepare(self, env) -> None:
        """Records the resolved encoder and its vocabulary in the model dir (once); a restart
        whose encoder's vocabulary file has other bytes is refused."""
        if not self.model_dir:
            return
        from training import io
        from training.run_dir import RunDirError

        path = os.path.join(self.model_dir, "encoder.json")
        if not io.exists(path):
            io.atomic_write_json(path, self.spec.to_json())
        path = os.path.join(self.model_dir, "vocab.txt")
        with tf.io.gfile.GFile(self.spec.vocab_path, "rb") as f:
            vocab = f.read()
        if not io.exists(path):
            io.atomic_write_bytes(path, vocab)
        elif io.read_bytes(path) != vocab:  # the encoder's files changed under the same name
            raise RunDirError(f"{self.spec.vocab_path} is not the vocabulary this run was "
                              f"trained with ({path}): the tokens would map to other ids; use "
                              "a new --model_dir for this encoder")

    def split_options(self, split: str) -> dict[str, Any]:
        return {k: self.params[k] for k in self.dataset_options}

    def _load(self, split: str) -> tuple[tf.data.Dataset, int, str]:
        """``(examples, count, fingerprint)`` of ``split`` (or of its fixed subset)."""
        if split not in self._splits:
            loaded = self.split(split)
            columns = loaded.columns
            limit = int(self.params["train_examples" if split == "train" else "eval_examples"])
            indices = loaded.subset(limit, int(self.params["subset_seed"]))
            labels = np.asarray(columns["label"], np.int64)[indices]
            if (labels < 0).any():
                raise ValueError(f"{self.dataset_name} {split} has unlabelled examples "
                                 f"(label -1): it cannot be trained or evaluated on")
            tensors = {k: tf.constant(np.asarray(columns[k], dtype=object)[indices], tf.string)
                       for k in self.text_keys}
            tensors["label"] = tf.constant(labels)
            self._splits[split] = (tf.data.Dataset.from_tensor_slices(tensors), len(indices),
                                   loaded.fingerprint(indices))
        return self._splits[split]

    def num_examples(self, split: str) -> int:
        return self._load(split)[1]

    def dataset(self, request: DataRequest) -> tf.data.Dataset:
        ds, count, _ = self._load(request.split)
        shapes = {"input_context": request.input_context, "static_shapes": request.static_shapes}
        if request.training:
            return wordpiece.train_batches(ds, self.encoder, self.text_keys, request.batch_size,
                                           seed=request.seed, epoch=request.epoch,
                                           group_by_length=self.params["length_bucketing"],
                                           **shapes)
        return wordpiece.eval_batches(ds, self.encoder, self.text_keys, request.batch_size,
                                      num_examples=count, **shapes)

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

    def loss(self, features, labels, outputs) -> tf.Tensor:
        return keras.losses.sparse_categorical_crossentropy(
            labels, tf.cast(outputs, tf.float32), from_logits=True)

    # ----------------------------------------------------------------------------- predict
    def serving_endpoint(self, model: keras.Model):
        """``text`` (or ``text_a``, ``text_b`` for pairs): strings → ``label``, ``label_id``,
        ``probabilities``; WordPiece runs in the graph."""
        names = ("text",) if len(self.text_keys) == 1 else ("text_a", "text_b")

        def serve(*texts):
            features = self.encoder(*texts, pad_to_max=False)
            logits = tf.cast(model(features, training=False), tf.float32)
            return export.classification_outputs(tf.nn.softmax(logits), self.label_names)

        return serve, [tf.TensorSpec([None], tf.string, name=n) for n in names], []

    def predict(self, model: keras.Model, inputs: Sequence[str], output_dir: str = "", *,
                batch_size: int = 32) -> list[dict[str, Any]]:
        """Labels and class probabilities of raw texts (pairs: ``"a<TAB>b"``).

        Returns:
            One dict per input: ``label`` (the name), ``label_id`` and ``probabilities``
            (label name -> probability).
        """
        serve, _, _ = self.serving_endpoint(model)
        columns = text_columns(list(inputs), len(self.text_keys))
        results = []
        for start in range(0, len(columns[0]), batch_size):
            outputs = serve(*[tf.constant(c[start:start + batch_size]) for c in columns])
            results += export.classification_records(outputs, self.label_names)
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

    def compute_metrics(self, gathered: dict[str, np.ndarray], split: str) -> dict[str, float]:
        metrics = super().compute_metrics(gathered, split)
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
            raise ValueError("IMDBTask needs the dev_size hyperparameter (see experiments.py)")


TASKS: dict[str, type[BertClassificationTask]] = {
    "sst2": SST2Task, "mrpc": MRPCTask, "snli": SNLITask, "imdb": IMDBTask}
