"""The shared training loop: replicas, workers, resume after SIGKILL, NaN guard, results."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO
from tests.toy_task import TOY
from training import loop


def _train(tmp_path, name, strategy=None, **overrides):
    params = dict(TOY.hparams)
    config_keys = {f.name for f in loop.dataclasses.fields(loop.RunConfig)}
    config = {k: v for k, v in overrides.items() if k in config_keys}
    params.update({k: v for k, v in overrides.items() if k not in config_keys})
    config.setdefault("verbose", False)
    return loop.train(TOY, params, loop.RunConfig(model_dir=str(tmp_path / name), **config),
                      strategy=strategy)


def _weights(result):
    return [np.asarray(w) for w in result.model.get_weights()]


@pytest.mark.parametrize("clip_norm", [None, 0.05])
def test_one_and_two_replicas_follow_the_same_trajectory(tmp_path, clip_norm):
    one = tf.distribute.MirroredStrategy(["/cpu:0"])
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"],
                                         cross_device_ops=tf.distribute.ReductionToOneDevice())
    assert two.num_replicas_in_sync == 2
    a = _train(tmp_path, "one", strategy=one, steps_per_loop=1, epochs=2, clip_norm=clip_norm)
    b = _train(tmp_path, "two", strategy=two, steps_per_loop=1, epochs=2, clip_norm=clip_norm)
    losses_a = np.array([l for _, l in a.train_losses])
    losses_b = np.array([l for _, l in b.train_losses])
    assert len(losses_a) == 32
    np.testing.assert_allclose(losses_a, losses_b, atol=1e-5, rtol=0)
    assert losses_a[-1] < losses_a[0]
    for wa, wb in zip(_weights(a), _weights(b)):
        np.testing.assert_allclose(wa, wb, atol=1e-5)


def test_clipping_changes_the_update(tmp_path):
    a = _train(tmp_path, "free", steps_per_loop=1, train_steps=3)
    b = _train(tmp_path, "clipped", steps_per_loop=1, train_steps=3, clip_norm=1e-3)
    assert not np.allclose(_weights(a)[0], _weights(b)[0])


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path):
    a = _train(tmp_path, "a", seed=3, dropout=0.3)
    b = _train(tmp_path, "b", seed=3, dropout=0.3)
    c = _train(tmp_path, "c", seed=4, dropout=0.3)
    assert a.train_losses == b.train_losses
    assert a.results["metrics"] == b.results["metrics"]
    assert a.train_losses != c.train_losses


def _run_toy(model_dir, strategy="default", kill_at=-1, dropout=0.3, env=None):
    return subprocess.run(
        [sys.executable, "-m", "tests.run_toy", str(model_dir), strategy, str(kill_at),
         str(dropout)], cwd=REPO, env=env or dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True, text=True, timeout=300)


def test_sigkill_then_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path):
    whole = _run_toy(tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    crashed = _run_toy(tmp_path / "crashed", kill_at=300)  # mid epoch 2 of 3 (256 per epoch)
    assert crashed.returncode == -9, crashed.stderr[-3000:]
    saved = tf.train.latest_checkpoint(str(tmp_path / "crashed" / "checkpoints"))
    assert saved is not None and 0 < int(saved.rsplit("-", 1)[1]) < 48
    resumed = _run_toy(tmp_path / "crashed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = np.load(tmp_path / "whole" / "weights_0.npz")
    b = np.load(tmp_path / "crashed" / "weights_0.npz")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multi_worker_mirrored_two_processes_end_with_the_same_weights(tmp_path):
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), TF_CPP_MIN_LOG_LEVEL="3")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tests.run_toy", str(tmp_path / "mw"),
             "multi_worker_mirrored", "-1", "0.0"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    a = np.load(tmp_path / "mw" / "weights_0.npz")
    b = np.load(tmp_path / "mw" / "weights_1.npz")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    results = json.loads((tmp_path / "mw" / "results.json").read_text())
    assert results["hardware"]["replicas"] == 2
    assert results["metrics"]["dev"]["accuracy"] > 60


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    # Example 200 of the first epoch sits in step 13 (16 per batch): checkpoints at steps 5, 10.
    with pytest.raises(loop.TrainingDiverged, match="loss became nan"):
        _train(tmp_path, "nan", steps_per_loop=1, checkpoint_every=5, nan_example=200)
    saved = tf.train.latest_checkpoint(str(tmp_path / "nan" / "checkpoints"))
    assert saved.endswith("ckpt-10")
    for name, _ in tf.train.list_variables(saved):
        if name.startswith("model/"):
            assert np.isfinite(tf.train.load_variable(saved, name)).all(), name
    results = json.loads((tmp_path / "nan" / "results.json").read_text())
    assert results["status"] == "diverged" and "loss became nan" in results["message"]


def test_results_json_history_curve_and_summaries(tmp_path):
    result = _train(tmp_path, "run", seed=1, epochs=3)
    run = tmp_path / "run"
    results = json.loads((run / "results.json").read_text())
    assert results["experiment"] == "toy/mlp" and results["status"] == "ok"
    assert set(results["metrics"]) == {"dev", "test"}
    assert results["metrics"]["dev"]["examples"] == 100  # padding neither drops nor repeats
    assert results["metrics"]["dev"]["accuracy"] > 60  # 3 classes: chance is about 33
    assert results["steps"] == 48 and results["epochs"] == 3
    assert results["examples_per_second"] > 0 and results["wall_seconds"] > 0
    for key in ("hardware", "versions", "git_commit", "params", "config", "best"):
        assert key in results
    assert results["versions"]["tensorflow"] == tf.__version__
    history = json.loads((run / "history.json").read_text())
    assert [h["step"] for h in history] == [16, 32, 48]
    assert (run / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert tf.io.gfile.glob(str(run / "summaries" / "train" / "events.*"))
    assert tf.train.latest_checkpoint(str(run / "best"))
    assert result.results == results


def test_early_stopping_stops_and_restores_the_best(tmp_path):
    # learning rate 0: the dev metric never improves after the first evaluation.
    result = _train(tmp_path, "es", learning_rate=0.0, epochs=10, patience=2)
    assert result.results["stopped_early"] and result.results["steps"] == 3 * 16
    assert result.results["best"]["step"] == 16
    again = _train(tmp_path, "es", learning_rate=0.0, epochs=10, patience=2)
    assert again.train_losses == [] and again.results["steps"] == 48  # stays stopped


def test_eval_every_n_steps(tmp_path):
    result = _train(tmp_path, "every", epochs=1, eval_every=4)
    history = json.loads((tmp_path / "every" / "history.json").read_text())
    assert [h["step"] for h in history] == [4, 8, 12, 16]
    assert result.results["steps"] == 16
