"""Where a caption's words look: attention over the image, as Figures 2-3 of Xu et al. 2015,
on one absolute colour scale.

Every word's panel shows its weights ``α_t`` over the ``grid × grid`` locations on the same
colour scale, from 0 to the largest weight of the whole caption, with a colour bar whose
tick at ``1/L`` marks uniform attention; a panel is never stretched to its own range, so
nearly uniform weights look nearly uniform. The first panel gives the caption and the
statistics of its weights (:mod:`papers.xu2015.attention_stats`): mean entropy as a fraction of
``log L`` and the mean largest weight against ``1/L``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from datasets import files  # noqa: E402
from papers.xu2015.attention_stats import attention_statistics  # noqa: E402
from training import io  # noqa: E402


def plot_caption_attention(image_path: str, words: list[str], attention, grid: int, path: str,
                           *, columns: int = 5) -> None:
    """Writes a PNG: the image with the caption and its attention statistics, then one panel
    per word with ``α_t`` over the image on the caption's shared scale, and a colour bar.

    Args:
        image_path: the image file (any format matplotlib reads: JPEG, PNG).
        words: the caption's words (``<end>`` last, if it was produced).
        attention: ``[≥ len(words), grid * grid]``.
        grid: the feature map's side.
        path: the PNG to write (atomically).
        columns: panels per row.
    """
    import io as bytes_io

    from PIL import Image

    image = np.asarray(Image.open(bytes_io.BytesIO(files.read_bytes(image_path))).convert("RGB"))
    alpha = np.asarray(attention, dtype=float)[:len(words)]
    locations = grid * grid
    top = max(float(alpha.max(initial=0.0)), 1.0 / locations)
    spoken = [w for w in words if w != "<end>"]
    stats = attention_statistics(alpha[None], np.array([len(spoken)])) if spoken else None
    panels = 1 + len(words)
    rows = (panels + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns + 0.8, 2.3 * rows),
                             squeeze=False)
    height, width = image.shape[:2]
    shown = None
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= panels:
            continue
        ax.imshow(image)
        if k == 0:
            title = " ".join(spoken)
            if stats:
                title += (f"\nH/log L {stats['entropy_fraction']:.3f}, max α "
                          f"{stats['max_weight']:.4f} (1/L {1 / locations:.4f})")
            ax.set_title(title, fontsize=7, loc="left")
            continue
        shown = ax.imshow(alpha[k - 1].reshape(grid, grid), cmap="inferno", vmin=0.0, vmax=top,
                          alpha=0.65, extent=(0, width, height, 0), interpolation="bilinear")
        ax.set_title(words[k - 1], fontsize=9)
    if shown is not None:
        bar = fig.colorbar(shown, ax=list(axes.flat), fraction=0.02, pad=0.01)
        bar.set_label("α (one scale for every word)", fontsize=8)
        bar.ax.axhline(1.0 / locations, color="cyan", linewidth=1.5)
        bar.ax.text(-0.4, 1.0 / locations, "1/L", color="black", fontsize=7, ha="right",
                    va="center", transform=bar.ax.get_yaxis_transform())
    io.save_figure(fig, path)
    plt.close(fig)
