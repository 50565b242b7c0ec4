"""The shared training loop: replicas, workers, resume after SIGKILL, run safety, NaN guard."""

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO
from tests.toy_task import (KILL_AT_BATCH, KILL_SIGNAL, SECONDS_PER_BATCH, SLOW_CHIEF_SAVES,
                             TOY)
from training import grappler, io, loop, run_dir
from training import run as loop_run

CONFIG_KEYS = {f.name for f in dataclasses.fields(loop.RunConfig)}


def _train(tmp_path, name, strategy=None, **overrides):
    config = {k: v for k, v in overrides.items() if k in CONFIG_KEYS}
    params = TOY.params_with_overrides({k: v for k, v in overrides.items()
                                        if k not in CONFIG_KEYS})
    config.setdefault("verbose", False)
    config.setdefault("cache_dir", str(tmp_path / "cache"))
    return loop.train(TOY, params, loop.RunConfig(model_dir=str(tmp_path / name), **config),
                      strategy=strategy)


def _weights(result):
    return [np.asarray(w) for w in result.model.get_weights()]


def _two_replicas():
    strategy = tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice())
    assert strategy.num_replicas_in_sync == 2
    return strategy


@pytest.mark.parametrize("clip_norm", [0.0, 0.05])
def test_one_and_two_replicas_follow_the_same_trajectory(tmp_path, clip_norm):
    one = tf.distribute.MirroredStrategy(["/cpu:0"])
    a = _train(tmp_path, "one", strategy=one, steps_per_loop=1, epochs=2, clip_norm=clip_norm)
    b = _train(tmp_path, "two", strategy=_two_replicas(), steps_per_loop=1, epochs=2,
               clip_norm=clip_norm)
    losses_a = np.array([loss for _, loss in a.train_losses])
    losses_b = np.array([loss for _, loss in b.train_losses])
    assert len(losses_a) == 32
    np.testing.assert_allclose(losses_a, losses_b, atol=1e-5, rtol=0)
    assert np.mean(losses_a[-8:]) < np.mean(losses_a[:8])
    for wa, wb in zip(_weights(a), _weights(b)):
        np.testing.assert_allclose(wa, wb, atol=1e-5)
    for run in (a, b):  # outputs of varying width come back in order, zero-padded
        dev = run.results["metrics"]["dev"]
        assert dev["rows_in_order"] == 100.0 and dev["echo_widths"] > 1
        assert dev["examples"] == 100


@pytest.mark.parametrize("replicas", [1, 2])
@pytest.mark.parametrize("loss_scale", [None, 2.0 ** 15])
def test_clipping_clips_the_summed_gradient_by_hand(replicas, loss_scale):
    """SGD (learning rate 0.5) from w = (1, 1), the global-batch gradient (3, 4) (norm 5)
    clipped to norm 1: w = (1, 1) - 0.5 · (0.6, 0.8) = (0.7, 0.6). On two replicas the
    gradient arrives in shares (3, 0) and (0, 4); clipping each share, as Keras's own
    ``clipnorm`` would, gives (0.5, 0.5) instead. Under loss scaling the shares arrive
    multiplied by the scale and the threshold still applies to the true gradient."""
    import keras

    from training.distribute import apply_gradients

    strategy = (tf.distribute.MirroredStrategy(["/cpu:0"]) if replicas == 1
                else _two_replicas())
    shares = tf.constant([[3.0, 0.0], [0.0, 4.0]] if replicas == 2 else [[3.0, 4.0]])
    with strategy.scope():
        w = tf.Variable([1.0, 1.0])
        optimizer = keras.optimizers.SGD(0.5)
        if loss_scale:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer,
                                                            initial_scale=loss_scale)
        optimizer.build([w])

    def step():
        share = shares[tf.distribute.get_replica_context().replica_id_in_sync_group]
        apply_gradients(optimizer, [share * (loss_scale or 1.0)], [w], clip_norm=1.0)

    strategy.run(tf.function(step))
    np.testing.assert_allclose(w.numpy(), [0.7, 0.6], rtol=1e-6)


