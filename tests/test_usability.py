"""The suite as a user meets it: progress lines for every long phase, a finished run that is not
evaluated again, a closing summary, and no folder left behind by a run that could not start."""

import io
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from papers import registry
from tests.conftest import BOW, CLI_ENV, REPO
from tests.conftest import run_cli as _cli
from tests.toy_task import SECONDS_PER_BATCH, TOY
from training import loop
from training import run as run_module
from training.progress import Progress





class Terminal(io.StringIO):
    def isatty(self):
        return True


def _config(tmp_path, **kwargs):
    return loop.RunConfig(model_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"),
                          **kwargs)


# --------------------------------------------------------------------------- progress
def test_a_progress_line_counts_with_rate_and_eta_and_without_a_known_total():
    out = Terminal()
    bar = Progress(4, "training, epoch 1/2: step", stream=out)
    for step in range(5):
        bar.update(step, loss=0.5)
        if step < 4:
            bar.last_print = 0.0  # no throttling in a test
    lines = out.getvalue().split("\r")[1:]
    assert lines[-1].startswith("training, epoch 1/2: step 4/4 [=====")
    assert "step/s" in lines[-1] and "loss 0.5000" in lines[-1] and lines[-1].endswith("\n")
    assert "ETA" in lines[-2]
    log = io.StringIO()  # not a terminal: the count, its rate, one line at the end
    bar = Progress(None, "final evaluation on test: batch", stream=log, unit="batch",
                   announce=True)
    for batch in range(3):
        bar.update(batch)
    bar.close()
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("final evaluation on test: batch 0,")
    assert lines[-1].startswith("final evaluation on test: batch 2/2 [") and "batch/s" in lines[-1]


def test_the_training_line_moves_each_step_whatever_steps_per_loop_is(tmp_path, monkeypatch):
    """One call of the training function takes the whole epoch (20 steps per loop, 16 steps);
    the line is still redrawn after every step, and each evaluation has its own line."""
    monkeypatch.setenv(SECONDS_PER_BATCH, "0.12")  # each step outlasts the redraw interval
    out = Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    loop.train(TOY, TOY.params_with_overrides({"epochs": 1}),
               _config(tmp_path, steps_per_loop=20, verbose=True))
    text = out.getvalue()
    drawn = {int(part.split("step ")[1].split("/")[0]) for part in text.split("\r")
             if part.startswith("training, epoch 1/1: step ")}
    assert drawn >= set(range(1, 17)) - {16} and 16 in drawn, sorted(drawn)
    assert "final evaluation on test: batch 7/7 [" in text


# --------------------------------------------------------------------- finished runs
def test_a_run_ends_with_a_summary_of_its_numbers_time_and_files(bow_run):
    model_dir, out = bow_run
    lines = [line.strip() for line in out.stdout.splitlines()]
    assert any(line.startswith("test: accuracy=") for line in lines), out.stdout
    assert any(line.startswith("wall time ") and "over 30 steps" in line for line in lines)
    assert f"results:  {model_dir / 'results.json'}" in lines
    assert f"best:     {model_dir / 'best'} (step 30)" in lines
    assert f"pictures: {model_dir / 'learning_curve.png'}" in lines
    assert (f"table:    python evaluate.py --table=baselines --results_dir={model_dir.parent}"
            in lines)


def test_re_running_a_finished_run_prints_its_results_and_evaluates_nothing(bow_run, data_dir):
    model_dir, first = bow_run
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns)
              for p in model_dir.iterdir() if p.is_file()}
    again = _cli("train.py", f"--experiment={BOW}", f"--model_dir={model_dir}",
                 "--train_steps=30", "--eval_every=30", data_dir=data_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "holds this run, finished" in again.stdout and "final evaluation" not in again.stdout
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns)
             for p in model_dir.iterdir() if p.is_file()}
    assert after == before  # results.json byte for byte, and nothing else written
    def summary(out):
        return [line for line in out.stdout.splitlines()
                if line.startswith((f"{BOW} seed=0:", "  results:", "  best:", "  table:"))]

    assert summary(again) == summary(first) and len(summary(first)) == 4


def test_reevaluate_runs_the_final_evaluation_of_a_finished_run_again(tmp_path):
    params = TOY.params_with_overrides({"epochs": 1})
    first = loop.train(TOY, params, _config(tmp_path, verbose=False))
    again = loop.train(TOY, params, _config(tmp_path, verbose=False))
    assert again.finished_before and again.model is None
    assert again.results["metrics"]["test"] == pytest.approx(first.results["metrics"]["test"])
    results = tmp_path / "run" / "results.json"
    stamp = results.stat().st_mtime_ns
    redone = loop.train(TOY, params, _config(tmp_path, verbose=False, reevaluate=True))
    assert not redone.finished_before and results.stat().st_mtime_ns != stamp
    assert redone.results["metrics"]["test"] == pytest.approx(first.results["metrics"]["test"])
    with pytest.raises(Exception, match="holds another run"):  # not its results: refused
        loop.train(TOY, params, _config(tmp_path, verbose=False, seed=1))


