r"""The suite's LSTM language model beside PyTorch's word-language-model example.

The peer is ``word_language_model/main.py`` of ``pytorch/examples``, run unchanged from a
checkout the user provides (``--examples_dir``), by a Python that has ``torch`` (``--python``,
an environment of its own: ``python -m venv /work/torchenv && /work/torchenv/bin/pip install
torch==2.13.0``). Nothing of it is copied into the suite. Three jobs (``--mode``):

- ``export``: the experiment's tokenised corpus (the same reviews, tokens and vocabulary as
  ``train.py`` with the same ``--params``) as the example's ``train.txt``, ``valid.txt`` and
  ``test.txt`` in ``--corpus_dir`` (``papers/zaremba2014/corpus.py``), checked to read back as
  the suite's token ids.
- ``peer``: trains the example on those files with the flags that give the experiment's
  configuration (below) and writes what its log says (validation perplexity after every epoch,
  test perplexity of the best model, milliseconds per batch) to ``--output`` as JSON, with the
  process's wall and CPU time.
- ``throughput``: one measurement of one contender's training throughput (``--contender=suite``
  or ``peer``), printed as one JSON line for ``bench/interleave.py``: ``tokens_per_second``
  (wall clock) and ``cpu_ms_per_1k_tokens`` (the process's user + system CPU time; it depends
  far less than the wall clock on what else the machine runs). The suite: the shared loop's
  training function (``bench.task_step_throughput``) on the experiment's own pipeline, one
  untimed call of ``--log_interval`` steps, then ``--intervals`` timed calls. The peer: its
  ``main.py`` on the first ``(intervals + 1) × log_interval`` batches of the same corpus (a
  ``valid.txt`` of one line holding every vocabulary word keeps its softmax the suite's size),
  timed between its own log lines (``--log-interval``), the first interval untimed.

The configuration, from the experiment's hyperparameters (``papers/zaremba2014``): ``--model
LSTM --emsize n --nhid n --nlayers L --dropout p --bptt T --batch_size B --epochs E`` and
``--tied`` for tied rows. The suite's loss of a batch is summed over its ``T`` steps (Zaremba
et al.'s code) and the example's is averaged over them, so the suite's learning rate ``η`` and
clipping norm ``c`` are the example's ``--lr η·T --clip c/T`` (the same update in exact
arithmetic; for the small model, ``η = 1, c = 5, T = 20`` give the example's defaults ``--lr 20
--clip 0.25``). The example divides its rate by 4 whenever the validation loss does not improve,
where Zaremba et al. divide it by ``lr_decay`` every epoch after ``max_epoch``; the
configurations are the same only while neither divides, so ``--epochs`` is refused above
``max_epoch + 1`` and the example's log is checked for a division. What differs by design: the
initialisation (the example draws the embedding and output weights from U(-0.1, 0.1), the output
bias 0 and the LSTM from PyTorch's default U(-1/√n, 1/√n) with two biases per gate; the suite
every parameter from U(-init, init), one bias), the example also trains on each epoch's last
chunk shorter than ``T`` (fewer than ``T × B`` tokens), and the suite's softmax has one more
entry, ``<pad>``, that never occurs. Its validation and test perplexities use 10 streams: compare
``evaluate.py --batch_size=10``.

Examples (from the repository root; ``fetch`` gives a bare mirror of pytorch/examples, and
``git --git-dir=... archive HEAD word_language_model | tar -x -C /work/pytorch_examples``
checks its folder out)::

    python -m bench.word_lm_peer --mode=export --experiment=zaremba2014/imdb_small \
        --params=train_examples=2000 --corpus_dir=/work/runs/lm/corpus_2000
    python -m bench.word_lm_peer --mode=peer --experiment=zaremba2014/imdb_small \
        --params=train_examples=2000 --epochs=5 --corpus_dir=/work/runs/lm/corpus_2000 \
        --examples_dir=/work/pytorch_examples --python=/work/torchenv/bin/python \
        --output=/work/runs/lm/peer_small/peer.json
    python -m bench.interleave --repetitions=5 --threads=2 --metric=tokens_per_second \
        --columns=cpu_ms_per_1k_tokens,process_wall_s \
        --contender="suite=.venv/bin/python -m bench.word_lm_peer --mode=throughput \
            --contender=suite --params=train_examples=2000 --corpus_dir=/work/runs/lm/corpus_2000" \
        --contender="peer=.venv/bin/python -m bench.word_lm_peer --mode=throughput \
            --contender=peer --params=train_examples=2000 --corpus_dir=/work/runs/lm/corpus_2000 \
            --examples_dir=/work/pytorch_examples --python=/work/torchenv/bin/python"
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from typing import Any

from absl import app, flags

from training import settings

FLAGS = flags.FLAGS
# The suite's own settings (training.settings), as train.py declares them.
settings.define_flags(["experiment", "params", "data_dir", "cache_dir"],
                      defaults={"experiment": "zaremba2014/imdb_small"})
flags.DEFINE_enum("mode", None, ["export", "peer", "throughput"], "What to do (see above).")
flags.DEFINE_integer("epochs", None, "Epochs (default: the experiment's).")
flags.DEFINE_integer("seed", 1111, "The example's --seed (its default).")
flags.DEFINE_string("corpus_dir", None, "Where the exported train.txt/valid.txt/test.txt are.")
flags.DEFINE_string("examples_dir", None, "A checkout of pytorch/examples (or of its "
                    "word_language_model folder).")
flags.DEFINE_string("python", None, "A Python with torch, for the example.")
flags.DEFINE_string("output", None, "--mode=peer: the JSON file written.")
flags.DEFINE_enum("contender", "suite", ["suite", "peer"], "--mode=throughput: whose.")
flags.DEFINE_integer("log_interval", 20, "--mode=throughput: batches per timed interval.")
flags.DEFINE_integer("intervals", 5, "--mode=throughput: timed intervals.")

_EPOCH = re.compile(r"\| end of epoch +(\d+) \| time: +([\d.]+)s \| valid loss +([\d.]+) \| "
                    r"valid ppl +([\d.]+)")
_BATCH = re.compile(r"\| epoch +(\d+) \| +(\d+)/ *(\d+) batches \| lr ([\d.]+) \| ms/batch +"
                    r"([\d.]+) \| loss +([\d.]+)")
_TEST = re.compile(r"\| End of training \| test loss +([\d.]+) \| test ppl +([\d.]+)")


def _params() -> tuple[Any, dict]:
    from papers import registry

    experiment = registry.get(FLAGS.experiment)
    params = experiment.params_with_overrides(FLAGS.params)
    if FLAGS.epochs is not None:
        params["epochs"] = FLAGS.epochs
    return experiment, params


def peer_flags(params: dict) -> list[str]:
    """The example's flags for the experiment's configuration (see the module docstring).

    Raises:
        app.UsageError: a setting the example cannot reproduce.
    """
    if params["epochs"] > params["max_epoch"] + 1:
        raise app.UsageError(
            f"epochs={params['epochs']}: the example has no fixed decay, so the schedules are "
            f"the same only for at most max_epoch + 1 = {params['max_epoch'] + 1} epochs")
    if params["num_layers"] < 1 or params["train_steps"]:
        raise app.UsageError("the example trains whole epochs: train_steps must be 0")
    bptt = int(params["bptt"])
    out = ["--model", "LSTM", "--emsize", str(params["hidden_units"]),
           "--nhid", str(params["hidden_units"]), "--nlayers", str(params["num_layers"]),
           "--dropout", str(params["dropout"]), "--bptt", str(bptt),
           "--batch_size", str(params["batch_size"]), "--epochs", str(params["epochs"]),
           "--lr", repr(float(params["learning_rate"]) * bptt),
           "--clip", repr(float(params["clip_norm"]) / bptt), "--seed", str(FLAGS.seed)]
    return out + (["--tied"] if params["tied"] else [])


def _prepared_task(params: dict):
    """The experiment's task, prepared in a temporary model dir (vocabulary and ids)."""
    from papers import registry
    from datasets.paths import resolve_data_dir
    from training.task import RunEnv

    model_dir = tempfile.mkdtemp(prefix="word_lm_peer_")
    task = registry.get(FLAGS.experiment).make_task(params, resolve_data_dir(FLAGS.data_dir),
                                                    model_dir)
    task.prepare(RunEnv(cache_dir=FLAGS.cache_dir or settings.default_cache_dir()))
    shutil.rmtree(model_dir, ignore_errors=True)
    return task


