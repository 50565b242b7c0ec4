"""End to end: a short BERT fine-tune on real SST-2 through the shared loop, two replicas."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from datasets.batching import DataRequest
from papers.devlin2019 import experiments, task as tasks
from papers.registry import Experiment
from training import loop

PARAMS = {**experiments.SST2_HPARAMS, "dataset": "sst2", "train_examples": 256,
          "eval_examples": 200, "batch_size": 16, "epochs": 2, "learning_rate": 1e-4,
          "max_seq_length": 48, "pooling": "mean"}
SMOKE = Experiment(name="devlin2019_smoke/sst2_minilm_256", task=tasks.SST2Task,
                   dataset="sst2", metric="accuracy", hparams=PARAMS,
                   description="256 SST-2 sentences, 2 epochs (test only)")


def _accuracy(task, model):
    correct = total = 0
    for features, labels, weights in task.dataset(DataRequest("dev", batch_size=16,
                                                              static_shapes=True)):
        predictions = np.asarray(model(features, training=False)).argmax(-1)
        keep = weights.numpy() > 0
        correct += int((predictions[keep] == labels.numpy()[keep]).sum())
        total += int(keep.sum())
    return 100.0 * correct / total


@pytest.mark.slow
def test_short_fine_tune_lifts_dev_accuracy_with_two_replicas(data_dir, tmp_path):
    keras.utils.set_random_seed(0)
    untrained_task = tasks.SST2Task(PARAMS, data_dir, str(tmp_path / "untrained"))
    untrained = _accuracy(untrained_task, untrained_task.build_model())

    strategy = tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice())
    assert strategy.num_replicas_in_sync == 2
    model_dir = tmp_path / "run"
    config = loop.RunConfig(model_dir=str(model_dir), data_dir=data_dir, static_shapes=True,
                            steps_per_loop=4, verbose=False)
    result = loop.train(SMOKE, dict(PARAMS), config, strategy=strategy)

    metrics = result.results["metrics"]
    assert metrics["dev"]["examples"] == 200 and metrics["test"]["examples"] == 200
    assert result.results["steps"] == 2 * (256 // 16)
    dev = metrics["dev"]["accuracy"]
    assert dev >= untrained + 8.0 and dev >= 62.0, (untrained, dev)
    losses = [loss for _, loss in result.train_losses]
    assert np.mean(losses[-2:]) < losses[0] - 0.1
    assert json.loads((model_dir / "encoder.json").read_text())["num_layers"] == 6

    task, model = loop.restore_best(SMOKE, dict(PARAMS), str(model_dir), data_dir)
    predictions = task.predict(model, ["a gorgeous, witty, seductive movie.",
                                       "the plot is nothing but boilerplate clichés."])
    assert [set(p["probabilities"]) for p in predictions] == [{"negative", "positive"}] * 2
    assert predictions[0]["probabilities"]["positive"] > predictions[1]["probabilities"][
        "positive"]
