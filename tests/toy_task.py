"""A small synthetic classification task for testing the shared loop without real data."""

import os
import signal

import keras
import numpy as np
import tensorflow as tf

from papers.registry import Experiment
from training.task import Task

HPARAMS = {"batch_size": 16, "epochs": 3, "learning_rate": 0.1, "optimizer": "sgd",
           "hidden": 8, "dropout": 0.0, "examples": 256, "nan_example": -1,
           "kill_at_example": -1}


class ToyTask(Task):
    """y = argmax(x @ W*) for a fixed random W*; a two-layer MLP learns it."""

    def _data(self, split):
        rng = np.random.default_rng({"train": 0, "dev": 1, "test": 2}[split])
        n = self.params["examples"] if split == "train" else 100
        x = rng.normal(size=(n, 6)).astype("float32")
        w = np.random.default_rng(42).normal(size=(6, 3)).astype("float32")
        return x, (x @ w).argmax(-1).astype("int64")

    def num_examples(self, split):
        return len(self._data(split)[0])

    def dataset(self, split, *, batch_size, training, seed, epoch=0, input_context=None,
                static_shapes=False):
        x, y = self._data(split)
        if training and self.params["nan_example"] >= 0:
            x[self.params["nan_example"]] = np.nan  # poisons one training batch
        ds = tf.data.Dataset.from_tensor_slices((x, y, np.ones(len(x), "float32")))
        if input_context and input_context.num_input_pipelines > 1:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        if training:
            ds = ds.shuffle(len(x), seed=seed * 1000 + epoch, reshuffle_each_iteration=False)
            if self.params["kill_at_example"] >= 0:
                offset = epoch * len(x)
                ds = ds.enumerate().map(lambda i, e: self._kill_at(i + offset, e))
            return ds.batch(batch_size, drop_remainder=True)
        pad = (-len(x)) % batch_size
        padding = tf.data.Dataset.from_tensors(
            (np.zeros(6, "float32"), np.int64(0), np.float32(0))).repeat(pad)
        return ds.concatenate(padding).batch(batch_size, drop_remainder=static_shapes)

    def _kill_at(self, index, example):
        """SIGKILLs this process when the pipeline reaches the ``kill_at_example``-th training
        example counted over epochs: a crash at an arbitrary point of a run."""

        def maybe_kill(i):
            if int(i) == self.params["kill_at_example"]:
                os.kill(os.getpid(), signal.SIGKILL)
            return i

        index = tf.py_function(maybe_kill, [index], tf.int64)
        with tf.control_dependencies([index]):
            return tuple(tf.identity(t) for t in example)

    def build_model(self):
        inputs = keras.Input((6,))
        h = keras.layers.Dense(self.params["hidden"], activation="tanh")(inputs)
        h = keras.layers.Dropout(self.params["dropout"])(h)
        return keras.Model(inputs, keras.layers.Dense(3)(h))

    def loss(self, labels, outputs):
        return keras.losses.sparse_categorical_crossentropy(labels, outputs, from_logits=True)


TOY = Experiment(name="toy/mlp", task=ToyTask, dataset="synthetic", metric="accuracy",
                 hparams=HPARAMS, description="synthetic 3-class problem")
