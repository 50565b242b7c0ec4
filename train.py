r"""Trains one registered experiment (a paper table row) with the shared loop.

Examples:

    python train.py --list
    python train.py --experiment=baselines/sst2_bow_logreg --model_dir=runs/bow \
        --data_dir=../shared/data
    python train.py --experiment=cho2014/sst2_gru --model_dir=runs/gru --seeds=0,1,2 \
        --params=learning_rate=1e-3,dropout=0.5
    python train.py --experiment=devlin2019/mrpc --model_dir=gs://bucket/mrpc \
        --strategy=tpu --tpu=local

A run writes into ``--model_dir`` (see ``training/loop.py``); with several ``--seeds`` each seed
gets ``MODEL_DIR/seed_N``. Re-running the same command resumes from the latest checkpoint.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags, logging

FLAGS = flags.FLAGS

flags.DEFINE_bool("list", False, "Print every registered experiment and exit.")
flags.DEFINE_string("experiment", None, "The experiment to train, 'paper/row' (see --list).")
flags.DEFINE_string("model_dir", None, "Where checkpoints, summaries and results go "
                    "(local or gs://).")
flags.DEFINE_string("data_dir", None, "The raw datasets (default: $KERAS_PAPERS_DATA_DIR, else "
                    "the online source).")
flags.DEFINE_enum("strategy", "default",
                  ["default", "one_device", "mirrored", "multi_worker_mirrored", "tpu"],
                  "tf.distribute strategy.")
flags.DEFINE_string("tpu", None, "TPU name or grpc address, or 'local' (TPU VM / Colab).")
flags.DEFINE_integer("num_cpu_devices", 1, "With --strategy=mirrored and no GPU: split the CPU "
                     "into this many logical devices (replicas).")
flags.DEFINE_integer("batch_size", None, "Global batch size (default: the experiment's).")
flags.DEFINE_integer("epochs", None, "Epochs (default: the experiment's).")
flags.DEFINE_integer("train_steps", None, "Total training steps; overrides --epochs.")
flags.DEFINE_integer("eval_every", 0, "Evaluate on dev every N steps (0: every epoch).")
flags.DEFINE_integer("steps_per_loop", 20, "Training steps per tf.function call.")
flags.DEFINE_integer("checkpoint_every", 0, "Also checkpoint every N steps (0: at evaluations).")
flags.DEFINE_integer("seed", 0, "Random seed (weights, dropout, data order).")
flags.DEFINE_list("seeds", None, "Several seeds, run one after the other into MODEL_DIR/seed_N.")
flags.DEFINE_bool("deterministic", True, "Enable TensorFlow op determinism.")
flags.DEFINE_enum("mixed_precision", "float32", ["float32", "mixed_float16", "mixed_bfloat16"],
                  "Keras dtype policy.")
flags.DEFINE_bool("jit_compile", False, "Compile the train step with XLA.")
flags.DEFINE_float("clip_norm", None, "Clip the gradient's global norm (default: the "
                   "experiment's clip_norm, if any).")
flags.DEFINE_integer("patience", None, "Early stopping: evaluations without a better dev "
                     "metric (default: the experiment's; 0 turns it off).")
flags.DEFINE_bool("static_shapes", False, "Fixed-shape batches (implied on TPU).")
flags.DEFINE_string("params", None, "Hyperparameter overrides, 'key=value,key2=value2'.")
flags.DEFINE_bool("verbose", True, "Show a progress bar.")
flags.DEFINE_enum("search", None, ["grid", "random", "bayesian"],
                  "Select learning rate, batch size and epochs on dev over Devlin et al.'s "
                  "Appendix A.3 grid: every point ('grid'), or keras-tuner's random or "
                  "Bayesian oracle for --max_trials points. Each run goes to MODEL_DIR/<point>.")
flags.DEFINE_integer("max_trials", 6, "With --search=random or bayesian: trials to run.")


def list_experiments() -> str:
    """One line per experiment: name, dataset, metric and the paper's reported numbers."""
    from papers import registry

    lines = []
    for name, exp in sorted(registry.load_all().items()):
        reported = "; ".join(f"{r.value:g} {r.metric or exp.metric} ({r.split}, {r.source})"
                             for r in exp.reported) or "-"
        lines.append(f"{name:<34} dataset={exp.dataset:<10} metric={exp.metric:<9} "
                     f"reported: {reported}")
    return "\n".join(lines)


def run_config(model_dir: str, seed: int):
    from training import loop

    return loop.RunConfig(
        model_dir=model_dir, data_dir=FLAGS.data_dir, strategy=FLAGS.strategy, tpu=FLAGS.tpu,
        num_cpu_devices=FLAGS.num_cpu_devices, batch_size=FLAGS.batch_size, epochs=FLAGS.epochs,
        train_steps=FLAGS.train_steps, eval_every=FLAGS.eval_every,
        steps_per_loop=FLAGS.steps_per_loop, checkpoint_every=FLAGS.checkpoint_every,
        seed=seed, deterministic=FLAGS.deterministic, mixed_precision=FLAGS.mixed_precision,
        jit_compile=FLAGS.jit_compile, clip_norm=FLAGS.clip_norm, patience=FLAGS.patience,
        static_shapes=FLAGS.static_shapes, verbose=FLAGS.verbose)