def test_mixed_float16_trains_with_loss_scaling_and_clipping(tmp_path):
    """The toy in mixed_float16 (float16 computation, a loss-scaled optimizer) with the
    gradient clipped, against the same run in float32: the clipping threshold applies to the
    unscaled gradient, so both follow one trajectory up to float16's rounding (clipping the
    gradient still multiplied by the loss scale would shrink every step about 30,000-fold)."""
    config = dict(steps_per_loop=1, epochs=2, clip_norm=0.05, learning_rate=0.5)
    exact = _train(tmp_path, "float32", **config)
    half = _train(tmp_path, "float16", mixed_precision="mixed_float16", **config)
    losses = np.array([loss for _, loss in half.train_losses])
    np.testing.assert_allclose(losses, [loss for _, loss in exact.train_losses], atol=0.02)
    assert np.mean(losses[-8:]) < 0.9 * np.mean(losses[:8])
    saved = tf.train.latest_checkpoint(str(tmp_path / "float16" / "checkpoints"))
    scale = [n for n, _ in tf.train.list_variables(saved) if "dynamic_scale" in n]
    assert scale, "the checkpoint holds no loss scale"
    for a, b in zip(_weights(exact), _weights(half)):
        np.testing.assert_allclose(a, b, atol=0.02)


#: The keys of the toy's checkpoints as the suite wrote them before its loop was split into
#: parts (training/checkpoints.py): runs started then resume only if the names stay.
LATEST_KEYS = [
    "_CHECKPOINTABLE_OBJECT_GRAPH", "best_metric/.ATTRIBUTES/VARIABLE_VALUE",
    "epoch/.ATTRIBUTES/VARIABLE_VALUE", "evals_since_best/.ATTRIBUTES/VARIABLE_VALUE",
    "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE",
    "optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE",
    *[f"optimizer/_trainable_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE" for i in range(4)],
    "rng/s0/.ATTRIBUTES/VARIABLE_VALUE", "save_counter/.ATTRIBUTES/VARIABLE_VALUE",
    "step_in_epoch/.ATTRIBUTES/VARIABLE_VALUE", "train_seconds/.ATTRIBUTES/VARIABLE_VALUE",
]
BEST_KEYS = [
    "_CHECKPOINTABLE_OBJECT_GRAPH",
    *[f"model/_operations/{i}/{w}/.ATTRIBUTES/VARIABLE_VALUE" for i in (1, 3)
      for w in ("_kernel", "bias")],
    "save_counter/.ATTRIBUTES/VARIABLE_VALUE",
]


def test_checkpoints_keep_the_names_earlier_runs_were_saved_with(tmp_path):
    _train(tmp_path, "run", epochs=1, dropout=0.3)
    for folder, keys in (("checkpoints", LATEST_KEYS), ("best", BEST_KEYS)):
        saved = tf.train.latest_checkpoint(str(tmp_path / "run" / folder))
        assert [name for name, _ in tf.train.list_variables(saved)] == keys


def test_the_random_states_keep_the_order_earlier_runs_were_saved_in():
    """``rng/s0``, ``s1``, ... are the model's seed generators in the order earlier runs saved
    them: a layer's own, then its children's with the last child first."""
    import keras

    from training import checkpoints

    class Block(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.first = keras.layers.Dropout(0.1, name="first")
            self.second = keras.layers.Dropout(0.1, name="second")

        def call(self, x, training=False):
            return self.second(self.first(x, training=training), training=training)

    inputs = keras.Input((4,))
    x = keras.layers.Dropout(0.1, name="outer")(inputs)
    block = Block(name="block")
    x = keras.layers.Dropout(0.1, name="last")(block(x))
    model = keras.Model(inputs, x)
    states = checkpoints.rng_states(model)
    owners = [model.get_layer("outer"), block.second, block.first, model.get_layer("last")]
    for n, layer in enumerate(owners):
        assert getattr(states, f"s{n}") is layer.seed_generator.state.value, layer.name
    assert not hasattr(states, f"s{len(owners)}")


def test_a_task_with_its_own_final_step_must_say_so():
    from training.task import Task

    with pytest.raises(TypeError, match="set has_final_eval_step = True"):
        class Beam(Task):
            def final_eval_step(self, inputs, model):
                return {}

    class Declared(Task):
        has_final_eval_step = True

        def final_eval_step(self, inputs, model):
            return {}

    assert Declared.has_final_eval_step and not Task.has_final_eval_step


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path):
    a = _train(tmp_path, "a", seed=3, dropout=0.3)
    b = _train(tmp_path, "b", seed=3, dropout=0.3)
    c = _train(tmp_path, "c", seed=4, dropout=0.3)
    assert a.train_losses == b.train_losses
    assert a.results["metrics"] == b.results["metrics"]
    assert a.train_losses != c.train_losses


