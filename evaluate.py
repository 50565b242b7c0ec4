r"""Evaluates trained runs, prints paper tables, and predicts with a trained model.

Examples:

    # the best checkpoint of a run on one split
    python evaluate.py --experiment=cho2014/sst2_gru --model_dir=runs/gru --split=test
    # a paper's table with the reproduced numbers beside the paper's (markdown)
    python evaluate.py --table=cho2014 --results_dir=runs
    # labels with probabilities (pairs separated by a tab)
    python evaluate.py --model_dir=runs/sst2 --predict="a gripping, funny film"
    python evaluate.py --model_dir=runs/mrpc --predict_file=pairs.tsv
"""

from __future__ import annotations

import json
import os

from absl import app, flags

FLAGS = flags.FLAGS

flags.DEFINE_string("experiment", None, "The run's experiment (default: from its config.json).")
flags.DEFINE_string("model_dir", None, "The run's model dir.")
flags.DEFINE_string("data_dir", None, "The raw datasets (default: $KERAS_PAPERS_DATA_DIR).")
flags.DEFINE_string("split", "test", "Split to evaluate.")
flags.DEFINE_integer("batch_size", None, "Evaluation batch size (default: the experiment's).")
flags.DEFINE_string("table", None, "Print this paper's table (e.g. cho2014) from --results_dir.")
flags.DEFINE_string("results_dir", "runs", "Folder searched for results.json files.")
flags.DEFINE_string("predict", None, "A text (or 'a<TAB>b' pair) to label.")
flags.DEFINE_string("predict_file", None, "A file with one text (or tab-separated pair) a line.")


def _run_params(model_dir: str, experiment: str | None):
    import tensorflow as tf

    from papers import registry
    from training import io

    path = os.path.join(model_dir, "config.json")
    if not tf.io.gfile.exists(path):
        raise app.UsageError(f"{path} not found: --model_dir must be a trained run's folder")
    saved = io.read_json(path)
    name = experiment or saved["experiment"]
    try:
        exp = registry.get(name)
    except ValueError as e:
        raise app.UsageError(str(e))
    if name != saved["experiment"]:
        raise app.UsageError(f"{model_dir} holds {saved['experiment']}, not {name}")
    return exp, exp.params_with_overrides(saved["params"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from datasets.paths import resolve_data_dir
    from papers import registry
    from training import io, loop, report

    if FLAGS.table:
        try:
            experiments = registry.by_paper(FLAGS.table)
        except ValueError as e:
            raise app.UsageError(str(e))
        print(f"## {FLAGS.table}: paper vs ours (runs under {FLAGS.results_dir})\n")
        print(report.paper_table(experiments, report.collect(FLAGS.results_dir)))
        return 0
    if not FLAGS.model_dir:
        raise app.UsageError("--model_dir is required (or --table)")
    exp, params = _run_params(FLAGS.model_dir, FLAGS.experiment)
    data_dir = resolve_data_dir(FLAGS.data_dir)
    task, model = loop.restore_best(exp, params, FLAGS.model_dir, data_dir)

    if FLAGS.predict or FLAGS.predict_file:
        texts = [FLAGS.predict] if FLAGS.predict else []
        if FLAGS.predict_file:
            import tensorflow as tf

            with tf.io.gfile.GFile(FLAGS.predict_file) as f:
                texts += [line.rstrip("\n") for line in f if line.strip()]
        if not hasattr(task, "predict_texts"):
            raise app.UsageError(f"{exp.name} does not support --predict")
        for text, prediction in zip(texts, task.predict_texts(model, texts)):
            print(json.dumps({"text": text, **prediction}, ensure_ascii=False))
        return 0

    batch = FLAGS.batch_size or params.get("batch_size", 32)
    import tensorflow as tf

    evaluate = loop.make_evaluator(task, model, tf.distribute.get_strategy(),
                                   per_replica_batch=batch)
    metrics = evaluate(FLAGS.split)
    io.atomic_write_json(os.path.join(FLAGS.model_dir, f"eval_{FLAGS.split}.json"),
                         {"experiment": exp.name, "split": FLAGS.split, "metrics": metrics})
    print(json.dumps({"experiment": exp.name, "split": FLAGS.split, "metrics": metrics},
                     indent=2))
    for r in exp.reported:
        if r.split == FLAGS.split:
            print(f"paper: {r.value:g} {r.metric or exp.metric} ({r.source})")
    return 0


if __name__ == "__main__":
    app.run(main)
