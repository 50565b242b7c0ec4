r"""Test scores against the number of training images, as a markdown table and a PNG.

Reads every finished run (``results.json``) of one ``xu2015`` row under ``--runs_dirs``, groups
them by ``train_images`` (0 counts as all 6,000), and prints, per size, the test BLEU-4, METEOR
and CIDEr (mean over seeds, and each run's 95 % bootstrap interval over the test images), the
attention's entropy as a fraction of uniform, and the updates each run had trained when its
checkpoint was selected (the sizes' runs may have had different budgets: a small set trains
to early stopping, the full one may be capped); the PNG plots BLEU-4 with the intervals beside
the paper's number, each point labelled with its updates.

Example:

    python -m papers.xu2015.learning_curve --row=flickr8k_soft \
        --runs_dirs=runs/xu2015/table,runs/xu2015/learning_curve \
        --output=results/xu2015_learning_curve.png
"""

from __future__ import annotations

import collections
import statistics

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The program's flags, defined when it runs (importing the module for its functions
    defines none, so several such modules can be imported in one process)."""
    flags.DEFINE_string("row", "flickr8k_soft", "The xu2015 row.", flag_values=flag_values)
    flags.DEFINE_list("runs_dirs", ["runs/xu2015/table", "runs/xu2015/learning_curve"],
                      "Folders searched for results.json.", flag_values=flag_values)
    flags.DEFINE_string("output", "results/xu2015_learning_curve.png", "The PNG to write.",
                        flag_values=flag_values)
FULL = 6000


def points(runs: list[dict], row: str) -> dict[int, list[dict]]:
    """``train images -> [test metrics of each run]``, sorted by size; each run's metrics carry
    ``updates``, the training steps of its selected checkpoint."""
    by_size = collections.defaultdict(list)
    for run in runs:
        if run["status"] == "ok" and run["experiment"] == f"xu2015/{row}":
            size = int(run["params"].get("train_images", 0)) or FULL
            by_size[size].append({**run["metrics"]["test"], "updates": int(run["best"]["step"])})
    return dict(sorted(by_size.items()))


def table(curve: dict[int, list[dict]]) -> str:
    lines = ["| train images | runs | BLEU-4 (± sd over runs; 95 % CI of each run) | METEOR | "
             "CIDEr | attention entropy / log L | updates at the selected checkpoint |",
             "| ---: | ---: | --- | ---: | ---: | ---: | --- |"]
    for size, runs in curve.items():
        intervals = "; ".join(f"{m['BLEU-4/ci95'][0]:.1f}–{m['BLEU-4/ci95'][1]:.1f}"
                              for m in runs if m.get("BLEU-4/ci95"))
        mean = {k: statistics.mean(m[k] for m in runs if m.get(k) is not None)
                for k in ("BLEU-4", "METEOR", "CIDEr", "attention/entropy_fraction")}
        updates = ", ".join(f"{m['updates']:,}" for m in runs)
        sd = f" ± {statistics.stdev(m['BLEU-4'] for m in runs):.2f}" if len(runs) > 1 else ""
        lines.append(f"| {size:,} | {len(runs)} | {mean['BLEU-4']:.2f}{sd} ({intervals}) | "
                     f"{mean['METEOR']:.2f} | {mean['CIDEr']:.2f} | "
                     f"{mean['attention/entropy_fraction']:.3f} | {updates} |")
    return "\n".join(lines)


def plot(curve: dict[int, list[dict]], reported: float | None, title: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training import io

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for size, runs in curve.items():
        for m in runs:
            low, high = m["BLEU-4/ci95"]
            ax.errorbar([size], [m["BLEU-4"]], yerr=[[m["BLEU-4"] - low], [high - m["BLEU-4"]]],
                        marker="o", capsize=3, color="C0")
            ax.annotate(f"{m['updates']:,} updates", (size, m["BLEU-4"]), xytext=(6, -3),
                        textcoords="offset points", fontsize=8)
    sizes = list(curve)
    ax.plot(sizes, [statistics.mean(m["BLEU-4"] for m in curve[s]) for s in sizes], "-",
            color="C0", label="ours (bars: 95 % bootstrap CI over test images)")
    if reported is not None:
        ax.axhline(reported, color="C3", linestyle="--", label="the paper (6,000 images)")
    ax.set_xscale("log")
    ax.set_xlabel("training images (nested subsets of the 6,000)")
    ax.set_ylabel("test BLEU-4")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    io.save_figure(fig, path)
    plt.close(fig)


def main(argv):
    del argv
    from papers import registry
    from training import report

    curve = points([run for d in FLAGS.runs_dirs for run in report.collect(d)], FLAGS.row)
    if not curve:
        raise app.UsageError(f"no finished runs of xu2015/{FLAGS.row} under {FLAGS.runs_dirs}")
    reported = next((r.value for r in registry.get(f"xu2015/{FLAGS.row}").reported
                     if r.metric == "BLEU-4"), None)
    print(table(curve))
    plot(curve, reported, f"xu2015/{FLAGS.row}: test BLEU-4 by training images", FLAGS.output)
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
