r"""Trains one registered experiment (a paper table row) with the shared loop.

Examples:

    python train.py --list
    python train.py --describe=cho2014/sst2_gru     # its hyperparameters and the paper's values
    python train.py --experiment=baselines/sst2_bow_logreg --model_dir=runs/bow \
        --data_dir=../shared/data
    python train.py --experiment=cho2014/sst2_gru --model_dir=runs/gru --seeds=0,1,2 \
        --params=learning_rate=1e-3,dropout=0.5
    python train.py --experiment=devlin2019/mrpc --model_dir=gs://bucket/mrpc \
        --strategy=tpu --tpu=local

A run writes into ``--model_dir`` (see ``training/loop.py``); with several ``--seeds`` each seed
gets ``MODEL_DIR/seed_N``. Re-running the same command resumes from the latest checkpoint; a
command with other settings is refused (``training/run_dir.py``).
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging

from training import cli, settings

FLAGS = flags.FLAGS

flags.DEFINE_bool("list", False, "Print every registered experiment and exit.")
flags.DEFINE_string("describe", None, "Print an experiment's hyperparameters (default, the "
                    "paper's value, what each means) and exit, e.g. --describe=cho2014/sst2_gru.")
# --experiment, --params, every RunConfig field and the hyperparameter shorthands
# (--batch_size, ...): declared once, in training/settings.py.
settings.define_flags()
flags.DEFINE_list("seeds", None, "Several seeds, run one after the other into MODEL_DIR/seed_N.")
flags.DEFINE_enum("search", None, ["grid", "random", "bayesian"],
                  "Select hyperparameters on dev over the paper's grid (the experiment's "
                  "package defines it): every point ('grid'), or keras-tuner's random or "
                  "Bayesian oracle for --max_trials points. Each run goes to MODEL_DIR/<point>.")
flags.DEFINE_integer("max_trials", 6, "With --search=random or bayesian: trials to run.")

#: Flags that set the hyperparameter of the same name.
SHORTHANDS = tuple(s.name for s in settings.SHORTHANDS)


def list_experiments() -> str:
    """One line per experiment: name, dataset, metric and the paper's reported numbers."""
    from papers import registry

    lines = []
    for name, exp in sorted(registry.load_all().items()):
        reported = "; ".join(f"{r.value:g} {r.metric or exp.metric} ({r.split}, {r.source})"
                             for r in exp.reported) or "-"
        lines.append(f"{name:<34} dataset={exp.dataset:<10} metric={exp.metric:<17} "
                     f"reported: {reported}")
    return "\n".join(lines)


def resolve_params(experiment) -> dict:
    """The experiment's hyperparameters with ``--params`` and the shorthand flags applied."""
    from papers import registry

    overrides = registry.parse_overrides(FLAGS.params, experiment.name, experiment.hparams)
    for name in SHORTHANDS:
        value = FLAGS[name].value
        if value is None:
            continue
        if name in overrides:
            raise app.UsageError(f"--{name} and --params={name}=... both set {name}")
        overrides[name] = value
    return experiment.params_with_overrides(overrides)


def parse_seeds() -> list[int]:
    if not FLAGS.seeds:
        return [FLAGS.seed]
    try:
        seeds = [int(s) for s in FLAGS.seeds]
    except ValueError:
        raise app.UsageError(f"--seeds must be integers separated by commas, got "
                             f"{','.join(FLAGS.seeds)!r}") from None
    if len(set(seeds)) != len(seeds):
        raise app.UsageError(f"--seeds repeats a seed: {','.join(FLAGS.seeds)}")
    return seeds


def run_config(model_dir: str, seed: int) -> settings.RunConfig:
    return settings.run_config_from_flags(FLAGS, model_dir=model_dir, seed=seed,
                                          command=" ".join(sys.argv))


