r"""Accuracy and attention statistics of finished runs, as a markdown table.

Reads every finished run (``results.json``) under ``--runs_dir`` whose final evaluation of
``--split`` has attention statistics (:mod:`papers.rocktaschel2016.attention_stats`) and prints
one row per run: what it changes from its registered row, its accuracy, each statistic with
what uniform weights give in parentheses, its training seconds and the commit it ran at.

Example:

    python -m papers.rocktaschel2016.attention_report --runs_dir=runs/rocktaschel2016/ablation
"""

from __future__ import annotations

import os

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The program's flags, defined when it runs (importing the module for its functions
    defines none, so several such modules can be imported in one process)."""
    flags.DEFINE_string("runs_dir", "runs/rocktaschel2016", "The folder searched for results.json.",
                        flag_values=flag_values)
    flags.DEFINE_string("split", "dev", "The split whose statistics are shown.",
                        flag_values=flag_values)

#: statistic → column heading.
COLUMNS = (("entropy", "entropy, nats"), ("first", "on position 0"),
           ("shared", "on shared words"), ("shared_after_first", "shared, after position 0"),
           ("aligned", "on its own word"))


def changes(run: dict, defaults: dict) -> str:
    """The run's hyperparameters that differ from ``defaults`` (its registered row's)."""
    params = run["params"]
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()) if defaults.get(k) != v)


def table(runs: list[dict], split: str, root: str = "") -> list[str]:
    """The markdown lines (heading first) for the runs with statistics on ``split``."""
    from papers import registry

    lines = ["| run | changes | accuracy | " + " | ".join(h for _, h in COLUMNS)
             + " | rows | train s | commit |", "|---|---|---:|" + "---:|" * (len(COLUMNS) + 2)
             + "---|"]
    for run in sorted(runs, key=lambda r: r["path"]):
        metrics = run.get("metrics", {}).get(split, {})
        if run.get("status") != "ok" or "attention_rows" not in metrics:
            continue
        cells = [f"{metrics[f'attention_{n}']:.3f} ({metrics[f'attention_{n}_uniform']:.3f})"
                 if f"attention_{n}" in metrics else "-" for n, _ in COLUMNS]
        name = os.path.relpath(os.path.dirname(run["path"]), root) if root else run["path"]
        defaults = dict(registry.get(run["experiment"]).hparams)
        lines.append(f"| {name} | {changes(run, defaults) or '-'} | "
                     f"{metrics['accuracy']:.2f} | " + " | ".join(cells)
                     + f" | {metrics['attention_rows']:,} | {run['train_seconds']:.0f} | "
                       f"{run.get('git_commit', '?')[:7]} |")
    return lines


def main(argv):
    del argv
    from training import report

    lines = table(report.collect(FLAGS.runs_dir), FLAGS.split, FLAGS.runs_dir)
    if len(lines) == 2:
        raise app.UsageError(f"no finished run with attention statistics on {FLAGS.split} "
                             f"under {FLAGS.runs_dir}")
    print("\n".join(lines))


if __name__ == "__main__":
    define_flags()
    app.run(main)
