"""The contract between an experiment and the shared training loop.

A :class:`Task` owns an experiment's data, model, loss and metrics; :mod:`training.loop` owns
strategies, distribution, checkpoints, early stopping, summaries and results. A paper that needs
its own step (teacher forcing, REINFORCE, decoding) overrides :meth:`Task.train_step` or the
evaluation steps; it never forks the loop. This mirrors the Task/Trainer split of the
TensorFlow Model Garden (``official.core.base_task``), reduced to what the suite needs.

The loop asks for batches with a :class:`~datasets.batching.DataRequest` (the split, the
per-replica batch size, training or not, seed and epoch, the input context, fixed shapes), and
:meth:`Task.dataset` answers with tuples ``(features, labels, weights)`` (see
:mod:`datasets.batching`):

- ``features``: a tensor or a dict of tensors, the model's input.
- ``labels``: a tensor (or dict) the loss reads.
- ``weights``: float32 ``[batch]``; 1.0 for a real example and 0.0 for evaluation padding, so
  padding a split to a multiple of the batch size neither drops nor double-counts an example.

A model may return one tensor (the logits) or a dict of outputs (``logits``, ``attention``,
...); :meth:`Task.loss` sees the features, labels and outputs, so a penalty on activations that
needs the inputs' mask is a per-example loss term like any other.

Two evaluations:

- the **selection** evaluation (:meth:`Task.eval_step` → :meth:`Task.compute_metrics`), cheap,
  run on dev during training; :attr:`Task.metric` from it chooses the best checkpoint and drives
  early stopping;
- the **final** evaluation (:meth:`Task.final_eval_step` → :meth:`Task.compute_final_metrics`),
  the paper's test protocol (beam search, corpus-level scores), run on the best checkpoint for
  every split of :attr:`Task.eval_splits` and by ``evaluate.py``. By default it is the
  selection evaluation; a task whose final evaluation has a step of its own overrides
  :meth:`Task.final_eval_step` and says so with :attr:`Task.has_final_eval_step` (checked when
  the class is defined). Otherwise the final evaluation on dev reuses the outputs of the last
  selection evaluation when the best weights are the ones it ran on.

The loop gathers the per-example outputs of every step from all replicas and workers; outputs
whose shape varies from batch to batch (a decoded sequence, an attention map) are padded with
zeros to a common shape first. Row *i* of every gathered array is example *i* of the split
(rows past the split's end have weight 0), so a metric over the whole split (BLEU) can look up
each example's references. After the final evaluation, on the chief only,
:meth:`Task.write_artifacts` may write files (heat maps, sample outputs) into the model dir.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

import datasets
from datasets import files
from datasets.batching import DataRequest
from datasets.errors import UserError
from training.distribute import apply_gradients


@dataclasses.dataclass
class RunEnv:
    """What :meth:`Task.prepare` may use beyond its own data.

    Args:
        cache_dir: a folder shared by runs (``--cache_dir``) for expensive, reusable work such
            as a frozen CNN's image features (:mod:`training.cache`).
        is_chief: whether this process writes shared files.
        barrier: blocks until every worker has called it (a no-op in one process).
        read_data: ``False`` when a trained run is loaded to predict from raw input
            (``evaluate.py --predict``): the task reads what its model dir holds (vocabulary,
            :meth:`Task.run_record` files) and no dataset, nor prepares what only training and
            evaluation read (cached features).
    """

    cache_dir: str
    is_chief: bool = True
    barrier: Callable[[], None] = lambda: None
    read_data: bool = True


class PredictionNotSupported(UserError, NotImplementedError):
    """The task cannot label raw input (``evaluate.py --predict``)."""


class Task:
    """Base class for one experiment.

    Args:
        params: the experiment's hyperparameters (defaults merged with ``--params``).
        data_dir: where the raw datasets live (``None``: the online source, e.g. TFDS).
        model_dir: the run's directory; vocabularies and other artefacts are written here.

    Subclasses implement :meth:`dataset`, :meth:`build_model` and :meth:`loss`, and usually
    :meth:`compute_metrics`. A task that reads a registered dataset names it in
    :attr:`dataset_name`: :meth:`split` then loads each split once, and :meth:`num_examples`
    and :meth:`data_identity` follow from it; :meth:`vocabulary` reads the run's
    ``vocab.txt`` or builds it.
    """

    #: name of the selection metric (early stopping and the best checkpoint).
    metric: str = "accuracy"
    #: "max" if a larger metric is better.
    metric_mode: str = "max"
    #: splits given the final evaluation after training (on the best checkpoint).
    eval_splits: tuple[str, ...] = ("dev", "test")
    #: True if :meth:`final_eval_step` is the task's own, not :meth:`eval_step`.
    has_final_eval_step: bool = False
    #: the dataset :meth:`split` loads (a name of ``datasets.load``); ``None``: the task's own.
    dataset_name: str | None = None
    #: tab-separated texts in one raw input of :meth:`predict` (1: a text, 2: a pair)
    prediction_columns: int = 1

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "final_eval_step" in cls.__dict__ and "has_final_eval_step" not in cls.__dict__:
            raise TypeError(f"{cls.__name__} overrides final_eval_step: set "
                            "has_final_eval_step = True (or False if it is eval_step)")

    def __init__(self, params: dict, data_dir: str | None, model_dir: str):
        self.params = dict(params)
        self.data_dir = data_dir
        self.model_dir = model_dir
        self._loaded_splits: dict[str, datasets.LoadedSplit] = {}
        #: the shapes and dtypes of the model's input, recorded by ``training.run.build_model``
        self.model_inputs: dict | None = None

    # ----------------------------------------------------------------------------- data
    def split_options(self, split: str) -> dict[str, Any]:
        """Options of ``datasets.load`` for ``split`` (default none)."""
        return {}

    def split(self, name: str) -> datasets.LoadedSplit:
        """Split ``name`` of :attr:`dataset_name`, loaded once (with :meth:`split_options`)."""
        if name not in self._loaded_splits:
            self._loaded_splits[name] = datasets.load(self.dataset_name, name, self.data_dir,
                                                      **self.split_options(name))
        return self._loaded_splits[name]

    def vocabulary(self, build: Callable[[], datasets.Vocabulary]) -> datasets.Vocabulary:
        """The run's ``MODEL_DIR/vocab.txt`` if it exists (a resumed or evaluated run), else
        ``build()``, saved there."""
        path = os.path.join(self.model_dir, "vocab.txt")
        if files.exists(path):
            return datasets.Vocabulary.load(path)
        vocab = build()
        vocab.save(path)
        return vocab

    def run_record(self, name: str, build: Callable[[], Any]) -> Any:
        """The JSON file ``MODEL_DIR/name`` if it exists, else ``build()``, saved there.

        What prediction needs besides the weights and the vocabulary (label names, which
        embedding rows train) is kept in the run dir this way when a run starts, so
        ``evaluate.py --predict`` reads no dataset.
        """
        path = os.path.join(self.model_dir, name)
        if files.exists(path):
            return files.read_json(path)
        value = files.to_json(build())
        files.atomic_write_json(path, value)
        return value

    def data_identity(self) -> dict[str, Any]:
        """What identifies the data a run trains and selects on (part of the run's identity).

        Default: fingerprints of the train and dev examples of :attr:`dataset_name`
        (``LoadedSplit.fingerprint``), or nothing beyond the hyperparameters when the task
        makes its own data (synthetic data).
        """
        if self.dataset_name is None:
            return {}
        return {name: self.split(name).fingerprint() for name in ("train", "dev")}

    def prepare(self, env: RunEnv) -> None:
        """Runs once before the model is built: vocabularies, cached features and the like.

        Every worker of a multi-worker run calls it; what only one process should compute goes
        through ``env`` (:mod:`training.cache`). Per-run artefacts go into ``self.model_dir``,
        written only when absent, so a restart rewrites nothing.
        """

    def num_examples(self, split: str) -> int:
        """Number of examples in ``split`` (for steps per epoch and schedules); default: the
        rows of :meth:`split`."""
        if self.dataset_name is None:
            raise NotImplementedError
        return self.split(split).num_rows

    def dataset(self, request: DataRequest) -> tf.data.Dataset:
        """Returns batches ``(features, labels, weights)`` of ``request.split``.

        ``request`` (:class:`~datasets.batching.DataRequest`) says the per-replica batch size,
        whether to shuffle (seeded by its seed and epoch) and drop the remainder or keep the
        order and pad, the input context of a distributed dataset, and whether every batch is
        padded to fixed lengths; :func:`datasets.batching.batches` builds such batches.
        """
        raise NotImplementedError

    # ----------------------------------------------------------------------------- model
    def build_model(self) -> keras.Model:
        raise NotImplementedError

    def build_optimizer(self, total_steps: int) -> keras.optimizers.Optimizer:
        """Default: ``params['optimizer']`` (sgd, adam, adagrad, adadelta, rmsprop) at
        ``params['learning_rate']``."""
        name = self.params.get("optimizer", "adam")
        lr = self.params.get("learning_rate", 1e-3)
        kinds = {
            "sgd": lambda: keras.optimizers.SGD(lr, momentum=self.params.get("momentum", 0.0)),
            "adam": lambda: keras.optimizers.Adam(lr),
            "adagrad": lambda: keras.optimizers.Adagrad(lr),
            "adadelta": lambda: keras.optimizers.Adadelta(lr, rho=0.95, epsilon=1e-6),
            "rmsprop": lambda: keras.optimizers.RMSprop(lr),
        }
        if name not in kinds:
            raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(kinds)}")
        return kinds[name]()

    def loss(self, features: Any, labels: Any, outputs: Any) -> tf.Tensor:
        """Per-example loss ``[batch]`` (before weighting and averaging)."""
        raise NotImplementedError

    def regularization_loss(self, model: keras.Model) -> tf.Tensor:
        """A per-step penalty (for example λΣW²) added once per global batch."""
        return tf.add_n(model.losses) if model.losses else tf.constant(0.0)

    @staticmethod
    def logits(outputs: Any) -> tf.Tensor:
        """The logits of a model's outputs (the tensor itself, or ``outputs["logits"]``)."""
        return outputs["logits"] if isinstance(outputs, dict) else outputs

    # ----------------------------------------------------------------------------- steps
    def train_step(self, inputs, model: keras.Model, optimizer, *, global_batch_size: int,
                   clip_norm: float | None) -> dict[str, tf.Tensor]:
        """One replica's training step; returns scalars to sum over replicas.

        The loss is the sum of weighted per-example losses divided by the *global* batch size,
        so summing gradients over replicas gives the gradient of the global-batch mean.
        """
        features, labels, weights = inputs
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            outputs = model(features, training=True)
            per_example = tf.cast(self.loss(features, labels, outputs), tf.float32)
            data_loss = tf.reduce_sum(per_example * weights) / global_batch_size
            loss = data_loss + tf.cast(self.regularization_loss(model), tf.float32) / replicas
            scaled = optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
        variables = model.trainable_variables
        grads = tape.gradient(scaled, variables)
        apply_gradients(optimizer, grads, variables, clip_norm)
        return {"loss": loss, "data_loss": data_loss}

    def eval_step(self, inputs, model: keras.Model) -> dict[str, tf.Tensor]:
        """One replica's selection-evaluation step; returns per-example tensors.

        Default: ``logits``, ``labels``, ``weights`` and the per-example ``loss``.
        """
        features, labels, weights = inputs
        outputs = model(features, training=False)
        return {"logits": tf.cast(self.logits(outputs), tf.float32), "labels": labels,
                "weights": weights,
                "loss": tf.cast(self.loss(features, labels, outputs), tf.float32)}

    def compute_metrics(self, gathered: dict[str, np.ndarray], split: str) -> dict[str, float]:
        """Metrics from the gathered outputs of a whole split; weight-0 rows are ignored.

        Default: accuracy of ``argmax(logits)`` (percent), the mean loss and the example count.
        """
        keep = gathered["weights"] > 0
        labels = gathered["labels"][keep]
        predictions = gathered["logits"][keep].argmax(-1)
        return {"accuracy": 100.0 * float(np.mean(predictions == labels)),
                "loss": float(np.mean(gathered["loss"][keep])),
                "examples": int(keep.sum())}

    def final_eval_step(self, inputs, model: keras.Model) -> dict[str, tf.Tensor]:
        """The final evaluation's step (the paper's test protocol); default :meth:`eval_step`.

        A task that overrides it sets :attr:`has_final_eval_step`.
        """
        return self.eval_step(inputs, model)

    def compute_final_metrics(self, gathered: dict[str, np.ndarray], split: str
                              ) -> dict[str, float]:
        """The final evaluation's metrics; default :meth:`compute_metrics`."""
        return self.compute_metrics(gathered, split)

    def write_artifacts(self, model: keras.Model, split: str, gathered: dict[str, np.ndarray],
                        directory: str) -> list[str]:
        """Writes files about a finished final evaluation (chief only); returns their paths."""
        return []

    # ----------------------------------------------------------------------------- predict
    def predict(self, model: keras.Model, inputs: Sequence[str], output_dir: str
                ) -> list[dict[str, Any]]:
        """Labels raw inputs (a text, ``"a<TAB>b"``, an image path); one dict per input.

        A dict may name files it wrote into ``output_dir`` (``"files"``). Tasks that cannot
        raise :class:`PredictionNotSupported`.
        """
        raise PredictionNotSupported(f"{type(self).__name__} does not support prediction "
                                     "from raw input")

    @classmethod
    def supports_prediction(cls) -> bool:
        """Whether :meth:`predict` labels raw input (the task overrides it)."""
        return cls.predict is not Task.predict

    def input_problem(self, raw: str) -> str | None:
        """Why ``raw`` is not an input :meth:`predict` takes (``None``: it is one).

        ``evaluate.py`` checks every input with it before it loads the run, so it reads no
        data and no weights. Default: :attr:`prediction_columns` non-empty texts separated by
        tabs.
        """
        return columns_problem(raw, self.prediction_columns)

    def serving_endpoint(self, model: keras.Model):
        """``(fn, input_signature, resources)`` of a SavedModel signature on raw input
        (:mod:`training.export`): ``fn`` maps the raw inputs to a dict of outputs; resources
        are the lookup tables it uses (the variables it reads, an image encoder's included,
        are found from ``fn`` itself). Tasks that cannot raise :class:`PredictionNotSupported`."""
        raise PredictionNotSupported(f"{type(self).__name__} cannot be exported for serving "
                                     "on raw input")


def text_columns(inputs: Sequence[str], count: int) -> list[list[str]]:
    """Splits raw prediction inputs into ``count`` text columns (pairs are ``"a<TAB>b"``).

    Raises:
        ValueError: an input is empty or does not have ``count`` tab-separated parts; the
            message names the input's position.
    """
    columns: list[list[str]] = [[] for _ in range(count)]
    for n, text in enumerate(inputs, start=1):
        problem = columns_problem(text, count)
        if problem:
            raise ValueError(f"input {n} {problem}")
        parts = text.split("\t") if count > 1 else [text]
        for column, part in zip(columns, parts):
            column.append(part.strip())
    return columns


def columns_problem(text: str, count: int) -> str | None:
    """Why ``text`` is not ``count`` non-empty texts separated by tabs (``None``: it is)."""
    parts = text.split("\t") if count > 1 else [text]
    if len(parts) == count and all(p.strip() for p in parts):
        return None
    what = ("two non-empty texts separated by a tab (premise/sentence 1, "
            "hypothesis/sentence 2)" if count == 2 else "a non-empty text")
    found = f", not {len(parts)} parts" if count > 1 and len(parts) != count else ""
    return f"must be {what}{found}: {text!r}"


def steps_per_epoch(num_examples: int, global_batch_size: int) -> int:
    """Training steps per epoch: every whole global batch (at least 1)."""
    return max(1, num_examples // global_batch_size)


def eval_steps(num_examples: int, global_batch_size: int) -> int:
    """Evaluation steps that cover every example once (the last batch padded)."""
    return max(1, math.ceil(num_examples / global_batch_size))