def test_a_run_whose_data_is_missing_leaves_no_folder(tmp_path):
    exp = registry.get(BOW)
    empty = tmp_path / "empty_data"
    empty.mkdir()
    config = loop.RunConfig(model_dir=str(tmp_path / "runs" / "bow"), data_dir=str(empty),
                            verbose=False)
    with pytest.raises(Exception, match="sst"):
        loop.train(exp, exp.params_with_overrides({"train_steps": 2}), config)
    assert not (tmp_path / "runs").exists()


# --------------------------------------------------------------------------- --predict
@pytest.fixture(scope="module")
def snli_run(data_dir, cache_dir, tmp_path_factory):
    """A few steps of word-by-word attention on 200 SNLI pairs (a pair task with pictures)."""
    exp = registry.get("rocktaschel2016/word_by_word")
    params = exp.params_with_overrides("k=8,train_examples=200,train_steps=3,batch_size=16")
    model_dir = tmp_path_factory.mktemp("usability") / "snli"
    loop.train(exp, params, loop.RunConfig(model_dir=str(model_dir), data_dir=data_dir,
                                           cache_dir=cache_dir, verbose=False))
    return model_dir


def test_a_bad_line_of_a_predict_file_is_reported_and_the_others_go_on(snli_run, data_dir,
                                                                       tmp_path):
    inputs = tmp_path / "pairs.tsv"
    inputs.write_text("A man plays a guitar.\tA person makes music.\n"
                      "no tab on this line\n"
                      "A dog runs.\tAn animal moves.\n")
    out = _cli("evaluate.py", f"--model_dir={snli_run}", f"--predict_file={inputs}",
               data_dir=data_dir)
    assert out.returncode == 1, out.stderr[-3000:]
    assert (f"evaluate.py: {inputs}, line 2: must be two non-empty texts separated by a tab"
            in out.stderr) and "not 1 parts" in out.stderr and "Traceback" not in out.stderr
    records = [json.loads(line) for line in out.stdout.strip().splitlines()]
    assert [r["input"] for r in records] == inputs.read_text().splitlines()
    assert "error" in records[1] and "label" not in records[1]
    assert all(r["label"] in ("entailment", "neutral", "contradiction")
               for r in (records[0], records[2]))