def export() -> int:
    from papers.zaremba2014 import corpus

    _, params = _params()
    task = _prepared_task(params)
    paths = corpus.write_text_corpus(FLAGS.corpus_dir, task.ids, task.vocab)
    ids_of = {corpus.plain_token(token): i for i, token in enumerate(task.vocab.tokens)}
    for split, path in paths.items():  # read back as the example reads it (data.py)
        with open(path, encoding="utf8") as f:
            words = [w for line in f for w in line.split() + [corpus.EOS]]
        if [ids_of[w] for w in words] != task.ids[split].tolist():
            raise RuntimeError(f"{path} does not read back as the suite's {split} tokens")
        print(f"{split}: {len(words)} tokens -> {path}")
    with open(os.path.join(FLAGS.corpus_dir, "vocab.txt"), "w", encoding="utf8") as f:
        f.write("".join(t + "\n" for t in ids_of))
    return 0


def _main_py() -> str:
    if not FLAGS.examples_dir or not FLAGS.python:
        raise app.UsageError("--examples_dir and --python are required for the peer")
    for candidate in ("word_language_model/main.py", "main.py"):
        path = os.path.join(FLAGS.examples_dir, candidate)
        if os.path.exists(path):
            return path
    raise app.UsageError(f"no word_language_model/main.py under {FLAGS.examples_dir}")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux ``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_peer(data: str, arguments: list[str], on_line=None) -> dict[str, Any]:
    """Runs the example on ``data``; returns its parsed log, wall and CPU seconds."""
    main = _main_py()
    save = os.path.join(tempfile.mkdtemp(prefix="word_lm_peer_"), "model.pt")
    command = [FLAGS.python, main, "--data", data, "--save", save] + arguments
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=os.path.dirname(main), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    log = []
    for line in process.stdout:
        log.append(line.rstrip("\n"))
        if on_line:
            on_line(line, process.pid)
    process.wait()
    wall = time.perf_counter() - started
    shutil.rmtree(os.path.dirname(save), ignore_errors=True)
    if process.returncode:
        raise RuntimeError(f"the example failed ({process.returncode}):\n" +
                           "\n".join(log[-30:]))
    epochs = [{"epoch": int(m[1]), "seconds": float(m[2]), "valid_loss": float(m[3]),
               "valid_ppl": float(m[4])} for m in map(_EPOCH.search, log) if m]
    batches = [{"epoch": int(m[1]), "batch": int(m[2]), "lr": float(m[4]),
                "ms_per_batch": float(m[5]), "loss": float(m[6])}
               for m in map(_BATCH.search, log) if m]
    test = next((m for m in map(_TEST.search, log) if m), None)
    return {"command": command, "wall_seconds": wall, "epochs": epochs, "batches": batches,
            "test_loss": float(test[1]) if test else None,
            "test_ppl": float(test[2]) if test else None, "log_tail": log[-5:]}