def test_a_run_that_fills_the_cache_equals_one_that_finds_it_full(tmp_path):
    cache_dir = str(tmp_path / "shared_cache")
    a = _train(tmp_path, "fills", cache_dir=cache_dir, train_steps=5)
    b = _train(tmp_path, "finds", cache_dir=cache_dir, train_steps=5)
    assert a.train_losses == b.train_losses


def _run_toy(model_dir, strategy="default", params=None, config=None, env=None, wait=True):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    args = [sys.executable, "-m", "tests.run_toy", str(model_dir), strategy,
            json.dumps(params or {}), json.dumps(config or {})]
    if not wait:
        return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _latest_step(model_dir):
    saved = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    return int(saved.rsplit("-", 1)[1]) if saved else 0


def _assert_same_weights(a_dir, b_dir, name="weights_0.npz", atol=0.0):
    a, b = np.load(a_dir / name), np.load(b_dir / name)
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=atol, rtol=0)


def _assert_same_history(a_dir, b_dir):
    """history.json of a resumed run equals an uninterrupted run's: every evaluation's step,
    dev metrics and mean training loss since the previous evaluation."""
    a, b = (json.loads((d / "history.json").read_text()) for d in (a_dir, b_dir))
    assert [h["step"] for h in a] == [h["step"] for h in b] and len(a) == 3
    for x, y in zip(a, b):
        assert x["train_loss"] == y["train_loss"] and x["dev"] == y["dev"]


def test_sigkill_then_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path):
    params = {"dropout": 0.3}
    whole = _run_toy(tmp_path / "whole", params=params)
    assert whole.returncode == 0, whole.stderr[-3000:]
    crashed = _run_toy(tmp_path / "crashed", params=params, env={KILL_AT_BATCH: "20"})
    assert crashed.returncode == -9, crashed.stderr[-3000:]  # mid epoch 2 of 3 (16 a epoch)
    assert 0 < _latest_step(tmp_path / "crashed") < 48
    resumed = _run_toy(tmp_path / "crashed", params=params)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_same_weights(tmp_path / "whole", tmp_path / "crashed")
    _assert_same_history(tmp_path / "whole", tmp_path / "crashed")


