"""BERT fine-tuning tasks on real data, metrics, reported numbers and the hyperparameter grid."""

import math
import sys

import numpy as np
import pytest

from datasets.batching import DataRequest
from papers.devlin2019 import experiments, task as tasks
from papers import registry
from training import optimizers, report, search
from training.run_dir import RunDirError
from training.task import RunEnv, eval_steps

PAPER_GRID = experiments.PAPER_GRID
#: Short sequences, for tests that build a row's model.
SHORT = {name: {"max_seq_length": 32, **({"head_tokens": 16} if name == "imdb" else {})}
         for name in ("sst2", "mrpc", "snli", "imdb")}


@pytest.mark.parametrize("name", ["sst2", "mrpc", "snli", "imdb"])
def test_task_batches_from_real_data(data_dir, tmp_path, name):
    params = {**experiments.HPARAMS[name], "train_examples": 40, "eval_examples": 30}
    if name == "imdb":
        params.update(max_seq_length=64, head_tokens=16, dev_size=200)
    task = tasks.TASKS[name](params, data_dir, str(tmp_path))
    task.prepare(RunEnv(cache_dir=str(tmp_path / "cache")))
    assert (tmp_path / "vocab.txt").exists() and (tmp_path / "encoder.json").exists()
    assert task.num_examples("train") == 40
    train = list(task.dataset(DataRequest("train", batch_size=8, training=True, seed=0)))
    assert len(train) == 5
    features, labels, weights = train[0]
    assert sorted(features) == ["padding_mask", "segment_ids", "token_ids"]
    assert features["token_ids"].shape[0] == 8 and features["token_ids"].shape[1] <= 64
    assert set(labels.numpy().tolist()) <= set(range(len(task.label_names)))
    pairs = len(task.text_keys) == 2
    assert bool(features["segment_ids"].numpy().max()) == pairs
    for split in task.eval_splits:
        assert task.num_examples(split) == 30
        batches = list(task.dataset(DataRequest(split, batch_size=8, static_shapes=True)))
        assert len(batches) == eval_steps(30, 8)
        assert batches[0][0]["token_ids"].shape == (8, params["max_seq_length"])
        assert sum(float(w.numpy().sum()) for _, _, w in batches) == 30


def test_subsets_are_fixed_and_balanced_enough(data_dir, tmp_path):
    params = {**experiments.IMDB_HPARAMS, "train_examples": 200, "dev_size": 200}
    a = tasks.IMDBTask(params, data_dir, str(tmp_path))
    b = tasks.IMDBTask(params, data_dir, str(tmp_path))
    labels = lambda t: np.array([int(e["label"]) for e in t._load("train")[0]])  # noqa: E731
    np.testing.assert_array_equal(labels(a), labels(b))
    assert 60 < labels(a).sum() < 140  # the file is sorted by label; the sample is not


def test_sst2_has_no_labelled_test_and_the_right_metric(data_dir, tmp_path):
    task = tasks.SST2Task(experiments.SST2_HPARAMS, data_dir, str(tmp_path))
    assert task.eval_splits == ("dev",) and task.metric == "accuracy"
    assert tasks.MRPCTask.metric == "f1" and tasks.MRPCTask.eval_splits == ("dev", "test")
    with pytest.raises(ValueError, match="unlabelled"):
        task.num_examples("test")
    sentences = tasks.SST2Task({**experiments.SST2_HPARAMS, "dataset": "sst2"}, data_dir,
                               str(tmp_path))
    assert sentences.eval_splits == ("dev", "test") and sentences.num_examples("test") == 1821
    with pytest.raises(ValueError, match="dataset must be one of"):
        tasks.SST2Task({**experiments.SST2_HPARAMS, "dataset": "sst5"}, data_dir, str(tmp_path))


