"""Paper tables from the ``results.json`` files of runs: the paper's number beside ours.

``collect(results_dir)`` finds every ``results.json`` below a folder (local or ``gs://``);
``paper_table(paper, runs)`` groups the runs of that paper's experiments and prints, per
experiment and split, the mean ± sample std over seeds of the experiment's metric (and of any
other metric a reported number uses), the number of seeds, throughput and training time, and the
paper's reported numbers with their source. Throughput and training time cover all of a run's
training segments (a resumed run included) and exclude evaluation.
"""

from __future__ import annotations

import os
import statistics
from collections import defaultdict

import tensorflow as tf

from training import io


def collect(results_dir: str) -> list[dict]:
    """Every successful ``results.json`` below ``results_dir``, with its path."""
    if not tf.io.gfile.isdir(results_dir):
        raise FileNotFoundError(f"--results_dir={results_dir} is not a directory")
    runs = []
    for root, _, files in tf.io.gfile.walk(results_dir):
        if "results.json" in files:
            path = os.path.join(root, "results.json")
            run = io.read_json(path)
            if run.get("status") == "ok":
                run["path"] = path
                runs.append(run)
    return runs


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def paper_table(experiments, runs: list[dict]) -> str:
    """A markdown table: one line per (experiment and its overrides, split, metric).

    Runs of one experiment with different hyperparameters (``--params``, ``--epochs``…) are
    separate rows, named by what differs from the registered defaults.
    """
    groups = defaultdict(list)
    for run in runs:
        groups[run["experiment"]].append(run)
    lines = ["| experiment | split | metric | paper | ours (mean ± std) | seeds | "
             "train ex/s | train s |",
             "|---|---|---|---|---|---|---|---|"]
    for exp in experiments:
        by_setting = defaultdict(list)
        for run in groups.get(exp.name, []):
            by_setting[_setting(exp, run)].append(run)
        for setting in sorted(by_setting) or [""]:
            lines += _rows(exp, setting, by_setting.get(setting, []))
    return "\n".join(lines)


def _setting(exp, run: dict) -> str:
    """What a run changed: hyperparameters that differ from the defaults, and the epochs."""
    changed = [f"{k}={v}" for k, v in sorted(run["params"].items())
               if k in exp.hparams and _as_json(exp.hparams[k]) != v]
    epochs = run.get("config", {}).get("epochs")
    if epochs is not None and epochs != exp.hparams.get("epochs"):
        changed.append(f"epochs={epochs}")
    return ", ".join(changed)


def _as_json(value):
    return list(value) if isinstance(value, tuple) else value


def _rows(exp, setting: str, exp_runs: list[dict]) -> list[str]:
    name = f"{exp.name} ({setting})" if setting else exp.name
    metrics = [exp.metric] + sorted({r.metric for r in exp.reported
                                     if r.metric and r.metric != exp.metric})
    splits = sorted({s for run in exp_runs for s in run["metrics"]} |
                    {r.split for r in exp.reported}, key=_split_order)
    lines = []
    for split in splits or ["dev"]:
        for metric in metrics:
            values = [run["metrics"][split][metric] for run in exp_runs
                      if metric in run["metrics"].get(split, {})]
            reported = [r for r in exp.reported
                        if r.split == split and (r.metric or exp.metric) == metric]
            if not values and not reported:
                continue
            paper = "; ".join(f"{r.value:g} ({r.source})" for r in reported) or "-"
            if not values:
                lines.append(f"| {name} | {split} | {metric} | {paper} | not run | 0 | - | - |")
                continue
            speed = [v for v in map(_examples_per_second, exp_runs) if v]
            train_s = [run["train_seconds"] for run in exp_runs]
            lines.append(f"| {name} | {split} | {metric} | {paper} | {mean_std(values)} | "
                         f"{len(values)} | {statistics.mean(speed) if speed else 0:.0f} | "
                         f"{statistics.mean(train_s):.0f} |")
    return lines


def _split_order(split: str) -> int:
    order = {"train": 0, "dev": 1, "test": 2}
    return order.get(split, 3)


def _examples_per_second(run: dict) -> float | None:
    """Training examples per second over the whole run (evaluation excluded)."""
    if run.get("examples_per_second"):
        return run["examples_per_second"]
    if run.get("train_seconds"):
        return run["steps"] * run["global_batch_size"] / run["train_seconds"]
    return None