def peer() -> int:
    from training import io

    if not FLAGS.output:
        raise app.UsageError("--output is required with --mode=peer")
    _, params = _params()
    before = os.times()
    result = run_peer(FLAGS.corpus_dir, peer_flags(params))
    after = os.times()
    result["cpu_seconds"] = (after.children_user - before.children_user +
                             after.children_system - before.children_system)
    rates = {b["lr"] for b in result["batches"]}
    result["annealed"] = len(rates) > 1
    result["params"] = params
    io.atomic_write_json(FLAGS.output, result)
    print(json.dumps({k: result[k] for k in ("epochs", "test_ppl", "wall_seconds",
                                            "cpu_seconds", "annealed")}))
    return 0


def _peer_throughput(params: dict) -> dict[str, Any]:
    """The example on the first batches of the corpus, timed between its log lines."""
    from papers.zaremba2014 import corpus

    batch, bptt = int(params["batch_size"]), int(params["bptt"])
    batches = (FLAGS.intervals + 1) * FLAGS.log_interval
    needed = batch * (batches * bptt + 1)
    data = tempfile.mkdtemp(prefix="word_lm_peer_data_")
    try:
        lines, count = [], 0
        with open(os.path.join(FLAGS.corpus_dir, "train.txt"), encoding="utf8") as f:
            for line in f:
                lines.append(line)
                count += len(line.split()) + 1
                if count >= needed:
                    break
        with open(os.path.join(FLAGS.corpus_dir, "vocab.txt"), encoding="utf8") as f:
            words = [w for w in f.read().split("\n") if w and w not in ("<pad>", corpus.EOS)]
        with open(os.path.join(data, "train.txt"), "w", encoding="utf8") as f:
            f.writelines(lines)
        for name in ("valid.txt", "test.txt"):
            with open(os.path.join(data, name), "w", encoding="utf8") as f:
                f.write(" ".join(words) + "\n")
        marks = []

        def on_line(line, pid):
            if _BATCH.search(line):
                marks.append((time.perf_counter(), _cpu_seconds(pid)))

        arguments = peer_flags({**params, "epochs": 1})
        run_peer(data, arguments + ["--log-interval", str(FLAGS.log_interval)], on_line)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    if len(marks) < FLAGS.intervals + 1:
        raise RuntimeError(f"the example logged {len(marks)} intervals, expected "
                           f"{FLAGS.intervals + 1}")
    (wall0, cpu0), (wall1, cpu1) = marks[0], marks[FLAGS.intervals]
    tokens = FLAGS.intervals * FLAGS.log_interval * batch * bptt
    return {"tokens_per_second": tokens / (wall1 - wall0),
            "cpu_ms_per_1k_tokens": 1e6 * (cpu1 - cpu0) / tokens, "tokens": tokens}


