"""Where a caption's words look: attention over the image, as Figures 2-3 of Xu et al. 2015."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from datasets import files  # noqa: E402
from training import io  # noqa: E402


def plot_caption_attention(image_path: str, words: list[str], attention, grid: int, path: str,
                           *, columns: int = 5) -> None:
    """Writes a PNG: the image, then one panel per word with its attention ``α_t`` over the
    ``grid × grid`` locations stretched over the image (bicubic), brighter where it looks.

    Args:
        image_path: the JPEG.
        words: the caption's words (``<end>`` last, if it was produced).
        attention: ``[≥ len(words), grid * grid]``.
        grid: the feature map's side.
        path: the PNG to write (atomically).
        columns: panels per row.
    """
    import io as bytes_io

    image = plt.imread(bytes_io.BytesIO(files.read_bytes(image_path)), format="jpg")
    panels = 1 + len(words)
    rows = (panels + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.2 * rows), squeeze=False)
    height, width = image.shape[:2]
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= panels:
            continue
        ax.imshow(image)
        if k == 0:
            ax.set_title(" ".join(w for w in words if w != "<end>"), fontsize=7, loc="left")
            continue
        alpha = np.asarray(attention[k - 1], dtype=float).reshape(grid, grid)
        ax.imshow(alpha / max(alpha.max(), 1e-9), cmap="gray", alpha=0.6,
                  extent=(0, width, height, 0), interpolation="bicubic")
        ax.set_title(words[k - 1], fontsize=9)
    fig.tight_layout()
    io.save_figure(fig, path)
    plt.close(fig)
