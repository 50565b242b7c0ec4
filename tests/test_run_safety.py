"""The CLIs as a user meets them: one-line errors, quiet start-up, refused restarts, and paper
tables that pool only runs of one setting."""

import json
import os
import re
import shutil
import socket
import time

import pytest

from papers import registry
from tests.conftest import BOW
from tests.conftest import run_cli as _cli
from training import report, run_dir

STARTUP_NOISE = ("absl::InitializeLog", "cuInit", "oneDNN", "cpu_feature_guard",
                 "use_unbounded_threadpool")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("args, message", [
    (["--eval_every=-1"], "--eval_every must be 0 (every epoch) or a number of steps, got -1"),
    (["--train_steps=-5"], "train_steps=-5 (must be 0 (train for `epochs`) or more)"),
    (["--epochs=0"], "epochs=0 (must be at least 1)"),
    (["--batch_size=0"], "batch_size=0 (must be at least 1)"),
    (["--batch_size=-4"], "batch_size=-4 (must be at least 1)"),
    (["--seeds=0,x"], "--seeds must be integers separated by commas, got '0,x'"),
    (["--params=learning_rate=inf"], "learning_rate=inf (must be a finite number)"),
    (["--params=dropout=7"], "dropout=7.0 (must be in [0, 1))"),
    (["--params=hidden=-3"], "hidden=-3 (must be at least 1)"),
    (["--params=l2=0.1"], "unknown hyperparameter 'l2' for cho2014/sst2_gru"),
    (["--batch_size=8", "--params=batch_size=16"], "--batch_size and --params=batch_size"),
    (["--strategy=tpu"], "--strategy=tpu needs --tpu"),
    (["--search=grid"], "cho2014/sst2_gru: the paper gives no hyperparameter grid"),
    (["--strategy=tpu", "--tpu=grpc://127.0.0.1:PORT"], "no TPU answers at grpc://127.0.0.1:"),
    (["--params=,,"], "--params=',,' sets no hyperparameter: expected key=value"),
    (["--flagfile=/nonexistent/flags.txt"], "Unable to open flagfile: [Errno 2] No such file "
                                             "or directory: '/nonexistent/flags.txt'"),
])
def test_invalid_flags_are_one_clear_line_and_touch_nothing(tmp_path, args, message):
    args = [a.replace("PORT", str(_free_port())) for a in args]
    out = _cli("train.py", "--experiment=cho2014/sst2_gru", f"--model_dir={tmp_path / 'run'}",
               *args, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("train.py: error: ") and message in out.stderr, out.stderr
    assert not (tmp_path / "run").exists()


def test_a_model_dir_that_cannot_hold_a_run_is_one_line(tmp_path, data_dir):
    """--extend on a dir without a run, --search into a dir that holds one run, and a
    --model_dir that names a regular file: one line, status 2, and no LOCK left."""
    (tmp_path / "file").write_text("not a dir")
    (tmp_path / "one_run").mkdir()
    (tmp_path / "one_run" / "config.json").write_text(json.dumps({"experiment": BOW}))
    cases = [
        (["--experiment=" + BOW, f"--model_dir={tmp_path / 'empty'}", "--extend"],
         f"--extend: {tmp_path / 'empty'} holds no run to extend (no config.json); drop "
         "--extend to start a new run there"),
        (["--experiment=rocktaschel2016/attention", f"--model_dir={tmp_path / 'one_run'}",
          "--search=grid"],
         f"--search writes one run per point under --model_dir, but {tmp_path / 'one_run'} "
         "holds a run (config.json); use another --model_dir"),
        (["--experiment=" + BOW, f"--model_dir={tmp_path / 'file'}"],
         f"cannot use {tmp_path / 'file'} as --model_dir: it is a file, not a folder"),
    ]
    for args, message in cases:
        out = _cli("train.py", *args, data_dir=data_dir, timeout=300)
        assert (out.returncode, out.stderr) == (2, f"train.py: error: {message}\n"), out.stderr
    assert not list(tmp_path.glob("**/LOCK"))


def test_tpu_local_reaches_tensorflow_as_local(monkeypatch):
    """``--tpu=local`` (a TPU VM or Colab) must reach the resolver as TensorFlow's "local"."""
    import tensorflow as tf

    from training import strategies

    asked = []

    def resolver(tpu=None, **_):
        asked.append(tpu)
        raise RuntimeError("no TPU on this machine")

    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", resolver)
    with pytest.raises(ConnectionError, match="could not connect to the TPU 'local': no TPU"):
        strategies.get_strategy("tpu", tpu="local", timeout=30)
    assert asked == ["local"]


@pytest.fixture
def silent_port():
    """A port on 127.0.0.1 that accepts TCP connections (the kernel's backlog) and never
    answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_a_tpu_port_that_accepts_and_never_answers_fails_within_the_timeout(silent_port):
    from training import strategies

    started = time.monotonic()
    with pytest.raises(TimeoutError, match=f"nothing at grpc://127.0.0.1:{silent_port} "
                       "answered as a TPU's gRPC server within 2 s"):
        strategies.get_strategy("tpu", tpu=f"grpc://127.0.0.1:{silent_port}", timeout=2)
    assert time.monotonic() - started < 3


def test_a_silent_tpu_is_one_line_from_train_py(tmp_path, silent_port):
    out = _cli("train.py", "--experiment=cho2014/sst2_gru", f"--model_dir={tmp_path / 'run'}",
               "--strategy=tpu", f"--tpu=grpc://127.0.0.1:{silent_port}", "--tpu_timeout=3",
               timeout=120)
    assert out.returncode == 2 and out.stderr == (
        f"train.py: error: nothing at grpc://127.0.0.1:{silent_port} answered as a TPU's gRPC "
        "server within 3 s (--tpu_timeout); check --tpu\n"), out.stderr[-2000:]
    assert not (tmp_path / "run").exists()


def test_list_and_table_need_no_tensorflow(tmp_path):
    block = ("import sys, runpy; sys.modules['tensorflow'] = None; sys.argv = sys.argv[1:]; "
             "runpy.run_path(sys.argv[0], run_name='__main__')")
    out = _cli("train.py", "--list", python_args=("-c", block))
    assert out.returncode == 0, out.stderr[-2000:]
    assert BOW in out.stdout
    out = _cli("evaluate.py", "--table=cho2014", f"--results_dir={tmp_path}",
               python_args=("-c", block))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == f"no runs of cho2014 under {tmp_path}"
    out = _cli("evaluate.py", "--table=cho2014", f"--results_dir={tmp_path / 'nowhere'}")
    assert out.returncode == 2 and "is not a directory" in out.stderr
    assert "Traceback" not in out.stderr


def test_training_output_is_quiet_plain_and_counts_right(bow_run):
    _, out = bow_run
    for noise in STARTUP_NOISE:
        assert noise not in out.stderr, out.stderr[-2000:]
    assert "\x1b" not in out.stdout and "\r" not in out.stdout
    # the total is --train_steps, not the epoch
    assert "training (epoch 1): step 30/30 [" in out.stdout
    assert "examples=872" in out.stdout  # counts print as integers


def test_a_restart_with_another_seed_is_refused_and_config_is_kept(bow_run, data_dir):
    model_dir, _ = bow_run
    config = (model_dir / "config.json").read_bytes()
    out = _cli("train.py", f"--experiment={BOW}", f"--model_dir={model_dir}",
               "--train_steps=30", "--eval_every=30", "--seed=1", data_dir=data_dir)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "seed: 0 → 1" in out.stderr and "use a new --model_dir" in out.stderr
    assert (model_dir / "config.json").read_bytes() == config
    again = _cli("train.py", f"--experiment={BOW}", f"--model_dir={model_dir}",
                 "--train_steps=30", "--eval_every=30", "--tf_logs", data_dir=data_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "absl::InitializeLog" in again.stderr  # --tf_logs shows what is hidden otherwise


def test_evaluate_errors_and_a_read_only_model_dir(bow_run, data_dir, tmp_path):
    model_dir, _ = bow_run
    out = _cli("evaluate.py", f"--model_dir={model_dir}", "--predict=", data_dir=data_dir)
    assert out.returncode == 2 and "--predict is empty" in out.stderr
    out = _cli("evaluate.py", f"--model_dir={model_dir}", "--predict=a fine film",
               data_dir=data_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["label"] in ("negative", "positive")
    absl_info = [line for line in out.stderr.splitlines() if re.match(r"I\d{4} ", line)]
    assert not absl_info, absl_info  # as quiet as train.py
    missing = tmp_path / "nope.txt"
    out = _cli("evaluate.py", f"--model_dir={model_dir}", f"--predict_file={missing}",
               data_dir=data_dir)
    assert out.returncode == 2 and f"{missing}: file not found" in out.stderr
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"a good line\nbad \xff byte\n")
    out = _cli("evaluate.py", f"--model_dir={model_dir}", f"--predict_file={bad}",
               data_dir=data_dir)
    assert out.returncode == 2 and f"{bad}, line 2: invalid UTF-8" in out.stderr
    for result in (out,):
        assert "Traceback" not in result.stderr

    (model_dir / "eval_dev.json").mkdir()  # the write fails, as in a read-only dir
    try:
        out = _cli("evaluate.py", f"--model_dir={model_dir}", "--split=dev", data_dir=data_dir)
    finally:
        (model_dir / "eval_dev.json").rmdir()
    assert out.returncode == 1
    printed = json.loads(out.stdout[:out.stdout.rindex("}") + 1])
    results = json.loads((model_dir / "results.json").read_text())
    assert printed["metrics"]["accuracy"] == pytest.approx(results["metrics"]["dev"]["accuracy"])
    assert "the metrics are printed above" in out.stderr and "Traceback" not in out.stderr


def test_evaluate_on_a_run_that_has_not_finished_says_so(bow_run, data_dir, tmp_path):
    """A finished run's numbers carry ``finished: true``; a run still training (its LOCK held
    by a live process) or stopped before its end gets a note on standard error and in
    ``eval_dev.json``; one still training without a best checkpoint is one line."""
    model_dir, _ = bow_run
    run = tmp_path / "bow"
    shutil.copytree(model_dir, run)
    out = _cli("evaluate.py", f"--model_dir={run}", "--split=dev", data_dir=data_dir)
    assert out.returncode == 0 and "note" not in out.stderr, out.stderr[-2000:]
    finished = json.loads((run / "eval_dev.json").read_text())
    assert finished["finished"] is True and "note" not in finished

    (run / "results.json").unlink()
    with run_dir.Lock(str(run), command="train.py (this test)"):
        out = _cli("evaluate.py", f"--model_dir={run}", "--split=dev", data_dir=data_dir)
        assert out.returncode == 0, out.stderr[-2000:]
        assert (f"evaluate.py: note: {run} is still training (process {os.getpid()} on "
                f"{socket.gethostname()} since ") in out.stderr
        record = json.loads((run / "eval_dev.json").read_text())
        assert record["finished"] is False and "its best checkpoint so far" in record["note"]
        assert record["metrics"] == finished["metrics"]

        shutil.rmtree(run / "best")
        out = _cli("evaluate.py", f"--model_dir={run}", "--split=dev", data_dir=data_dir)
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert out.stderr.startswith(f"evaluate.py: error: {run} is still training (process "
                                     f"{os.getpid()}")
        assert "and has no best checkpoint yet" in out.stderr

    shutil.copytree(model_dir / "best", run / "best")
    out = _cli("evaluate.py", f"--model_dir={run}", "--split=dev", data_dir=data_dir)
    assert f"evaluate.py: note: {run} has not finished (it stopped" in out.stderr


# ------------------------------------------------------------------------------ tables
def _results(root, name, *, seed=0, status="ok", accuracy=80.0, **params):
    exp = registry.get(BOW)
    run = root / name
    run.mkdir(parents=True)
    identity = {"experiment": BOW, "params": {**exp.hparams, **params}, "seed": seed,
                "mixed_precision": "float32", "eval_every": 0, "static_shapes": False,
                "data": {"train": "abc", "dev": "def"}}
    identity = json.loads(json.dumps(identity))
    (run / "config.json").write_text(json.dumps({"experiment": BOW, "identity": identity,
                                                 "params": identity["params"]}))
    if status == "ok":
        (run / "results.json").write_text(json.dumps({
            "experiment": BOW, "status": "ok", "identity": identity, "params": identity["params"],
            "metrics": {"dev": {"accuracy": accuracy}, "test": {"accuracy": accuracy - 1}},
            "steps": 100, "global_batch_size": 32, "train_seconds": 10.0,
            "examples_per_second": 320.0}))
    elif status == "diverged":
        (run / "diverged.json").write_text("{}")


def test_a_table_row_pools_one_setting_and_notes_what_it_left_out(tmp_path):
    for seed, accuracy in ((0, 80.0), (1, 82.0), (2, 84.0)):
        _results(tmp_path, f"default/seed_{seed}", seed=seed, accuracy=accuracy)
    _results(tmp_path, "default_again/seed_1", seed=1, accuracy=50.0)   # duplicate seed,
    os.utime(tmp_path / "default_again/seed_1/results.json", (1e9, 1e9))   # older
    _results(tmp_path, "bs64", batch_size=64, accuracy=70.0)             # another setting
    _results(tmp_path, "killed", seed=5, status="unfinished")
    _results(tmp_path, "nan", seed=6, status="diverged")
    table = report.paper_table("baselines", registry.by_paper("baselines"),
                               report.collect(str(tmp_path)), str(tmp_path))
    rows = {line.split(" | ")[0] + " | " + line.split(" | ")[1]: line
            for line in table.splitlines() if line.startswith("| baselines/sst2")}
    default = rows["| baselines/sst2_bow_logreg | dev"]
    assert "| 82.00 ± 2.00 | 3 (0,1,2) |" in default  # the older run of seed 1 is left out
    assert "| 70.00 | 1 (0) |" in rows["| baselines/sst2_bow_logreg (batch_size=64) | dev"]
    assert "left out: 1 run(s) that repeat a seed" in table
    assert "left out: 1 run(s) that did not finish" in table and "killed" in table
    assert "left out: 1 run(s) that diverged" in table and "nan" in table
    assert "| baselines/sst5_bow_logreg | dev | accuracy | - | not run | 0 |" not in table


def test_a_table_shows_a_run_s_interval_over_the_test_items(tmp_path):
    for seed, interval in ((0, [78.0, 83.0]), (1, [80.0, 84.0])):
        _results(tmp_path, f"seed_{seed}", seed=seed, accuracy=80.0 + seed)
        path = tmp_path / f"seed_{seed}" / "results.json"
        record = json.loads(path.read_text())
        record["metrics"]["dev"]["accuracy/ci95"] = interval
        path.write_text(json.dumps(record))
    table = report.paper_table("baselines", registry.by_paper("baselines"),
                               report.collect(str(tmp_path)), str(tmp_path))
    assert "| 80.50 ± 0.71 (95 % CI ±2.25 per run) | 2 (0,1) |" in table
    only = report.paper_table("baselines", registry.by_paper("baselines"),
                              report.collect(str(tmp_path / "seed_0")), "")
    assert "| 80.00 (95 % CI 78.00–83.00) | 1 (0) |" in only


@pytest.mark.parametrize("content, problem", [
    ("[1, 2, 3]", "a JSON list, not a run's record"),
    ('{"experiment": "baselines/sst2_bow_logreg", "status": "ok"}', "no 'metrics' per split"),
    ('{"status": "ok", "metrics": {}}', "no 'experiment'"),
    ("{not json", "not readable JSON"),
])
def test_a_malformed_results_json_is_named_and_the_rest_of_the_table_printed(
        tmp_path, content, problem):
    _results(tmp_path, "good", accuracy=80.0)
    _results(tmp_path, "bad", accuracy=10.0)
    (tmp_path / "bad" / "results.json").write_text(content)
    table = report.paper_table("baselines", registry.by_paper("baselines"),
                               report.collect(str(tmp_path)), str(tmp_path))
    assert "| baselines/sst2_bow_logreg | dev | accuracy |" in table
    assert "| 80.00 | 1 (0) |" in table
    note = [line for line in table.splitlines() if "cannot be read" in line]
    assert note == [f"- left out: 1 run(s) that cannot be read: "
                    f"{tmp_path / 'bad' / 'results.json'} ({problem}" + note[0].split(problem)[1]]
    assert note[0].endswith(")")
