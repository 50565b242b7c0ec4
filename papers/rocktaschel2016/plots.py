"""Attention heat maps as in Figures 2 and 3 of Rocktäschel et al. (2016)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from training import io  # noqa: E402


def plot_attention(premise: list[str], hypothesis: list[str], weights, path: str, *,
                   title: str = "") -> None:
    """Writes a PNG of attention weights over the premise words, on the absolute scale
    [0, 1] with a colour bar.

    Args:
        premise: the premise's tokens (the columns).
        hypothesis: the tokens of the rows of a word-by-word map (the hypothesis, after the
            delimiter where it attends).
        weights: ``[len(premise)]`` (attention: one row, labelled with the last hypothesis
            token) or ``[≥ len(hypothesis), ≥ len(premise)]`` (word by word); padding beyond
            the tokens is cut off.
        path: the PNG to write (atomically).
        title: a line above the map.
    """
    weights = np.asarray(weights, dtype=float)
    if weights.ndim == 1:
        weights, rows = weights[None, :len(premise)], [hypothesis[-1] if hypothesis else ""]
    else:
        weights, rows = weights[:len(hypothesis), :len(premise)], hypothesis
    fig, ax = plt.subplots(figsize=(0.45 * len(premise) + 3.2, 0.45 * len(rows) + 2.0))
    image = ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    fig.colorbar(image, ax=ax, label="attention weight", fraction=0.08, pad=0.03)
    ax.set_xticks(range(len(premise)), premise, rotation=90)
    ax.set_yticks(range(len(rows)), rows)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("premise")
    ax.set_ylabel("hypothesis")
    if title:
        fig.suptitle(title, y=0.02, va="bottom", fontsize=9)
    io.save_figure(fig, path)
    plt.close(fig)
