r"""Evaluates trained runs, prints paper tables, and predicts with a trained model.

Examples:

    # the best checkpoint of a run on one split (the paper's test protocol)
    python evaluate.py --model_dir=runs/gru --split=test
    # a paper's table with the reproduced numbers beside the paper's (markdown)
    python evaluate.py --table=cho2014 --results_dir=runs
    # labels with probabilities (pairs separated by a tab); attention pictures where the task
    # draws them
    python evaluate.py --model_dir=runs/sst2 --predict="a gripping, funny film"
    python evaluate.py --model_dir=runs/mrpc --predict_file=pairs.tsv
    # a language model continues the prompt (greedy, sample, top_k, top_p or beam)
    python evaluate.py --model_dir=runs/lm --predict="My name is John and I like to" \
        --decoding=top_p --top_p=0.9 --temperature=0.8 --seed=1
    # a TensorFlow SavedModel that serves raw input (see training/export.py)
    python evaluate.py --model_dir=runs/sst2 --export=export/sst2
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags, logging

from training import cli, settings

FLAGS = flags.FLAGS

flags.DEFINE_string("experiment", None, "Check that the run is of this experiment.")
flags.DEFINE_string("model_dir", None, "The run's model dir.")
flags.DEFINE_string("data_dir", None, "The raw datasets (default: $KERAS_PAPERS_DATA_DIR, else "
                    "the run's own --data_dir where it still exists).")
settings.define_flags(["cache_dir", "tf_logs"])
flags.DEFINE_enum("split", "test", ["train", "dev", "test"], "Split to evaluate.")
flags.DEFINE_integer("batch_size", None, "Evaluation batch size (default: the run's).")
flags.DEFINE_string("table", None, "Print this paper's table (e.g. cho2014) from --results_dir.")
flags.DEFINE_string("results_dir", "runs", "Folder searched for results.json files.")
flags.DEFINE_string("predict", None, "An input to label: a text, 'a<TAB>b' for a pair, or an "
                    "image path, as the task takes.")
flags.DEFINE_string("predict_file", None, "A file with one input a line.")
flags.DEFINE_string("output_dir", None, "Where --predict writes pictures (default: "
                    "MODEL_DIR/predictions).")
flags.DEFINE_string("export", None, "Write the run as a TensorFlow SavedModel serving raw "
                    "input (strings, string pairs or JPEG bytes) into this new folder.")

# --- Text generation (language models; --predict continues the prompt) ----------------------
# Read into one layers.generation.Decoding and passed to the task's predict(..., decoding=...).
GENERATION_FLAGS = ("decoding", "temperature", "top_k", "top_p", "beam_width", "length", "seed")
flags.DEFINE_enum("decoding", "greedy", ["greedy", "sample", "top_k", "top_p", "beam"],
                  "How a language model continues --predict: argmax, sampling from the whole "
                  "distribution, from the k most probable tokens, from the nucleus of "
                  "probability p, or beam search.")
flags.DEFINE_float("temperature", 1.0, "Sampling temperature (sample, top_k, top_p).")
flags.DEFINE_integer("top_k", 10, "k of --decoding=top_k.")
flags.DEFINE_float("top_p", 0.9, "p of --decoding=top_p.")
flags.DEFINE_integer("beam_width", 5, "Hypotheses kept by --decoding=beam.")
flags.DEFINE_integer("length", 30, "The most tokens to generate.")
flags.DEFINE_integer("seed", 0, "Seed of the sampling: the same seed gives the same text.")
# ---------------------------------------------------------------------------------------------


def _read_run(model_dir: str, experiment: str | None):
    """The run's experiment and hyperparameters, from its ``config.json``."""
    from papers import registry
    from training import run_dir

    saved = run_dir.read_config(model_dir)
    if saved is None:
        raise app.UsageError(f"{run_dir.config_path(model_dir)} not found: --model_dir must be "
                             "a trained run's folder")
    if experiment and experiment != saved["experiment"]:
        raise app.UsageError(f"{model_dir} holds {saved['experiment']}, not {experiment}")
    try:
        exp = registry.get(saved["experiment"])
        return exp, exp.params_with_overrides(saved["params"])
    except ValueError as e:
        raise app.UsageError(f"{run_dir.config_path(model_dir)}: {e}") from None