def _suite_throughput(params: dict) -> dict[str, Any]:  # params: as FLAGS.params gives them
    """The shared loop's training function, timed over whole calls of ``log_interval`` steps."""
    from bench import task_step_throughput

    runner = task_step_throughput.build_runner(
        FLAGS.experiment, FLAGS.params, data_dir=FLAGS.data_dir, cache_dir=FLAGS.cache_dir,
        mixed_precision="float32", jit_compile=False, static_shapes=True, deterministic=True,
        seed=0)
    try:
        float(runner.run(FLAGS.log_interval)[0])  # traces
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(FLAGS.intervals):
            total, done = runner.run(FLAGS.log_interval)
            float(total)
            if int(done) != FLAGS.log_interval:
                raise RuntimeError("the training data ended: use more reviews")
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        runner.close()
    tokens = FLAGS.intervals * FLAGS.log_interval * int(params["batch_size"]) * \
        int(params["bptt"])
    return {"tokens_per_second": tokens / wall, "cpu_ms_per_1k_tokens": 1e6 * cpu / tokens,
            "tokens": tokens}


def throughput() -> int:
    _, params = _params()
    measure = _peer_throughput if FLAGS.contender == "peer" else _suite_throughput
    result = measure(params)
    print(json.dumps({"contender": FLAGS.contender, "experiment": FLAGS.experiment,
                      "params": FLAGS.params, "load_average": os.getloadavg()[0], **result}),
          flush=True)
    return 0


def main(argv):
    del argv
    if FLAGS.mode in ("export", "peer") or FLAGS.contender == "peer":
        if not FLAGS.corpus_dir:
            raise app.UsageError("--corpus_dir is required")
    return {"export": export, "peer": peer, "throughput": throughput}[FLAGS.mode]()


if __name__ == "__main__":
    flags.mark_flag_as_required("mode")
    app.run(main)
