"""The registry and the CLIs: --list, clear errors, XLA-compiled steps, the first experiment."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from datasets.batching import DataRequest
from papers import registry
from tests.conftest import REPO
from training import loop
from training.task import RunEnv

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def _cli(*args, data_dir=None, timeout=600):
    env = dict(ENV)
    if data_dir:
        env["KERAS_PAPERS_DATA_DIR"] = data_dir
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_list_prints_every_experiment_with_dataset_metric_and_paper_number():
    out = _cli("train.py", "--list")
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    names = [line.split()[0] for line in lines]
    assert names == sorted(registry.load_all())
    assert {"baselines/sst2_bow_logreg", "baselines/sst5_bow_logreg", "cho2014/sst2_gru",
            "cho2014/reverse_seq2seq"} <= set(names)
    gru = next(line for line in lines if line.startswith("cho2014/sst2_gru "))
    assert "dataset=sst2" in gru and "metric=accuracy" in gru and "84.9" in gru


def test_unknown_experiment_is_a_clear_error_listing_the_valid_names(tmp_path):
    out = _cli("train.py", "--experiment=cho2014/sst2_gruu", f"--model_dir={tmp_path}")
    assert out.returncode != 0
    assert "unknown experiment 'cho2014/sst2_gruu'" in out.stderr
    assert "cho2014/sst2_gru" in out.stderr and "baselines/sst2_bow_logreg" in out.stderr


@pytest.mark.parametrize("params, message", [
    ("learnin_rate=0.1", "unknown hyperparameter 'learnin_rate'"),
    ("learning_rate=fast", "does not parse as float"),
    ("glove", "expected key=value"),
])
def test_bad_params_are_clear_errors(tmp_path, params, message):
    out = _cli("train.py", "--experiment=cho2014/sst2_gru", f"--model_dir={tmp_path}",
               f"--params={params}")
    assert out.returncode != 0 and message in out.stderr
    if "unknown" in message:
        assert "valid keys:" in out.stderr and "learning_rate" in out.stderr


def test_bad_flag_values_are_clear_errors(tmp_path):
    out = _cli("train.py", "--experiment=cho2014/sst2_gru", f"--model_dir={tmp_path}",
               "--strategy=mirorred")
    assert out.returncode != 0 and "--strategy" in out.stderr and "mirrored" in out.stderr
    out = _cli("train.py", "--experiment=cho2014/sst2_gru")
    assert out.returncode != 0 and "--model_dir" in out.stderr


def test_every_experiment_reports_the_metric_its_task_selects_by():
    for name, experiment in registry.load_all().items():
        assert experiment.task_class().metric == experiment.metric, name
    from tests.toy_task import TOY

    with pytest.raises(ValueError, match="toy/mlp: the experiment's metric is 'f1' but ToyTask "
                                         "selects checkpoints by 'accuracy'"):
        dataclasses.replace(TOY, metric="f1").make_task(dict(TOY.hparams), None, "unused")


def test_params_cast_to_the_types_of_the_defaults():
    exp = registry.get("cho2014/sst2_gru")
    params = exp.params_with_overrides("learning_rate=3e-4,hidden=64,glove=true")
    assert params["learning_rate"] == 3e-4 and params["hidden"] == 64 and params["glove"] is True
    assert exp.hparams["hidden"] != 64  # the registered defaults are not mutated


def _jit_params(exp):
    """Small settings so that one compiled step per experiment stays fast."""
    small = {"batch_size": 4, "max_length": 16, "max_seq_length": 32, "head_tokens": 8,
             "train_examples": 64, "eval_examples": 32, "hidden": 16, "hidden_units": 16,
             "embedding_dim": 16, "k": 16, "premise_length": 16, "hypothesis_length": 12}
    if exp.paper == "xu2015":  # the image encoder is frozen: its size does not matter here
        small["encoder"] = "efficientnet_lite0"
    return {k: v for k, v in small.items() if k in exp.hparams}


#: Every experiment but the SST-5 rows, which are their SST-2 rows' models with five classes.
XLA_ROWS = sorted(n for n in registry.load_all() if "/sst5_" not in n)


@pytest.mark.parametrize("name", XLA_ROWS)
def test_train_step_compiles_with_xla_on_static_shapes(name, data_dir, cache_dir, tmp_path):
    """What a TPU needs: fixed-shape batches and a train step XLA can compile."""
    exp = registry.get(name)
    params = exp.params_with_overrides(_jit_params(exp))
    task = exp.make_task(params, data_dir, str(tmp_path))
    task.prepare(RunEnv(cache_dir=cache_dir))
    batch_size = params.get("batch_size", 4)
    ds = task.dataset(DataRequest("train", batch_size=batch_size, training=True,
                                  static_shapes=True))
    for spec in tf.nest.flatten(ds.element_spec):
        assert spec.shape.is_fully_defined(), (name, ds.element_spec)
    batch = next(iter(ds))
    model = task.build_model()
    if not model.built:
        model(batch[0], training=False)
    loop.check_checkpointed(model)  # every weight is saved and restored
    optimizer = task.build_optimizer(10)
    optimizer.build(model.trainable_variables)
    before = [np.array(v) for v in model.trainable_variables]

    @tf.function(jit_compile=True)
    def step(inputs):
        return task.train_step(inputs, model, optimizer, global_batch_size=batch_size,
                               clip_norm=1.0)

    for _ in range(2):  # a linear warm-up gives the first step a learning rate of 0
        out = step(batch)
        assert np.isfinite(float(out["loss"]))
    after = [np.array(v) for v in model.trainable_variables]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after)), "no variable moved"


def test_sst2_bow_logreg_learns_on_real_sst2(data_dir, tmp_path):
    exp = registry.get("baselines/sst2_bow_logreg")
    config = loop.RunConfig(model_dir=str(tmp_path / "bow"), data_dir=data_dir, verbose=False)
    result = loop.train(exp, exp.params_with_overrides("epochs=2"), config)
    dev = result.results["metrics"]["dev"]
    assert dev["examples"] == 872
    assert dev["accuracy"] > 65.0, dev  # chance is 50.9 (444 of 872 positive)
    assert result.results["metrics"]["test"]["examples"] == 1821
    vocab = (tmp_path / "bow" / "vocab.txt").read_text().splitlines()
    assert vocab[:2] == ["<pad>", "<unk>"] and len(vocab) > 10000


def test_evaluate_cli_and_table(data_dir, tmp_path):
    run = tmp_path / "runs" / "bow"
    out = _cli("train.py", "--experiment=baselines/sst5_bow_logreg", f"--model_dir={run}",
               "--train_steps=30", "--verbose=false", data_dir=data_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "baselines/sst5_bow_logreg seed=0: dev accuracy=" in out.stdout
    out = _cli("evaluate.py", f"--model_dir={run}", "--split=dev", data_dir=data_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads(out.stdout[:out.stdout.rindex("}") + 1])["metrics"]
    results = json.loads((run / "results.json").read_text())
    assert metrics["accuracy"] == pytest.approx(results["metrics"]["dev"]["accuracy"])
    out = _cli("evaluate.py", "--table=baselines", f"--results_dir={tmp_path / 'runs'}")
    assert out.returncode == 0, out.stderr[-3000:]
    row = next(line for line in out.stdout.splitlines()
               if line.startswith("| baselines/sst5_bow_logreg (train_steps=30) | dev | "
                                  "accuracy"))
    assert f"{results['metrics']['dev']['accuracy']:.2f}" in row
    out = _cli("evaluate.py", "--table=nosuchpaper", f"--results_dir={tmp_path}")
    assert out.returncode != 0 and "unknown paper 'nosuchpaper'" in out.stderr


@pytest.mark.parametrize("search", ["random", "bayesian"])
def test_search_over_the_experiments_grid_keeps_the_best_dev_run(tmp_path, search):
    import train
    from tests.toy_task import TOY

    train.FLAGS(["train.py", f"--model_dir={tmp_path}", f"--search={search}", "--max_trials=3",
                 f"--cache_dir={tmp_path / 'cache'}",
                 "--verbose=false"])
    try:
        assert train.run_search(TOY, dict(TOY.hparams), tf.distribute.get_strategy()) == 0
    finally:
        train.FLAGS.unparse_flags()
    summary = json.loads((tmp_path / "search.json").read_text())
    assert len(summary["trials"]) == 3
    devs = [t["dev"] for t in summary["trials"]]
    assert summary["best_dev"] == max(devs)
    for trial in summary["trials"]:
        point = trial["point"]
        assert point["learning_rate"] in TOY.grid["learning_rate"]
        assert point["batch_size"] in TOY.grid["batch_size"] and set(point) == set(TOY.grid)
        name = f"lr{point['learning_rate']:g}_bs{point['batch_size']}"
        results = json.loads((tmp_path / name / "results.json").read_text())
        assert results["metrics"]["dev"]["accuracy"] == trial["dev"]
        assert results["global_batch_size"] == point["batch_size"]
