"""BERT fine-tuning tasks on real data, metrics, reported numbers and the hyperparameter grid."""

import math

import numpy as np
import pytest

from papers.devlin2019 import hparams, reported, tasks
from papers.registry import Reported
from training import search
from training.task import RunEnv, eval_steps

PAPER_GRID = hparams.PAPER_GRID


@pytest.mark.parametrize("name", ["sst2", "mrpc", "snli", "imdb"])
def test_task_batches_from_real_data(data_dir, tmp_path, name):
    params = {**hparams.HPARAMS[name], "train_examples": 40, "eval_examples": 30}
    if name == "imdb":
        params.update(max_seq_length=64, head_tokens=16, dev_size=200)
    task = tasks.TASKS[name](params, data_dir, str(tmp_path))
    task.prepare(RunEnv(cache_dir=str(tmp_path / "cache")))
    assert (tmp_path / "vocab.txt").exists() and (tmp_path / "encoder.json").exists()
    assert task.num_examples("train") == 40
    train = list(task.dataset("train", batch_size=8, training=True, seed=0))
    assert len(train) == 5
    features, labels, weights = train[0]
    assert sorted(features) == ["padding_mask", "segment_ids", "token_ids"]
    assert features["token_ids"].shape[0] == 8 and features["token_ids"].shape[1] <= 64
    assert set(labels.numpy().tolist()) <= set(range(len(task.label_names)))
    pairs = len(task.text_keys) == 2
    assert bool(features["segment_ids"].numpy().max()) == pairs
    for split in task.eval_splits:
        assert task.num_examples(split) == 30
        batches = list(task.dataset(split, batch_size=8, training=False, seed=0,
                                    static_shapes=True))
        assert len(batches) == eval_steps(30, 8)
        assert batches[0][0]["token_ids"].shape == (8, params["max_seq_length"])
        assert sum(float(w.numpy().sum()) for _, _, w in batches) == 30


def test_subsets_are_fixed_and_balanced_enough(data_dir, tmp_path):
    params = {**hparams.IMDB_HPARAMS, "train_examples": 200, "dev_size": 200}
    a = tasks.IMDBTask(params, data_dir, str(tmp_path))
    b = tasks.IMDBTask(params, data_dir, str(tmp_path))
    labels = lambda t: np.array([int(e["label"]) for e in t._load("train")[0]])  # noqa: E731
    np.testing.assert_array_equal(labels(a), labels(b))
    assert 60 < labels(a).sum() < 140  # the file is sorted by label; the sample is not


def test_sst2_has_no_labelled_test_and_the_right_metric(data_dir, tmp_path):
    task = tasks.SST2Task(hparams.SST2_HPARAMS, data_dir, str(tmp_path))
    assert task.eval_splits == ("dev",) and task.metric == "accuracy"
    assert tasks.MRPCTask.metric == "f1" and tasks.MRPCTask.eval_splits == ("dev", "test")
    with pytest.raises(ValueError, match="unlabelled"):
        task.num_examples("test")
    sentences = tasks.SST2Task({**hparams.SST2_HPARAMS, "dataset": "sst2"}, data_dir, str(tmp_path))
    assert sentences.eval_splits == ("dev", "test") and sentences.num_examples("test") == 1821
    with pytest.raises(ValueError, match="dataset must be one of"):
        tasks.SST2Task({**hparams.SST2_HPARAMS, "dataset": "sst5"}, data_dir, str(tmp_path))


def test_mrpc_metrics_include_f1_of_the_positive_class(tmp_path):
    task = tasks.MRPCTask(hparams.MRPC_HPARAMS, None, str(tmp_path))
    logits = np.array([[0, 1], [0, 1], [1, 0], [1, 0], [0, 1]], "float32")
    gathered = {"logits": logits, "labels": np.array([1, 0, 1, 0, 1]),
                "weights": np.array([1, 1, 1, 1, 0], "float32"),
                "loss": np.zeros(5, "float32")}
    metrics = task.compute_metrics(gathered, "dev")
    # kept: predictions [1, 1, 0, 0] vs labels [1, 0, 1, 0]: tp 1, fp 1, fn 1
    assert metrics["accuracy"] == 50.0 and metrics["examples"] == 4
    assert metrics["precision"] == 50.0 and metrics["recall"] == 50.0 and metrics["f1"] == 50.0


def test_predict_returns_labels_and_probabilities(tmp_path):
    task = tasks.SNLITask({**hparams.SNLI_HPARAMS, "max_seq_length": 32}, None, str(tmp_path))
    model = task.build_model()
    out = task.predict(model, ["A man plays a guitar.\tA person makes music.",
                               "Two dogs run.\tNobody is outside."], batch_size=1)
    assert [set(o["probabilities"]) for o in out] == [set(task.label_names)] * 2
    for o in out:
        assert math.isclose(sum(o["probabilities"].values()), 1.0, rel_tol=1e-5)
        assert o["label"] == task.label_names[o["label_id"]]
    with pytest.raises(ValueError, match="input 2 must be two non-empty texts separated by a tab"):
        task.predict(model, ["a\tb", "no tab here"])