def _recorded_data_dir(model_dir: str) -> str | None:
    """The ``--data_dir`` the run trained with (its ``results.json``), when it still exists."""
    from training import io

    path = os.path.join(model_dir, "results.json")
    data_dir = io.read_json(path).get("config", {}).get("data_dir") if io.exists(path) else None
    if data_dir and io.exists(data_dir):
        logging.info("reading data from %s, the run's --data_dir", data_dir)
        return data_dir
    return None


def _unfinished(model_dir: str) -> str | None:
    """``None`` for a finished run; else what a reader of its numbers must know: it is still
    training (and by which process), or it stopped before its end."""
    from training import run_dir

    saved = run_dir.read_config(model_dir)
    if "identity" not in saved or run_dir.finished_results(model_dir, saved,
                                                           saved["identity"]):
        return None
    who = run_dir.training_now(model_dir)
    if who:
        return f"{model_dir} is still training ({who})"
    return f"{model_dir} has not finished (it stopped; its train.py command resumes it)"


def _prediction_inputs() -> list[tuple[str, str]]:
    """``(where, input)`` of ``--predict`` and each line of ``--predict_file``."""
    from datasets import files

    inputs = []
    if FLAGS["predict"].present:
        if not FLAGS.predict.strip():
            raise app.UsageError("--predict is empty: give a text (or 'a<TAB>b', or an image "
                                 "path)")
        inputs.append(("--predict", FLAGS.predict))
    if FLAGS.predict_file:
        inputs += [(f"{FLAGS.predict_file}, line {n}", line)
                   for n, line in files.read_lines(FLAGS.predict_file)]
        if not inputs:
            raise app.UsageError(f"{FLAGS.predict_file} has no inputs")
    return inputs


def _checked_inputs(task, inputs: list[tuple[str, str]]) -> tuple[list[str], dict[int, str]]:
    """The inputs the task takes, and the problem of each other one by its position.

    Checked before the run is loaded: a bad ``--predict`` ends the program at once; a bad line
    of ``--predict_file`` is reported on standard error and the other lines go on.
    """
    good, problems = [], {}
    for n, (where, raw) in enumerate(inputs):
        problem = task.input_problem(raw)
        if problem is None:
            good.append(raw)
        elif where == "--predict":
            raise app.UsageError(f"--predict {problem}")
        else:
            problems[n] = problem
            print(f"{os.path.basename(sys.argv[0])}: {where}: {problem}; skipped",
                  file=sys.stderr, flush=True)
    if not good:
        raise app.UsageError("no input to predict: every one has a problem (above)")
    return good, problems


def _restore_without_data(exp, params: dict, data_dir: str | None, task=None):
    """The run's task and best model from what its model dir holds, reading no dataset (a run
    dir written before it kept those files needs its data; the message says so)."""
    from datasets.errors import MissingDataError
    from training import run

    try:
        return run.restore_best(exp, params, FLAGS.model_dir, data_dir,
                                cache_dir=FLAGS.cache_dir, task=task, read_data=False)
    except MissingDataError as e:
        raise cli.UserError(f"{FLAGS.model_dir} was trained before runs kept what prediction "
                            f"and export read (labels, model inputs): its data is needed "
                            f"once, and is not found ({e}); pass the run's --data_dir") from None


def _predict(exp, params: dict, data_dir: str | None, inputs: list[tuple[str, str]]) -> int:
    """Labels (or continues, or captions) the inputs; one JSON line per input, in order (a
    rejected line with its ``error``). Exit status 1 when a line was rejected."""
    from training.task import PredictionNotSupported

    task = exp.make_task(params, data_dir, FLAGS.model_dir)
    if not task.supports_prediction():
        raise PredictionNotSupported(f"{type(task).__name__} does not support prediction "
                                     "from raw input")
    decoding = _decoding_kwargs(task)
    good, problems = _checked_inputs(task, inputs)
    task, model = _restore_without_data(exp, params, data_dir, task)
    output_dir = FLAGS.output_dir or os.path.join(FLAGS.model_dir, "predictions")
    try:
        predictions = iter(task.predict(model, good, output_dir, **decoding))
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    for n, (_, raw) in enumerate(inputs):
        record = {"error": problems[n]} if n in problems else next(predictions)
        print(json.dumps({"input": raw, **record}, ensure_ascii=False), flush=True)
    return 1 if problems else 0