def test_mrpc_metrics_include_f1_of_the_positive_class(tmp_path):
    task = tasks.MRPCTask(experiments.MRPC_HPARAMS, None, str(tmp_path))
    logits = np.array([[0, 1], [0, 1], [1, 0], [1, 0], [0, 1]], "float32")
    gathered = {"logits": logits, "labels": np.array([1, 0, 1, 0, 1]),
                "weights": np.array([1, 1, 1, 1, 0], "float32"),
                "loss": np.zeros(5, "float32")}
    metrics = task.compute_metrics(gathered, "dev")
    # kept: predictions [1, 1, 0, 0] vs labels [1, 0, 1, 0]: tp 1, fp 1, fn 1
    assert metrics["accuracy"] == 50.0 and metrics["examples"] == 4
    assert metrics["precision"] == 50.0 and metrics["recall"] == 50.0 and metrics["f1"] == 50.0


def test_predict_returns_labels_and_probabilities(tmp_path):
    task = tasks.SNLITask({**experiments.SNLI_HPARAMS, "max_seq_length": 32}, None, str(tmp_path))
    model = task.build_model()
    out = task.predict(model, ["A man plays a guitar.\tA person makes music.",
                               "Two dogs run.\tNobody is outside."], batch_size=1)
    assert [set(o["probabilities"]) for o in out] == [set(task.label_names)] * 2
    for o in out:
        assert math.isclose(sum(o["probabilities"].values()), 1.0, rel_tol=1e-5)
        assert o["label"] == task.label_names[o["label_id"]]
    with pytest.raises(ValueError, match="input 2 must be two non-empty texts separated by a tab"):
        task.predict(model, ["a\tb", "no tab here"])


@pytest.mark.parametrize("name", ["sst2", "mrpc", "snli", "imdb"])
def test_every_row_fine_tunes_with_the_recipe_of_appendix_a3(name, tmp_path):
    """What a row builds, against §A.3 and google-research/bert's optimization.py: Adam with
    ε = 1e-6 and decoupled weight decay 0.01 (not on LayerNorm parameters or biases), the
    learning rate rising linearly over the first 10% of the steps and decaying linearly to 0
    from the start (lr · (1 - t/T), replaced by lr · t/warm-up during the warm-up), dropout
    0.1 in the encoder and the head, the gradient clipped to global norm 1."""
    exp = registry.get(f"devlin2019/{name}")
    params = exp.params_with_overrides(SHORT[name])
    task = exp.make_task(params, None, str(tmp_path))
    optimizer = task.build_optimizer(total_steps=1000)
    assert optimizer.epsilon == 1e-6 and optimizer.weight_decay == 0.01
    peak = params["learning_rate"]
    for step, expected in ((0, 0.0), (50, 0.5 * peak), (99, 0.99 * peak), (100, 0.9 * peak),
                           (550, 0.45 * peak), (1000, 0.0)):
        optimizer.iterations.assign(step)
        assert math.isclose(float(optimizer.learning_rate), expected, rel_tol=1e-5,
                            abs_tol=1e-12), step
    model = task.build_model()
    optimizer.build(model.trainable_variables)
    decayed = {v.path.rsplit("/", 1)[-1] for v in model.trainable_variables
               if optimizers.uses_weight_decay(optimizer, v)}
    assert "kernel" in decayed and not decayed & {"bias", "gamma", "beta"}
    rates = {type(layer).__name__: layer.get_config()["dropout"] for layer in model.layers
             if "dropout" in layer.get_config()}
    assert rates == {"BertBackbone": 0.1, "ClassificationHead": 0.1}, rates
    assert params["clip_norm"] == 1.0


@pytest.mark.parametrize("name", ["sst2", "mrpc", "snli", "imdb"])
def test_the_reported_numbers_sit_beside_the_metric_they_report(name, tmp_path):
    """Every number a paper reports for a row names a metric the task computes, on a split
    ("not measured" would be printed otherwise), and ``train.py`` prints ours beside it."""
    exp = registry.get(f"devlin2019/{name}")
    task = exp.make_task(exp.params_with_overrides(SHORT[name]), None, str(tmp_path))
    classes = len(task.label_names)
    gathered = {"logits": np.eye(classes, dtype="float32")[[0, 1, 1, 0] * 2][:, :classes],
                "labels": np.array([0, 1, 0, 0] * 2), "weights": np.ones(8, "float32"),
                "loss": np.zeros(8, "float32")}
    metrics = task.compute_final_metrics(gathered, "dev")
    for row in exp.reported:
        assert (row.metric or exp.metric) in metrics, row
        assert row.split in ("dev", "test") and row.source
    lines = report.beside_paper(exp, {"dev": metrics, "test": metrics})
    assert len(lines) == len(exp.reported)
    for row, line in zip(exp.reported, lines):
        metric = row.metric or exp.metric
        assert line.startswith(f"{metric} on {row.split}: ours {metrics[metric]:.2f}, "
                               f"paper {row.value:g}")
    assert len(experiments.by_size(6, 768, 12)) == 3
    with pytest.raises(ValueError, match="no row"):
        experiments.by_size(5, 768, 12)