def test_hparams_follow_the_paper():
    for params in hparams.HPARAMS.values():
        assert params["warmup_proportion"] == 0.1 and params["weight_decay"] == 0.01
        assert params["dropout"] == 0.1 and params["clip_norm"] == 1.0
        assert params["adam_epsilon"] == 1e-6 and params["batch_size"] in (16, 32)
        assert params["learning_rate"] in PAPER_GRID["learning_rate"]
        assert params["epochs"] in PAPER_GRID["epochs"]
        assert params["encoder"] == "minilm_l6_h384" and params["pooling"] in ("cls", "mean")
    assert hparams.IMDB_HPARAMS["max_seq_length"] == 512
    assert hparams.IMDB_HPARAMS["truncation"] == "head_tail"
    assert hparams.IMDB_HPARAMS["head_tokens"] == 128


def test_reported_numbers():
    for rows in reported.REPORTED.values():
        for row in rows:
            assert isinstance(row, Reported) and row.split in ("dev", "test") and row.source
    table1 = {(r.split, r.metric): r.value for r in reported.SST2 if "Table 1" in r.source}
    assert table1 == {("test", "accuracy"): 93.5}
    assert [r.value for r in reported.MRPC if "Table 1" in r.source] == [88.9]
    assert reported.by_size(6, 768, 12)["sst2"].value == 91.3
    assert reported.by_size(6, 768, 12)["mrpc"].value == 84.8
    assert reported.by_size(6, 768, 12)["mnli_m"].value == 81.9
    turc = {r.note.split(",")[0]: r.value for r in reported.SST2 if "Turc" in r.source}
    assert turc == {"BERT-Tiny L=2/H=128": 83.2, "BERT-Small L=4/H=512": 89.7}
    assert {r.value for r in reported.MRPC if "Turc" in r.source} == {81.1, 83.4}
    assert [r.value for r in reported.MNLI if r.split == "test"] == [84.6, 83.4]
    with pytest.raises(ValueError, match="no row"):
        reported.by_size(5, 768, 12)


def test_paper_grid_runs():
    runs = list(search.grid_runs(hparams.SST2_HPARAMS, PAPER_GRID))
    assert len(runs) == 18 and len({name for name, _ in runs}) == 18
    name, params = runs[0]
    assert name == "lr5e-05_bs16_ep2"
    assert params["learning_rate"] == 5e-5 and params["encoder"] == hparams.SST2_HPARAMS["encoder"]
    with pytest.raises(ValueError, match="not hyperparameters"):
        list(search.grid_runs({"learning_rate": 1e-5}, PAPER_GRID))
    best = search.select_best([({"a": 1}, 80.0), ({"a": 2}, float("nan")), ({"a": 3}, 85.0)])
    assert best == ({"a": 3}, 85.0)


def _fake_dev_metric(params):
    return (90.0 - abs(math.log10(params["learning_rate"] / 3e-5)) * 10
            - abs(params["epochs"] - 3) + params["batch_size"] / 100)


def test_random_search_reports_back_to_the_oracle(tmp_path):
    result = search.search("random", 5, _fake_dev_metric, grid=PAPER_GRID,
                           base_params=hparams.SST2_HPARAMS, directory=str(tmp_path))
    assert len(result.trials) == 5
    assert len({tuple(sorted((k, p[k]) for k in PAPER_GRID)) for p, _ in result.trials}) == 5
    assert result.value == max(v for _, v in result.trials)
    assert result.params["encoder"] == hparams.SST2_HPARAMS["encoder"]


def test_bayesian_search_or_a_clear_error(tmp_path):
    try:
        import scipy  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="scipy and scikit-learn"):
            search.search("bayesian", 3, _fake_dev_metric, grid=PAPER_GRID,
                          base_params=hparams.SST2_HPARAMS)
        return
    result = search.search("bayesian", 6, _fake_dev_metric, grid=PAPER_GRID,
                           base_params=hparams.SST2_HPARAMS, directory=str(tmp_path))
    assert len(result.trials) == 6 and math.isfinite(result.value)


def test_search_marks_failed_trials_and_validates_arguments(tmp_path):
    calls = []

    def flaky(params):
        calls.append(params)
        if len(calls) == 2:
            raise RuntimeError("diverged")
        return _fake_dev_metric(params)

    result = search.search("random", 4, flaky, grid=PAPER_GRID,
                           base_params=hparams.SST2_HPARAMS, directory=str(tmp_path))
    assert math.isnan(result.trials[1][1]) and len(result.trials) == 4
    with pytest.raises(ValueError, match="unknown oracle"):
        search.search("hyperband", 2, flaky, grid=PAPER_GRID)