@pytest.mark.parametrize("signame, status", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_stops_with_a_checkpoint_at_the_step_and_the_restart_is_exact(
        tmp_path, signame, status):
    """SIGTERM (a preemption) or Ctrl-C mid-epoch, with no periodic checkpoints: the run
    writes a checkpoint at the step it reached, releases the LOCK, says so in one line and
    exits with 128 + the signal's number; the same command then ends with the weights of a run
    never interrupted."""
    params, config = {"dropout": 0.3}, {"checkpoint_every": 0}
    whole = _run_toy(tmp_path / "whole", params=params, config=config)
    assert whole.returncode == 0, whole.stderr[-3000:]
    stopped = _run_toy(tmp_path / "stopped", params=params, config=config,
                       env={KILL_AT_BATCH: "20", KILL_SIGNAL: signame})
    assert stopped.returncode == status, stopped.stderr[-3000:]
    line = stopped.stderr.strip().splitlines()[-1]
    found = re.fullmatch(rf"run_toy.py: stopped: {signame} at step (\d+): the same command "
                         r"resumes the run from (\S+)", line)
    assert found, line
    step, checkpoint = int(found[1]), found[2]
    assert 16 < step < 48 and step % 16  # mid epoch 2: no other checkpoint is due there
    assert checkpoint == tf.train.latest_checkpoint(str(tmp_path / "stopped" / "checkpoints"))
    assert _latest_step(tmp_path / "stopped") == step
    assert not (tmp_path / "stopped" / "LOCK").exists()
    resumed = _run_toy(tmp_path / "stopped", params=params, config=config)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_same_weights(tmp_path / "whole", tmp_path / "stopped")
    _assert_same_history(tmp_path / "whole", tmp_path / "stopped")


def test_a_truncated_latest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    whole = _run_toy(tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    crashed = _run_toy(tmp_path / "crashed", env={KILL_AT_BATCH: "30"})
    assert crashed.returncode == -9
    state = tf.train.get_checkpoint_state(str(tmp_path / "crashed" / "checkpoints"))
    newest, previous = state.all_model_checkpoint_paths[-1], state.all_model_checkpoint_paths[-2]
    data = newest + ".data-00000-of-00001"
    with open(data, "r+b") as f:  # a half-written file, as a crash during a save leaves
        f.truncate(os.path.getsize(data) // 2)
    resumed = _run_toy(tmp_path / "crashed", config={"verbose": True})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"skipping checkpoint {newest}" in resumed.stdout
    assert f"resumed from {previous}" in resumed.stdout
    _assert_same_weights(tmp_path / "whole", tmp_path / "crashed")


def test_a_full_disk_at_a_checkpoint_or_at_results_is_one_line_and_leaves_no_half_files(
        tmp_path, monkeypatch):
    save = tf.train.CheckpointManager.save

    def full(self, checkpoint_number=None, **kwargs):  # as TensorFlow fails on a full disk
        if checkpoint_number >= 20:
            os.makedirs(os.path.join(self.directory, f"ckpt-{checkpoint_number}_temp"))
            raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")
        return save(self, checkpoint_number=checkpoint_number, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", full)
    run = tmp_path / "run"
    with pytest.raises(run_dir.RunDirError) as full_disk:
        _train(tmp_path, "run", checkpoint_every=5)
    assert str(full_disk.value) == (
        f"could not write the checkpoint {run / 'checkpoints' / 'ckpt-20'} (No space left on "
        "device); free space (or make the dir writable) and run the same command again: it "
        "resumes from the newest checkpoint")
    assert not list(run.glob("*/*_temp*")) and not (run / "LOCK").exists()
    assert _latest_step(run) == 16
    monkeypatch.undo()

    write = io.atomic_write_json

    def no_space_for_results(path, obj):
        if path.endswith("results.json"):
            raise OSError(28, "No space left on device")
        write(path, obj)

    monkeypatch.setattr(loop_run.io, "atomic_write_json", no_space_for_results)
    with pytest.raises(run_dir.RunDirError, match=(
            f"^could not write {run / 'results.json'} \\(No space left on device\\); the "
            "checkpoints are kept")):
        _train(tmp_path, "run", checkpoint_every=5)
    assert not (run / "results.json").exists() and not (run / "LOCK").exists()
    monkeypatch.undo()
    assert _train(tmp_path, "run", checkpoint_every=5).results["steps"] == 48


def test_no_restorable_checkpoint_is_a_clear_error(tmp_path):
    _train(tmp_path, "run", epochs=1)
    for path in tf.io.gfile.glob(str(tmp_path / "run" / "checkpoints" / "*.data-*")):
        with open(path, "r+b") as f:
            f.truncate(8)
    with pytest.raises(run_dir.RunDirError, match="no checkpoint in .* restores"):
        _train(tmp_path, "run", epochs=1, reevaluate=True)  # a finished run restores only then


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_workers(model_dir, env=None, kill_after_step=None, sig=signal.SIGKILL,
                 signalled=(0, 1)):
    """Runs the toy on two MultiWorkerMirrored processes; sends ``sig`` to the workers
    ``signalled`` once the chief has checkpointed ``kill_after_step``."""
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        procs.append(_run_toy(model_dir, "multi_worker_mirrored", wait=False,
                              env={"TF_CONFIG": json.dumps(tf_config), **(env or {})}))
    if kill_after_step is not None:
        deadline = time.time() + 240
        while _latest_step(model_dir) < kill_after_step:
            assert time.time() < deadline and all(p.poll() is None for p in procs), \
                [p.communicate()[1][-2000:] for p in procs if p.poll() is not None]
            time.sleep(0.05)
        for index in signalled:
            procs[index].send_signal(sig)
    outputs = [p.communicate(timeout=300) for p in procs]
    return [(p.returncode, err) for p, (_, err) in zip(procs, outputs)]


def test_two_workers_killed_and_restarted_equal_a_two_replica_run(tmp_path):
    """The two-worker job, SIGKILLed mid-run and restarted, ends with the weights of an
    independent single-process MirroredStrategy run with the same global batch.

    Every worker's final weights are compared: after training each restores the best
    checkpoint from the chief's directory. The restarted job's chief saves slowly, so a
    worker that read that directory without waiting for the chief's last save would restore an
    older best checkpoint (as happened on a loaded machine before the loop waited)."""
    reference = _run_toy(tmp_path / "mirrored", "mirrored2")
    assert reference.returncode == 0, reference.stderr[-3000:]

    killed = _two_workers(tmp_path / "mw", env={SECONDS_PER_BATCH: "0.25"}, kill_after_step=10)
    assert [code for code, _ in killed] == [-9, -9]
    assert 10 <= _latest_step(tmp_path / "mw") < 48
    finished = _two_workers(tmp_path / "mw", env={SLOW_CHIEF_SAVES: "0.5"})
    for code, err in finished:
        assert code == 0, err[-3000:]
    mirrored = np.load(tmp_path / "mirrored" / "weights_0.npz")
    for worker in (0, 1):
        weights = np.load(tmp_path / "mw" / f"weights_{worker}.npz")
        for key in mirrored:
            np.testing.assert_allclose(mirrored[key], weights[key], atol=1e-5, rtol=0)
    results = json.loads((tmp_path / "mw" / "results.json").read_text())
    assert results["hardware"]["replicas"] == 2 and results["steps"] == 48
    assert results["metrics"]["dev"]["accuracy"] > 60
    assert results["metrics"]["dev"]["rows_in_order"] == 100.0  # gathered over both workers
    assert results["metrics"]["dev"]["examples"] == 100

    record = (tmp_path / "mw" / "results.json").read_bytes()
    again = _two_workers(tmp_path / "mw")  # a finished job re-runs: its results, nothing more
    for code, err in again:
        assert code == 0, err[-3000:]
    assert (tmp_path / "mw" / "results.json").read_bytes() == record
    _assert_same_weights(tmp_path / "mirrored", tmp_path / "mw", atol=1e-5)


def test_one_preempted_worker_stops_both_at_one_step_and_the_restart_is_exact(tmp_path):
    """SIGTERM to the second worker alone (one VM of the job preempted): both workers agree
    to stop, write the (collective) checkpoint at the same step, say so in one line and exit
    with 143; the restarted job ends with the weights of a two-replica run never stopped."""
    reference = _run_toy(tmp_path / "mirrored", "mirrored2")
    assert reference.returncode == 0, reference.stderr[-3000:]

    stopped = _two_workers(tmp_path / "mw", env={SECONDS_PER_BATCH: "0.25"},
                           kill_after_step=10, sig=signal.SIGTERM, signalled=(1,))
    assert [code for code, _ in stopped] == [143, 143], [err[-2000:] for _, err in stopped]
    lines = [err.strip().splitlines()[-1] for _, err in stopped]
    step = _latest_step(tmp_path / "mw")
    assert 10 <= step < 48 and step % 16  # a checkpoint at the step reached, mid-epoch
    assert lines[0] == (f"run_toy.py: stopped: another worker of the job was stopped at step "
                        f"{step}: the same command resumes the run from "
                        f"{tf.train.latest_checkpoint(str(tmp_path / 'mw' / 'checkpoints'))}")
    assert lines[1].startswith(f"run_toy.py: stopped: SIGTERM at step {step}: ")
    assert not (tmp_path / "mw" / "LOCK").exists()

    finished = _two_workers(tmp_path / "mw")
    for code, err in finished:
        assert code == 0, err[-3000:]
    _assert_same_weights(tmp_path / "mirrored", tmp_path / "mw", atol=1e-5)


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    # Example 200 of the first epoch sits in some step of it; checkpoints every 5 steps.
    with pytest.raises(loop.TrainingDiverged, match="loss became nan") as error:
        _train(tmp_path, "nan", steps_per_loop=1, checkpoint_every=5, nan_example=200)
    saved = tf.train.latest_checkpoint(str(tmp_path / "nan" / "checkpoints"))
    assert saved is not None and saved in str(error.value)
    for name, _ in tf.train.list_variables(saved):
        if name.startswith("model/"):
            assert np.isfinite(tf.train.load_variable(saved, name)).all(), name
    diverged = json.loads((tmp_path / "nan" / "diverged.json").read_text())
    assert diverged["status"] == "diverged" and "loss became nan" in diverged["message"]
    assert not (tmp_path / "nan" / "results.json").exists()


def test_weights_that_stop_being_finite_are_never_checkpointed(tmp_path):
    """The weights become inf after step 10 while every loss up to it is finite."""
    with pytest.raises(loop.TrainingDiverged, match="weights stopped being finite"):
        _train(tmp_path, "inf", steps_per_loop=5, checkpoint_every=5, inf_weights_at_step=10)
    saved = tf.train.latest_checkpoint(str(tmp_path / "inf" / "checkpoints"))
    assert saved.endswith("ckpt-5")
    for name, _ in tf.train.list_variables(saved):
        if name.startswith("model/"):
            assert np.isfinite(tf.train.load_variable(saved, name)).all(), name
    assert "ckpt-5" in json.loads((tmp_path / "inf" / "diverged.json").read_text())["message"]


def test_a_diverged_extension_keeps_the_finished_results(tmp_path):
    poisoned = {"nan_example": 7, "nan_from_epoch": 3}  # clean for epochs 1-3, NaN from 4 on
    finished = _train(tmp_path, "run", epochs=3, **poisoned)
    before = (tmp_path / "run" / "results.json").read_text()
    assert finished.results["status"] == "ok" and finished.results["steps"] == 48
    with pytest.raises(loop.TrainingDiverged):
        _train(tmp_path, "run", epochs=5, extend=True, **poisoned)
    assert (tmp_path / "run" / "results.json").read_text() == before
    diverged = json.loads((tmp_path / "run" / "diverged.json").read_text())
    assert diverged["step"] > 48 and diverged["identity"]["params"]["epochs"] == 5
    # config.json is back at the finished length, the extension listed as diverged ...
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["identity"]["params"]["epochs"] == 3 and config["params"]["epochs"] == 3
    assert "loss became nan" in config["extensions"][-1]["diverged"]
    # ... so the run's own command shows its results and trains nothing,
    again = _train(tmp_path, "run", epochs=3, **poisoned)
    assert again.results == json.loads(before)
    assert (tmp_path / "run" / "results.json").read_text() == before
    # and a table shows it at that length, with a note
    from training import report
    runs = report.collect(str(tmp_path))
    assert [r["extension_diverged"] for r in runs if r["status"] == "ok"] == [True]
    table = report.paper_table(TOY.paper, [TOY], runs, str(tmp_path))
    assert "- note: 1 run(s) shown at the length they finished; an extension of them" in table


@pytest.mark.parametrize("change, key", [
    ({"seed": 1}, "seed: 0 → 1"),
    ({"batch_size": 32}, "params.batch_size: 16 → 32"),
    ({"mixed_precision": "mixed_bfloat16"}, "mixed_precision: 'float32' → 'mixed_bfloat16'"),
    ({"train_steps": 5}, "params.train_steps: 0 → 5"),
    ({"clip_norm": 1.0}, "params.clip_norm: 0.0 → 1.0"),
    ({"epochs": 2}, "params.epochs: 1 → 2"),
])
def test_a_restart_with_other_settings_is_refused_and_changes_nothing(tmp_path, change, key):
    _train(tmp_path, "run", epochs=1)
    config = (tmp_path / "run" / "config.json").read_bytes()
    listing = sorted(os.listdir(tmp_path / "run"))
    with pytest.raises(run_dir.RunDirError) as error:
        _train(tmp_path, "run", **{"epochs": 1, **change})
    assert key in str(error.value) and "new --model_dir" in str(error.value)
    if "epochs" in change:
        assert "--extend" in str(error.value)
    assert (tmp_path / "run" / "config.json").read_bytes() == config
    assert sorted(os.listdir(tmp_path / "run")) == listing


def test_replicas_verbosity_and_loop_settings_may_change_on_resume(tmp_path):
    """One epoch on one replica, then extended to two on two replicas (same global batch),
    with other steps per loop and checkpoints: the weights of a two-epoch run."""
    whole = _train(tmp_path, "whole", epochs=2)
    _train(tmp_path, "resumed", epochs=1)
    resumed = _train(tmp_path, "resumed", strategy=_two_replicas(), epochs=2, extend=True,
                     verbose=True, steps_per_loop=7, checkpoint_every=3)
    for a, b in zip(_weights(whole), _weights(resumed)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    config = json.loads((tmp_path / "resumed" / "config.json").read_text())
    assert config["identity"]["params"]["epochs"] == 2
    assert [c["key"] for c in config["extensions"][0]["changes"]] == ["params.epochs"]


def test_a_run_keeps_grappler_from_rewriting_gradient_sums_into_temporary_variables(tmp_path):
    """Grappler's scheduling pass turns a while loop's gradient sums into temporary variables,
    which can collide (``AlreadyExistsError``; :mod:`training.grappler`): a run turns it off
    before its first step. In a fresh process, where no other test has turned it off."""
    done = subprocess.run([sys.executable, "-m", "tests.addn_rewrite", str(tmp_path / "run")],
                          cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert any("while_grad" in name and "AddN" in name for name in found["before"]), found
    assert found["after"] == [] and found["level"] == grappler.MEMORY_OPTIMIZATION


def test_a_second_process_is_refused_while_a_run_holds_the_dir(tmp_path):
    busy = _run_toy(tmp_path / "run", wait=False, env={SECONDS_PER_BATCH: "0.25"})
    try:
        deadline = time.time() + 120
        while not (tmp_path / "run" / "LOCK").exists():
            assert time.time() < deadline and busy.poll() is None, busy.communicate()[1][-2000:]
            time.sleep(0.05)
        with pytest.raises(run_dir.RunDirError, match=f"is in use: process {busy.pid} on "):
            _train(tmp_path, "run")
    finally:
        busy.kill()
        busy.communicate()
    # The killed process left its lock behind: it is stale and the next run takes it over.
    assert (tmp_path / "run" / "LOCK").exists()
    result = _train(tmp_path, "run", verbose=True)
    assert result.results["status"] == "ok" and not (tmp_path / "run" / "LOCK").exists()


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
    for key in ("hardware", "versions", "git_commit", "params", "config", "best", "identity"):
        assert key in results
    assert results["identity"]["seed"] == 1 and results["identity"]["params"]["epochs"] == 3
    assert results["versions"]["tensorflow"] == tf.__version__
    history = json.loads((run / "history.json").read_text())
    assert [h["step"] for h in history] == [16, 32, 48]
    assert (run / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert tf.io.gfile.glob(str(run / "summaries" / "train" / "events.*"))
    assert tf.train.latest_checkpoint(str(run / "best"))
    assert result.results == results
    assert not (run / "LOCK").exists()


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


@pytest.mark.parametrize("setting, message", [
    ({"eval_every": -1}, "--eval_every must be 0"),
    ({"steps_per_loop": 0}, "--steps_per_loop must be at least 1"),
    ({"mixed_precision": "float8"}, "unknown --mixed_precision"),
])
def test_invalid_run_settings_are_refused_before_anything_runs(tmp_path, setting, message):
    with pytest.raises(ValueError, match=message):
        _train(tmp_path, "bad", **setting)
    assert not (tmp_path / "bad").exists()


def test_the_final_dev_evaluation_reuses_the_selection_and_each_step_is_traced_once(
        tmp_path, monkeypatch):
    from tests.toy_task import ToyTask

    traces = []
    eval_step = ToyTask.eval_step

    def counting_eval_step(self, inputs, model):
        traces.append(1)  # Python runs only while tracing
        return eval_step(self, inputs, model)

    monkeypatch.setattr(ToyTask, "eval_step", counting_eval_step)
    result = _train(tmp_path, "run", epochs=3, learning_rate=0.3)
    # Three selection evaluations on dev, then the final one on dev (the best weights are the
    # last evaluated: reused) and test: one trace in all.
    assert len(traces) == 1
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    best = result.results["best"]["step"]
    selection = next(h["dev"] for h in history if h["step"] == best)
    assert result.results["metrics"]["dev"] == selection
    # A fresh final evaluation of the restored best weights gives the same numbers.
    evaluate = loop.make_evaluator(result.task, result.model, tf.distribute.get_strategy(),
                                   per_replica_batch=16)
    assert evaluate("dev", final=True)[0] == result.results["metrics"]["dev"]
    assert evaluate("test", final=True)[0] == result.results["metrics"]["test"]


def test_evaluation_batches_of_different_lengths_share_one_trace():
    import keras

    from datasets import batching
    from training.task import Task

    lengths = [1, 9, 4, 7, 2, 8, 3, 6, 5, 9, 1, 2]
    traces = []

    class Lengths(Task):
        def dataset(self, request):
            ds = tf.data.Dataset.from_generator(
                lambda: ({"tokens": np.arange(1, n + 1), "label": n % 3} for n in lengths),
                output_signature={"tokens": tf.TensorSpec([None], tf.int64),
                                  "label": tf.TensorSpec([], tf.int64)})
            return batching.batches(ds, request, num_examples=len(lengths),
                                    split_fn=lambda b: (b["tokens"], b["label"]))

        def eval_step(self, inputs, model):
            traces.append(inputs[0].shape)
            return super().eval_step(inputs, model)

        def logits(self, outputs):
            return outputs

        def loss(self, features, labels, outputs):
            return keras.losses.sparse_categorical_crossentropy(labels, outputs,
                                                                from_logits=True)

    model = keras.Sequential([keras.layers.Embedding(10, 4), keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(3)])
    model(np.ones((1, 3)))  # built, as the loop's models are: no variables created in a trace
    task = Lengths({}, data_dir=None, model_dir="unused")
    evaluate = loop.make_evaluator(task, model, tf.distribute.get_strategy(), per_replica_batch=2)
    metrics, outputs = evaluate("dev")
    again, _ = evaluate("dev", final=True)
    assert metrics == again and metrics["examples"] == len(lengths)
    assert len(traces) == 1 and traces[0].as_list() == [2, None]  # lengths 1-9, one trace


def test_a_model_whose_weights_a_checkpoint_would_miss_is_refused(tmp_path):
    """Keras 3 does not hand TensorFlow's checkpoints the layers kept in a list."""
    import keras

    class Listed(keras.Model):
        def __init__(self, attributes: bool):
            super().__init__()
            self.first = keras.layers.Dense(3)
            self.rest = [keras.layers.Dense(3, name=f"rest_{i}") for i in range(2)]
            if attributes:
                for i, dense in enumerate(self.rest):
                    setattr(self, f"rest_{i}", dense)

        def call(self, x):
            for dense in [self.first, *self.rest]:
                x = dense(x)
            return x

    for attributes in (False, True):
        model = Listed(attributes)
        model(tf.zeros([1, 3]))
        path = tf.train.Checkpoint(model=model).save(str(tmp_path / f"ckpt_{attributes}"))
        saved = [k for k in tf.train.load_checkpoint(path).get_variable_to_shape_map()
                 if k.startswith("model/")]
        assert len(saved) == (6 if attributes else 2)
        if attributes:
            loop.check_checkpointed(model)
        else:
            with pytest.raises(ValueError, match=r"4 weights are not in its checkpoint"):
                loop.check_checkpointed(model)
    # A best checkpoint written without the listed layers (by code before the check) is refused
    # when read into the model that saves them all, instead of leaving them at their initial values.
    saved = [w.numpy() for w in model.weights]  # the attribute-held model, saved last
    model = Listed(True)
    model(tf.zeros([1, 3]))
    from training import checkpoints, run_dir
    with pytest.raises(run_dir.RunDirError, match="lacks some of the model's weights"):
        checkpoints.restore_model(model, str(tmp_path / "ckpt_False-1"))
    checkpoints.restore_model(model, str(tmp_path / "ckpt_True-1"))
    for weight, value in zip(model.weights, saved):
        np.testing.assert_array_equal(weight.numpy(), value)


def test_the_best_checkpoint_replaced_while_it_is_read_is_read_again(tmp_path, monkeypatch):
    """A run still training saves a new best (and deletes the old one) between ``evaluate.py``
    finding its best checkpoint and reading it: the new one is read, not an error."""
    from training import checkpoints

    def model_with(value):
        model = keras.Sequential([keras.Input([2]), keras.layers.Dense(1)])
        model.layers[0].kernel.assign(np.full([2, 1], value, np.float32))
        return model

    writer = model_with(1.0)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=writer),
                                         str(tmp_path / checkpoints.BEST), max_to_keep=1)
    manager.save(checkpoint_number=10)
    real_restore = checkpoints.restore_model
    calls = []

    def restore_during_a_new_best(model, path):
        calls.append(os.path.basename(path))
        if len(calls) == 1:  # the run improves now: ckpt-20 replaces ckpt-10
            writer.layers[0].kernel.assign(np.full([2, 1], 2.0, np.float32))
            manager.save(checkpoint_number=20)
        real_restore(model, path)

    monkeypatch.setattr(checkpoints, "restore_model", restore_during_a_new_best)
    reader = model_with(0.0)
    assert checkpoints.load_best(reader, str(tmp_path)).endswith("ckpt-20")
    assert calls == ["ckpt-10", "ckpt-20"]
    np.testing.assert_array_equal(reader.layers[0].kernel.numpy(), np.full([2, 1], 2.0))