def test_paper_grid_runs():
    runs = list(search.grid_runs(experiments.SST2_HPARAMS, PAPER_GRID))
    assert len(runs) == 18 and len({name for name, _ in runs}) == 18
    name, params = runs[0]
    assert name == "lr5e-05_bs16_ep2"
    assert params["learning_rate"] == 5e-5
    assert params["encoder"] == experiments.SST2_HPARAMS["encoder"]
    with pytest.raises(ValueError, match="not hyperparameters"):
        list(search.grid_runs({"learning_rate": 1e-5}, PAPER_GRID))
    best = search.select_best([({"a": 1}, 80.0), ({"a": 2}, float("nan")), ({"a": 3}, 85.0)])
    assert best == ({"a": 3}, 85.0)


def _fake_dev_metric(params):
    return (90.0 - abs(math.log10(params["learning_rate"] / 3e-5)) * 10
            - abs(params["epochs"] - 3) + params["batch_size"] / 100)


def test_random_search_reports_back_to_the_oracle(tmp_path):
    result = search.search("random", 5, _fake_dev_metric, grid=PAPER_GRID,
                           base_params=experiments.SST2_HPARAMS, directory=str(tmp_path))
    assert len(result.trials) == 5
    assert len({tuple(sorted((k, p[k]) for k in PAPER_GRID)) for p, _ in result.trials}) == 5
    assert result.value == max(v for _, v in result.trials)
    assert result.params["encoder"] == experiments.SST2_HPARAMS["encoder"]


def test_bayesian_search_reports_back_to_the_oracle(tmp_path):
    result = search.search("bayesian", 6, _fake_dev_metric, grid=PAPER_GRID,
                           base_params=experiments.SST2_HPARAMS, directory=str(tmp_path))
    assert len(result.trials) == 6 and math.isfinite(result.value)
    assert result.value == max(v for _, v in result.trials)
    assert all(_fake_dev_metric(p) == v for p, v in result.trials)


def test_bayesian_search_without_scipy_or_scikit_learn_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if it were not installed
    with pytest.raises(ImportError, match="Bayesian search needs scipy and scikit-learn"):
        search.search("bayesian", 3, _fake_dev_metric, grid=PAPER_GRID,
                      base_params=experiments.SST2_HPARAMS)


def test_search_marks_failed_trials_and_validates_arguments(tmp_path):
    calls = []

    def flaky(params):
        calls.append(params)
        if len(calls) == 2:
            raise RuntimeError("diverged")
        return _fake_dev_metric(params)

    result = search.search("random", 4, flaky, grid=PAPER_GRID,
                           base_params=experiments.SST2_HPARAMS, directory=str(tmp_path))
    assert math.isnan(result.trials[1][1]) and len(result.trials) == 4
    with pytest.raises(ValueError, match="unknown oracle"):
        search.search("hyperband", 2, flaky, grid=PAPER_GRID)


def test_a_restart_whose_encoder_vocabulary_changed_is_refused(data_dir, tmp_path):
    params = {**experiments.HPARAMS["sst2"], "train_examples": 40, "eval_examples": 30}
    tasks.TASKS["sst2"](params, data_dir, str(tmp_path)).prepare(RunEnv(cache_dir=""))
    tasks.TASKS["sst2"](params, data_dir, str(tmp_path)).prepare(RunEnv(cache_dir=""))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text(vocab.read_text().replace("\n", "\nx", 1))  # another vocabulary
    with pytest.raises(RunDirError, match=r"is not the vocabulary this run was trained with \("
                       + str(vocab)):
        tasks.TASKS["sst2"](params, data_dir, str(tmp_path)).prepare(RunEnv(cache_dir=""))
