r"""Dev accuracy against the number of training pairs, one line per model, as a PNG.

Reads every finished run (``results.json``) of ``rocktaschel2016`` rows under ``--runs_dirs``,
groups them by experiment and ``train_examples`` (0 counts as the whole train split), and plots
the mean dev accuracy with one standard deviation (error bars; a point is one seed when there
is no bar), beside the paper's dev accuracy on the full 550,152 pairs (dashed lines).

Example:

    python -m papers.rocktaschel2016.learning_curve \
        --runs_dirs=runs/rocktaschel2016/table,runs/rocktaschel2016/learning_curve \
        --output=results/rocktaschel2016_learning_curve.png
"""

from __future__ import annotations

import collections
import statistics

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The program's flags, defined when it runs (importing the module for its functions
    defines none, so several such modules can be imported in one process)."""
    flags.DEFINE_list("runs_dirs", ["runs/rocktaschel2016/table",
                                    "runs/rocktaschel2016/learning_curve"],
                      "Folders searched for results.json (runs with other hyperparameters, such as "
                      "a grid search's, belong elsewhere: every run found is a point).",
                      flag_values=flag_values)
    flags.DEFINE_string("output", "results/rocktaschel2016_learning_curve.png", "The PNG to write.",
                        flag_values=flag_values)
    flags.DEFINE_list("experiments", ["conditional_shared_k100", "attention", "word_by_word"],
                      "Rows to plot.", flag_values=flag_values)


def points(runs: list[dict], experiments: list[str]) -> dict[str, list[tuple[int, list[float]]]]:
    """``row -> [(train pairs, [dev accuracy per seed])]``, sorted by size."""
    by_row = collections.defaultdict(lambda: collections.defaultdict(list))
    for run in runs:
        row = run["experiment"].split("/", 1)[1]
        if run["status"] == "ok" and row in experiments:
            size = run["metrics"]["train"]["examples"]
            by_row[row][size].append(run["metrics"]["dev"]["accuracy"])
    return {row: sorted(sizes.items()) for row, sizes in by_row.items()}


def plot(curves: dict, reported: dict[str, float], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training import io

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for n, (row, values) in enumerate(sorted(curves.items())):
        color = f"C{n}"
        sizes = [size for size, _ in values]
        means = [statistics.mean(v) for _, v in values]
        errors = [statistics.stdev(v) if len(v) > 1 else 0.0 for _, v in values]
        ax.errorbar(sizes, means, yerr=errors, marker="o", capsize=3, color=color, label=row)
        if row in reported:
            ax.axhline(reported[row], color=color, linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("training pairs (nested subsets of the 20,000-pair sample)")
    ax.set_ylabel("dev accuracy (%)")
    ax.set_title("SNLI dev accuracy by training set size (dashed: the paper, 550,152 pairs)")
    ax.grid(alpha=0.3)
    ax.legend()
    io.save_figure(fig, path)
    plt.close(fig)


def main(argv):
    del argv
    from papers import registry
    from training import report

    experiments = [e.split("/")[-1] for e in FLAGS.experiments]
    curves = points([run for d in FLAGS.runs_dirs for run in report.collect(d)], experiments)
    if not curves:
        raise app.UsageError(f"no finished runs of {experiments} under {FLAGS.runs_dirs}")
    reported = {}
    for row in curves:
        for r in registry.get(f"rocktaschel2016/{row}").reported:
            if r.split == "dev":
                reported[row] = r.value
    plot(curves, reported, FLAGS.output)
    for row, values in sorted(curves.items()):
        print(row, "  ".join(f"{size}: {statistics.mean(v):.2f} ({len(v)} seeds)"
                             for size, v in values))
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