def test_predict_reads_only_the_run_dir_with_an_empty_data_dir(bow_run, snli_run, tmp_path):
    """No dataset is read: the vocabulary, the labels, the model's input shapes and the
    weights are in the run dir (an empty --data_dir would fail any read of the data)."""
    empty = tmp_path / "no_data"
    empty.mkdir()
    bow, _ = bow_run
    for run, text, labels in ((bow, "a gripping, funny film", ("negative", "positive")),
                              (snli_run, "A man plays a guitar.\tA person makes music.",
                               ("entailment", "neutral", "contradiction"))):
        out = _cli("evaluate.py", f"--model_dir={run}", f"--predict={text}",
                   f"--data_dir={empty}")
        assert out.returncode == 0, out.stderr[-3000:]
        assert json.loads(out.stdout.strip().splitlines()[-1])["label"] in labels
    # a run dir of an earlier version (without those files) says what it needs
    old = tmp_path / "old_run"
    shutil.copytree(bow, old)
    (old / "labels.json").unlink()  # the bag-of-words model is built without model_inputs
    out = _cli("evaluate.py", f"--model_dir={old}", "--predict=a fine film",
               f"--data_dir={empty}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "was trained before runs kept what prediction and export read" in out.stderr
    assert "pass the run's --data_dir" in out.stderr


def _empty_dir(tmp_path):
    empty = tmp_path / "no_data"
    empty.mkdir(exist_ok=True)
    return str(empty)


def test_a_language_model_predicts_from_its_run_dir_alone(data_dir, cache_dir, tmp_path):
    exp = registry.get("zaremba2014/imdb_small")
    params = exp.params_with_overrides("train_examples=200,eval_examples=20,hidden_units=16,"
                                       "train_steps=2,bptt=10")
    loop.train(exp, params, loop.RunConfig(model_dir=str(tmp_path / "lm"), data_dir=data_dir,
                                           cache_dir=cache_dir, verbose=False))
    task, model = run_module.restore_best(exp, params, str(tmp_path / "lm"),
                                          _empty_dir(tmp_path), cache_dir=cache_dir,
                                          read_data=False)
    [out] = task.predict(model, ["the film was"], str(tmp_path / "out"))
    assert out["prompt"] == "the film was" and out["continuation"]


def test_a_png_is_captioned_from_the_run_dir_alone(data_dir, cache_dir, tmp_path):
    import tensorflow as tf

    exp = registry.get("xu2015/flickr8k_soft")
    params = exp.params_with_overrides("encoder=efficientnet_lite0,train_steps=2,units=16,"
                                       "embedding_dim=8,attention_units=8,beam_width=2,"
                                       "train_images=50")
    loop.train(exp, params, loop.RunConfig(model_dir=str(tmp_path / "xu"), data_dir=data_dir,
                                           cache_dir=cache_dir, verbose=False))
    jpeg = next((pathlib.Path(data_dir) / "flickr8k" / "images").glob("*.jpg"))
    png = tmp_path / "photo.png"
    png.write_bytes(tf.io.encode_png(tf.io.decode_jpeg(jpeg.read_bytes())).numpy())
    task, model = run_module.restore_best(exp, params, str(tmp_path / "xu"),
                                          _empty_dir(tmp_path), cache_dir=cache_dir,
                                          read_data=False)
    assert task.input_problem(str(png)) is None
    assert "not an image of a known format" in task.input_problem(str(tmp_path / "xu" /
                                                                      "config.json"))
    [out] = task.predict(model, [str(png)], str(tmp_path / "out"))
    assert out["caption"] and os.path.isfile(out["files"][0])


def test_a_bad_predict_is_refused_before_the_run_is_loaded(snli_run, tmp_path):
    """Checked before anything is read: the run's data is not even needed to refuse it."""
    empty = tmp_path / "no_data"
    empty.mkdir()
    out = _cli("evaluate.py", f"--model_dir={snli_run}", "--predict=only a premise",
               f"--data_dir={empty}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("evaluate.py: error: --predict must be two non-empty texts")


# ------------------------------------------------------------------------- --describe
def test_every_hyperparameter_of_every_experiment_says_what_it_means():
    for name, exp in registry.load_all().items():
        assert not exp.undescribed(), f"{name}: no meaning for {exp.undescribed()}"
        unused = set(exp.paper_values) - set(exp.hparams)
        assert not unused, f"{name}: paper values of no hyperparameter {unused}"


def test_describe_prints_each_hyperparameter_its_default_and_the_paper_s_value():
    block = ("import sys, runpy; sys.modules['tensorflow'] = None; sys.argv = sys.argv[1:]; "
             "runpy.run_path(sys.argv[0], run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", block, "train.py",
                          "--describe=zaremba2014/imdb_medium"], cwd=REPO, env=CLI_ENV,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    exp = registry.get("zaremba2014/imdb_medium")
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines()
            if line and line.split()[0] in exp.hparams}
    assert set(rows) == set(exp.hparams)
    assert rows["hidden_units"][1:3] == ["650", "650"]  # default, the paper's (Section 4.1)
    assert rows["eval_examples"][1:3] == ["500", "-"]  # the paper has none
    assert " ".join(rows["dropout"][3:]) == exp.hyperparameters["dropout"].meaning
    assert "paper: 82.7 perplexity on test" in out.stdout
    out = _cli("train.py", "--describe=cho2014/nope")
    assert out.returncode == 2 and "unknown experiment 'cho2014/nope'" in out.stderr


# ------------------------------------------------------------------------------ quiet
def test_a_split_with_missing_images_logs_one_counted_line(data_dir, caplog):
    import datasets

    with caplog.at_level("WARNING", logger="datasets.flickr8k"):
        loaded = datasets.load("flickr8k", "train", data_dir)
    lines = [r.getMessage() for r in caplog.records if r.name == "datasets.flickr8k"]
    assert len(lines) == 1, lines
    missing = loaded.info["missing_images"]
    assert lines[0].startswith(f"Flickr8k train: {missing} of 6000 listed images are not in ")
    assert sum(name in lines[0] for name in loaded.info["missing_image_examples"]) == 1


def test_an_export_is_quiet_and_has_one_signature(bow_run, tmp_path):
    model_dir, _ = bow_run
    export_dir = tmp_path / "export"
    out = _cli("evaluate.py", f"--model_dir={model_dir}", f"--export={export_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stderr == "", out.stderr  # no INFO lines of TensorFlow's (--tf_logs shows them)
    assert out.stdout.splitlines()[-1].startswith(f"exported {BOW} to {export_dir} in ")
    import tensorflow as tf

    assert list(tf.saved_model.load(str(export_dir)).signatures) == ["serving_default"]


# ---------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("keep", [0, 1, 2])
def test_keep_checkpoints_sets_how_many_resumable_checkpoints_stay(tmp_path, keep):
    import tensorflow as tf

    params = TOY.params_with_overrides({"epochs": 1})
    loop.train(TOY, params,
               _config(tmp_path, verbose=False, checkpoint_every=4, keep_checkpoints=keep))
    if keep:
        state = tf.train.get_checkpoint_state(str(tmp_path / "run" / "checkpoints"))
        assert len(state.all_model_checkpoint_paths) == keep
    else:  # removed when the run finished; the run cannot be trained on from nothing
        assert not (tmp_path / "run" / "checkpoints").exists()
        with pytest.raises(Exception, match="checkpoints were removed"):
            loop.train(TOY, TOY.params_with_overrides({"epochs": 2}),
                       _config(tmp_path, verbose=False, extend=True))
    best = tf.train.latest_checkpoint(str(tmp_path / "run" / "best"))
    names = [name for name, _ in tf.train.list_variables(best)]
    assert any(n.startswith("model/") for n in names)
    assert not any(n.startswith("optimizer/") for n in names)  # best/ holds the model only