def run_search(experiment, params: dict, strategy) -> int:
    """Trains one run per grid point and keeps the best dev metric (``search.json``)."""
    from papers import registry
    from training import io, loop, run_dir, search, strategies

    grid = experiment.grid
    if run_dir.read_config(FLAGS.model_dir) is not None:
        raise app.UsageError(f"--search writes one run per point under --model_dir, but "
                             f"{FLAGS.model_dir} holds a run (config.json); use another "
                             "--model_dir")
    if not grid:
        raise app.UsageError(f"{experiment.name}: the paper gives no hyperparameter grid, so "
                             "--search is not available for it")
    overrides = registry.parse_overrides(FLAGS.params, experiment.name, experiment.hparams)
    chosen = [f"--{k}" for k in grid if k in SHORTHANDS and FLAGS[k].value is not None]
    chosen += [f"--params={k}=..." for k in grid if k in overrides]
    if chosen:
        raise app.UsageError(f"--search chooses {', '.join(grid)}: drop {', '.join(chosen)}")

    def run(point_params: dict) -> float:
        point = {k: point_params[k] for k in grid}
        model_dir = os.path.join(FLAGS.model_dir, search.run_name(point))
        result = loop.train(experiment, point_params, run_config(model_dir, FLAGS.seed),
                            strategy=strategy)
        value = result.results["metrics"]["dev"][experiment.metric]
        print(f"{search.run_name(point)}: dev {experiment.metric}={value:.2f}", flush=True)
        return value

    if FLAGS.search == "grid":
        trials = [(p, run(p)) for _, p in search.grid_runs(params, grid)]
        best_params, best_value = search.select_best(trials)
    else:
        found = search.search(FLAGS.search, FLAGS.max_trials, run, grid=grid,
                              base_params=params, seed=FLAGS.seed,
                              directory=os.path.join(FLAGS.model_dir, "keras_tuner"))
        trials, best_params, best_value = found.trials, found.params, found.value
    best = {k: best_params[k] for k in grid}
    if strategies.is_chief(strategy):
        io.atomic_write_json(os.path.join(FLAGS.model_dir, "search.json"), {
            "experiment": experiment.name, "search": FLAGS.search, "metric": experiment.metric,
            "best": best, "best_dev": best_value,
            "trials": [{"point": {k: p[k] for k in grid}, "dev": v} for p, v in trials]})
    print(f"best on dev: {search.run_name(best)} ({experiment.metric}={best_value:.2f}); "
          f"its run is {os.path.join(FLAGS.model_dir, search.run_name(best))}")
    return 0


@cli.main_with_user_errors
def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from papers import registry

    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines (checkpoint sharding…)
    if FLAGS.list:
        print(list_experiments())
        return 0
    if FLAGS.describe:
        try:
            print(registry.get(FLAGS.describe).describe())
        except ValueError as e:
            raise app.UsageError(str(e)) from None
        return 0
    if not FLAGS.experiment or not FLAGS.model_dir:
        raise app.UsageError("--experiment and --model_dir are required (or --list)")
    try:
        experiment = registry.get(FLAGS.experiment)
        params = resolve_params(experiment)
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    seeds = parse_seeds()
    cli.import_tensorflow(FLAGS.tf_logs)
    from datasets.paths import resolve_data_dir
    from training import loop, report, strategies

    FLAGS.data_dir = resolve_data_dir(FLAGS.data_dir)
    try:
        run_config(FLAGS.model_dir, seeds[0]).validate()
    except ValueError as e:
        raise app.UsageError(str(e)) from None

    try:
        strategy = strategies.get_strategy(FLAGS.strategy, tpu=FLAGS.tpu,
                                           num_cpu_devices=FLAGS.num_cpu_devices,
                                           timeout=FLAGS.tpu_timeout)
    except (ValueError, ConnectionError, TimeoutError) as e:
        raise cli.UserError(str(e)) from None
    if FLAGS.search:
        return run_search(experiment, params, strategy)
    for seed in seeds:
        model_dir = (os.path.join(FLAGS.model_dir, f"seed_{seed}") if FLAGS.seeds
                     else FLAGS.model_dir)
        result = loop.train(experiment, params, run_config(model_dir, seed), strategy=strategy)
        metrics = result.results["metrics"]
        if result.finished_before:
            print(f"{model_dir} holds this run, finished: its results are below, nothing was "
                  "trained or evaluated (--reevaluate evaluates its best checkpoint again, "
                  "--extend with more --epochs or --train_steps trains it longer)")
        print(f"{experiment.name} seed={seed}: " + "  ".join(
            f"{split} {experiment.metric}={m.get(experiment.metric, float('nan')):.2f}"
            for split, m in metrics.items()))
        for line in report.closing_summary(experiment, result.results, model_dir):
            print("  " + line)
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