def _decoding_kwargs(task) -> dict:
    """``{"decoding": Decoding}`` from the generation flags when any is given, else ``{}``."""
    given = [name for name in GENERATION_FLAGS if FLAGS[name].present]
    if not given:
        return {}
    import inspect

    if "decoding" not in inspect.signature(task.predict).parameters:
        raise app.UsageError(f"--{', --'.join(given)}: only a language model generates text; "
                             f"{type(task).__name__} does not")
    from layers.generation import Decoding

    try:
        return {"decoding": Decoding(**{name: FLAGS[name].value for name in GENERATION_FLAGS})}
    except ValueError as e:
        raise app.UsageError(f"--{e}") from None


def _table() -> int:
    from papers import registry
    from training import report

    try:
        experiments = registry.by_paper(FLAGS.table)
        runs = report.collect(FLAGS.results_dir)
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e)) from None
    print(report.paper_table(FLAGS.table, experiments, runs, FLAGS.results_dir))
    return 0


@cli.main_with_user_errors
def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.table:
        return _table()
    if not FLAGS.model_dir:
        raise app.UsageError("--model_dir is required (or --table)")
    if FLAGS.batch_size is not None and FLAGS.batch_size < 1:
        raise app.UsageError(f"--batch_size must be at least 1, got {FLAGS.batch_size}")
    exp, params = _read_run(FLAGS.model_dir, FLAGS.experiment)
    if not FLAGS["verbosity"].present and not FLAGS.tf_logs:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines (SavedModel writing…)
    cli.import_tensorflow(FLAGS.tf_logs)
    import tensorflow as tf

    from datasets.paths import resolve_data_dir

    predicting = FLAGS["predict"].present or FLAGS.predict_file
    generation_flags = [name for name in GENERATION_FLAGS if FLAGS[name].present]
    if generation_flags and not predicting:
        raise app.UsageError(f"--{', --'.join(generation_flags)} apply to --predict or "
                             "--predict_file")
    inputs = _prediction_inputs() if predicting else []

    from training import evaluation, io, report, run

    data_dir = resolve_data_dir(FLAGS.data_dir) or _recorded_data_dir(FLAGS.model_dir)
    if predicting:
        return _predict(exp, params, data_dir, inputs)
    if FLAGS.export:
        from training import export

        task, model = _restore_without_data(exp, params, data_dir)
        print(f"exporting {exp.name} to {FLAGS.export}: tracing the serving function and "
              "writing the SavedModel…", flush=True)
        started = time.time()
        try:
            path = export.export_run(task, model, FLAGS.export)
        except FileExistsError as e:
            raise app.UsageError(str(e)) from None
        print(f"exported {exp.name} to {path} in {time.time() - started:.0f}s: signature "
              "'serving_default'")
        return 0
    unfinished = _unfinished(FLAGS.model_dir)
    try:
        task, model = run.restore_best(exp, params, FLAGS.model_dir, data_dir,
                                       cache_dir=FLAGS.cache_dir)
    except run.NoBestCheckpoint as e:
        if not unfinished:
            raise
        raise cli.UserError(f"{unfinished}, and has no best checkpoint yet: it is written at "
                            "the run's first evaluation") from e
    evaluate = evaluation.make_evaluator(task, model, tf.distribute.get_strategy(),
                                         per_replica_batch=FLAGS.batch_size or
                                         params["batch_size"])
    metrics, _ = evaluate(FLAGS.split, final=True)
    record = {"experiment": exp.name, "split": FLAGS.split, "metrics": metrics,
              "finished": unfinished is None}
    if unfinished:
        record["note"] = (f"{unfinished}: these are the numbers of its best checkpoint so "
                          "far, not of the finished run")
        print(f"evaluate.py: note: {record['note']}", file=sys.stderr, flush=True)
    print(json.dumps(record, indent=2), flush=True)
    for line in report.beside_paper(exp, {FLAGS.split: metrics}):
        print(line, flush=True)
    path = os.path.join(FLAGS.model_dir, f"eval_{FLAGS.split}.json")
    try:
        io.atomic_write_json(path, record)
    except OSError as e:
        print(f"evaluate.py: error: the metrics are printed above, but {path} could not be "
              f"written ({e.strerror or e})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
