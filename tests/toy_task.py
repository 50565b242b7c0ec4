"""A small synthetic classification task for testing the shared loop without real data."""

import os
import signal
import time

import keras
import numpy as np
import tensorflow as tf

from datasets import batching
from papers import registry
from papers.registry import Experiment
from training import cache
from training.task import Task

HPARAMS = {"batch_size": 16, "epochs": 3, "train_steps": 0, "clip_norm": 0.0, "patience": 0,
           "learning_rate": 0.1, "optimizer": "sgd", "hidden": 8, "dropout": 0.0,
           "examples": 256, "nan_example": -1, "nan_from_epoch": 0, "inf_weights_at_step": -1}
#: Test harness controls, not hyperparameters (a restarted run must keep its identity).
KILL_AT_BATCH = "TOY_KILL_AT_BATCH"
#: The signal ``$TOY_KILL_AT_BATCH`` sends (its name, e.g. ``SIGTERM``; default ``SIGKILL``).
KILL_SIGNAL = "TOY_KILL_SIGNAL"
SECONDS_PER_BATCH = "TOY_SECONDS_PER_BATCH"
#: The chief sleeps this many seconds before each checkpoint save (``tests/run_toy.py``), so
#: another worker that read the chief's files without waiting for it would read old ones.
SLOW_CHIEF_SAVES = "TOY_SLOW_CHIEF_SAVES"


class ToyTask(Task):
    """y = argmax(x @ W*) for a fixed random W*; a two-layer MLP learns it.

    ``nan_example``: that training example is NaN in every epoch from ``nan_from_epoch`` on.
    ``inf_weights_at_step``: after that step a weight becomes +inf while the step's loss is
    finite (weights that stop being finite before the loss does).
    ``$TOY_KILL_AT_BATCH``: the process SIGKILLs itself when its training pipeline produces
    that batch (counted over epochs): a crash at an arbitrary point of a run; with
    ``$TOY_KILL_SIGNAL`` it sends that signal instead (a preemption, a Ctrl-C).
    ``$TOY_SECONDS_PER_BATCH`` slows the pipeline down, so a test can act while it trains.

    The evaluation also returns ``echo``, each example's first feature repeated a number of
    times that differs from batch to batch and replica to replica, and the metrics check that
    the gathered rows come back in the split's order with zeros after each row's width. The
    training inputs go through the shared cache (``training.cache``), chief first.
    """

    def prepare(self, env):
        self._train_x = cache.cached_array(env, "toy", {"examples": self.params["examples"]},
                                           self._compute_train_x, log=lambda _: None)

    def _compute_train_x(self):
        # Like a frozen encoder built to fill a feature cache, filling this cache draws random
        # numbers (a layer's initialisation) that a run finding the cache full does not draw.
        keras.layers.Dense(4).build((None, 6))
        return self._draw("train")[0]

    def _draw(self, split):
        rng = np.random.default_rng({"train": 0, "dev": 1, "test": 2}[split])
        n = self.params["examples"] if split == "train" else 100
        x = rng.normal(size=(n, 6)).astype("float32")
        w = np.random.default_rng(42).normal(size=(6, 3)).astype("float32")
        return x, (x @ w).argmax(-1).astype("int64")

    def _data(self, split):
        x, y = self._draw(split)
        if split == "train" and hasattr(self, "_train_x"):
            x = np.array(self._train_x)
        return x, y

    def num_examples(self, split):
        return len(self._data(split)[0])

    def dataset(self, request):
        x, y = self._data(request.split)
        epoch = request.epoch
        if (request.training and self.params["nan_example"] >= 0
                and epoch >= self.params["nan_from_epoch"]):
            x[self.params["nan_example"]] = np.nan  # poisons one training batch
        ds = tf.data.Dataset.from_tensor_slices({"x": x, "label": y})
        ds = batching.batches(ds, request, split_fn=lambda batch: (batch["x"], batch["label"]))
        if not request.training:
            return ds
        kill_at = int(os.environ.get(KILL_AT_BATCH, -1))
        self._signal = getattr(signal, os.environ.get(KILL_SIGNAL, "SIGKILL"))
        seconds = float(os.environ.get(SECONDS_PER_BATCH, 0))
        if kill_at >= 0 or seconds > 0:
            offset = epoch * (len(x) // request.batch_size)
            ds = ds.enumerate().map(lambda i, batch: self._pace(i + offset, batch, kill_at,
                                                                seconds))
        return ds

    def _pace(self, index, batch, kill_at, seconds):
        def pace(i):
            if seconds > 0:
                time.sleep(seconds)
            if int(i) == kill_at:
                os.kill(os.getpid(), self._signal)
            return i

        index = tf.py_function(pace, [index], tf.int64)
        with tf.control_dependencies([index]):
            return tf.nest.map_structure(tf.identity, batch)

    def train_step(self, inputs, model, optimizer, **kwargs):
        out = super().train_step(inputs, model, optimizer, **kwargs)
        at = self.params["inf_weights_at_step"]
        if at >= 0:
            kernel = model.trainable_variables[0]
            poison = tf.equal(optimizer.iterations, at)
            kernel.assign(tf.where(poison, tf.fill(kernel.shape, np.inf), kernel.value))
        return out

    def eval_step(self, inputs, model):
        out = super().eval_step(inputs, model)
        features, labels, _ = inputs
        width = 1 + tf.cast(tf.reduce_sum(labels) % 4, tf.int32)  # 1-4, varies by batch
        out["echo"] = tf.tile(features[:, :1], [1, width])
        return out

    def compute_metrics(self, gathered, split):
        metrics = super().compute_metrics(gathered, split)
        x = self._data(split)[0]
        echo = gathered["echo"][:len(x)]
        width = (echo != 0).sum(axis=1)
        prefix_ok = [np.all(row[:w] == x0) and np.all(row[w:] == 0) and w >= 1
                     for row, w, x0 in zip(echo, width, x[:, 0])]
        metrics["rows_in_order"] = 100.0 * float(np.mean(prefix_ok))
        metrics["echo_widths"] = int(len(set(width.tolist())))
        return metrics

    def build_model(self):
        inputs = keras.Input((6,))
        h = keras.layers.Dense(self.params["hidden"], activation="tanh")(inputs)
        h = keras.layers.Dropout(self.params["dropout"])(h)
        return keras.Model(inputs, keras.layers.Dense(3)(h))

    def loss(self, features, labels, outputs):
        return keras.losses.sparse_categorical_crossentropy(labels, outputs, from_logits=True)


TOY = Experiment(name="toy/mlp", task=ToyTask, dataset="synthetic", metric="accuracy",
                 hparams=HPARAMS, description="synthetic 3-class problem",
                 grid={"learning_rate": (0.3, 0.1, 0.03), "batch_size": (16, 32)})
registry.check_params(HPARAMS, TOY.name)
