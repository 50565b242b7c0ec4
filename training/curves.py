"""Learning curves: train loss and dev metric per evaluation, as a PNG a person can open."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from training import io  # noqa: E402
from training.selection import is_better  # noqa: E402


def best_index(values: list[float | None], mode: str) -> int:
    """The index of the best value as model selection ranks them (``mode``: ``"max"`` or
    ``"min"``, :func:`training.selection.is_better`); ``None`` never is."""
    best, best_value = 0, math.nan
    for i, value in enumerate(values):
        if value is not None and is_better(value, best_value, mode):
            best, best_value = i, value
    return best


def plot_learning_curve(history: list[dict], path: str, *, title: str, metric: str,
                        mode: str = "max") -> None:
    """Writes ``path`` (PNG): train loss (left axis) and dev ``metric`` (right axis) per epoch.

    ``history`` holds one dict per evaluation with ``epoch`` (fractional where evaluation is
    every N steps), ``train_loss`` and ``dev`` (a dict of dev metrics). ``mode``: ``"max"``
    (accuracy, BLEU) or ``"min"`` (perplexity) marks which value is labelled best.
    """
    if not history:
        return
    epochs = [h["epoch"] for h in history]
    fig, left = plt.subplots(figsize=(7, 4))
    left.plot(epochs, [h["train_loss"] for h in history], "o-", color="tab:blue",
              label="train loss")
    left.set_xlabel("epoch")
    left.set_ylabel("train loss", color="tab:blue")
    right = left.twinx()
    values = [h["dev"].get(metric) for h in history]
    right.plot(epochs, values, "s-", color="tab:red", label=f"dev {metric}")
    if "train" in history[0] and metric in history[0]["train"]:
        right.plot(epochs, [h["train"][metric] for h in history], "^--", color="tab:orange",
                   label=f"train {metric}")
    right.set_ylabel(metric, color="tab:red")
    right.margins(y=0.15)  # room for the "best" label
    best = best_index(values, mode)
    right.annotate(f"best {values[best]:.2f}", (epochs[best], values[best]),
                   textcoords="offset points", xytext=(0, 8), ha="center")
    lines = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(lines, labels, loc="center right")
    left.grid(alpha=0.3)
    fig.suptitle(title)
    io.save_figure(fig, path)
    plt.close(fig)