def check_resume(model_dir: str, experiment: str, params: dict) -> None:
    """Refuses to resume a model dir that holds another experiment or other hyperparameters."""
    import tensorflow as tf

    from training import io

    path = os.path.join(model_dir, "config.json")
    if not tf.io.gfile.exists(path):
        return
    saved = io.read_json(path)
    if saved.get("experiment") != experiment or saved.get("params") != json.loads(
            json.dumps(params)):
        raise ValueError(
            f"{model_dir} holds a run of {saved.get('experiment')} with params "
            f"{saved.get('params')}; use another --model_dir (this run: {experiment}, {params})")


def start_run(model_dir: str, experiment: str, params: dict, seed: int, strategy) -> None:
    """Checks that ``model_dir`` may be (re)used, then records the run in its config.json."""
    from training import io, strategies

    check_resume(model_dir, experiment, params)
    if strategies.is_chief(strategy):
        io.atomic_write_json(os.path.join(model_dir, "config.json"), {
            "experiment": experiment, "params": params, "command": " ".join(sys.argv),
            "seed": seed})


def run_search(experiment, params: dict, strategy) -> int:
    """Trains one run per hyperparameter point and keeps the best dev metric (search.json)."""
    from papers.devlin2019 import grid
    from training import io, loop, strategies

    if FLAGS.batch_size or FLAGS.epochs or FLAGS.train_steps:
        raise app.UsageError("--search chooses batch size and epochs: drop --batch_size, "
                             "--epochs and --train_steps")

    def run(point_params: dict) -> float:
        point = {k: point_params[k] for k in grid.PAPER_GRID}
        model_dir = os.path.join(FLAGS.model_dir, grid.run_name(point))
        start_run(model_dir, experiment.name, point_params, FLAGS.seed, strategy)
        result = loop.train(experiment, point_params, run_config(model_dir, FLAGS.seed),
                            strategy=strategy)
        value = result.results["metrics"]["dev"][experiment.metric]
        print(f"{grid.run_name(point)}: dev {experiment.metric}={value:.2f}", flush=True)
        return value

    if FLAGS.search == "grid":
        trials = [(p, run(p)) for _, p in grid.grid_runs(params)]
        best_params, best_value = grid.select_best(trials)
    else:
        found = grid.search(FLAGS.search, FLAGS.max_trials, run, base_params=params,
                            seed=FLAGS.seed,
                            directory=os.path.join(FLAGS.model_dir, "keras_tuner"))
        trials, best_params, best_value = found.trials, found.params, found.value
    best = {k: best_params[k] for k in grid.PAPER_GRID}
    if strategies.is_chief(strategy):
        io.atomic_write_json(os.path.join(FLAGS.model_dir, "search.json"), {
            "experiment": experiment.name, "search": FLAGS.search, "metric": experiment.metric,
            "best": best, "best_dev": best_value,
            "trials": [{"point": {k: p[k] for k in grid.PAPER_GRID}, "dev": v}
                       for p, v in trials]})
    print(f"best on dev: {grid.run_name(best)} ({experiment.metric}={best_value:.2f}); "
          f"its run is {os.path.join(FLAGS.model_dir, grid.run_name(best))}")
    return 0


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from datasets.paths import resolve_data_dir
    from papers import registry

    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines (checkpoint sharding…)
    if FLAGS.list:
        print(list_experiments())
        return 0
    if not FLAGS.experiment or not FLAGS.model_dir:
        raise app.UsageError("--experiment and --model_dir are required (or --list)")
    try:
        experiment = registry.get(FLAGS.experiment)
        params = experiment.params_with_overrides(FLAGS.params)
    except ValueError as e:
        raise app.UsageError(str(e))
    FLAGS.data_dir = resolve_data_dir(FLAGS.data_dir)

    from training import loop, strategies

    strategy = strategies.get_strategy(FLAGS.strategy, tpu=FLAGS.tpu,
                                       num_cpu_devices=FLAGS.num_cpu_devices)
    if FLAGS.search:
        return run_search(experiment, params, strategy)
    seeds = [int(s) for s in FLAGS.seeds] if FLAGS.seeds else [FLAGS.seed]
    for seed in seeds:
        model_dir = (os.path.join(FLAGS.model_dir, f"seed_{seed}") if FLAGS.seeds
                     else FLAGS.model_dir)
        start_run(model_dir, experiment.name, params, seed, strategy)
        result = loop.train(experiment, params, run_config(model_dir, seed), strategy=strategy)
        metrics = result.results["metrics"]
        logging.info("%s seed %d: %s", experiment.name, seed, metrics)
        print(f"{experiment.name} seed={seed}: " + "  ".join(
            f"{split} {experiment.metric}={m.get(experiment.metric, float('nan')):.2f}"
            for split, m in metrics.items()))
        for r in experiment.reported:
            print(f"  paper: {r.value:g} {r.metric or experiment.metric} on {r.split} "
                  f"({r.source}){' — ' + r.note if r.note else ''}")
    return 0


if __name__ == "__main__":
    app.run(main)
