"""2-D pictures of chosen words: PCA and t-SNE of their unit vectors (scikit-learn).

- PCA (``sklearn.decomposition.PCA``): the two directions of largest variance of the chosen
  words' unit vectors (centred); the axes say what share of the variance each keeps. Distances
  in the picture are a linear shadow of the cosine geometry.
- t-SNE (``sklearn.manifold.TSNE``, cosine distances, PCA initialisation, a fixed seed, the
  exact gradient, not the Barnes-Hut approximation: a picture holds tens of words, and
  Barnes-Hut's OpenMP threads are slow on a busy machine): neighbourhoods are kept, distances
  between clusters are not meaningful. Its perplexity must be below the number of words; the
  default is min(30, (n − 1) / 3). The title gives the final KL divergence.

Example:

```python
glove = Embeddings.load("glove-6b-50d")
words = ["king", "queen", "man", "woman", "paris", "france", "rome", "italy"]
picture = project(glove, words, "pca")
plot(picture, "words.png", groups=[0, 0, 0, 0, 1, 1, 1, 1])
```
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from papers.pennington2014.vectors import Embeddings

METHODS = ("pca", "tsne")


@dataclasses.dataclass(frozen=True)
class Projection:
    """Words placed in 2-D.

    Attributes:
        words: the words.
        coords: ``[len(words), 2]``.
        method: ``"pca"`` or ``"tsne"``.
        axes: the two axis labels.
        summary: one line of statistics (variance kept, or t-SNE's settings and KL divergence).
    """

    words: tuple[str, ...]
    coords: np.ndarray
    method: str
    axes: tuple[str, str]
    summary: str


def project(embeddings: Embeddings, words: Sequence[str], method: str = "pca", *,
            seed: int = 0, perplexity: float | None = None) -> Projection:
    """The 2-D PCA or t-SNE of the words' unit vectors.

    Raises:
        ValueError: fewer than 3 distinct words, an unknown method, or a perplexity not in
            (0, number of words).
        UnknownWordError: a word is not among the vectors' words.
    """
    words = tuple(dict.fromkeys(words))
    if len(words) < 3:
        raise ValueError(f"a picture needs at least 3 distinct words, got {len(words)}")
    vectors = embeddings.unit[embeddings.rows(words)].astype(np.float64)
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, svd_solver="full")
        coords = pca.fit_transform(vectors)
        share = 100.0 * pca.explained_variance_ratio_
        return Projection(words, coords, method,
                          (f"PC1 ({share[0]:.1f}% of variance)",
                           f"PC2 ({share[1]:.1f}% of variance)"),
                          f"PCA of {len(words)} unit vectors: the two axes keep "
                          f"{share.sum():.1f}% of their variance")
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, (len(words) - 1) / 3) if not perplexity else perplexity
        if not 0 < perplexity < len(words):
            raise ValueError(f"t-SNE's perplexity must be in (0, {len(words)}) for "
                             f"{len(words)} words, got {perplexity:g}")
        tsne = TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca",
                    method="exact", random_state=seed)
        coords = tsne.fit_transform(vectors)
        return Projection(words, coords, method, ("t-SNE 1", "t-SNE 2"),
                          f"t-SNE of {len(words)} words (cosine, perplexity {perplexity:.3g}, "
                          f"seed {seed}): KL divergence {tsne.kl_divergence_:.3f}")
    raise ValueError(f"unknown projection {method!r}: one of {', '.join(METHODS)}")


def plot(projection: Projection, path: str, *, groups: Sequence[int] | None = None,
         title: str = "") -> None:
    """Writes a PNG of the projected words, labelled, one colour per group (atomically).

    Args:
        projection: from :func:`project`.
        path: the PNG.
        groups: a group number per word (a legend names each group by its first word);
            ``None``: one group.
        title: the first title line (the projection's summary is the second).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training import io

    groups = [0] * len(projection.words) if groups is None else list(groups)
    if len(groups) != len(projection.words):
        raise ValueError(f"{len(groups)} group numbers for {len(projection.words)} words")
    fig, ax = plt.subplots(figsize=(7.5, 6.0))
    colours = plt.get_cmap("tab10")
    for n, group in enumerate(dict.fromkeys(groups)):
        members = [i for i, g in enumerate(groups) if g == group]
        xy = projection.coords[members]
        label = f"{projection.words[members[0]]}, …" if len(set(groups)) > 1 else None
        ax.scatter(xy[:, 0], xy[:, 1], color=colours(n % 10), label=label, s=24)
    for word, (x, y) in zip(projection.words, projection.coords):
        ax.annotate(word, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=9)
    ax.set_xlabel(projection.axes[0])
    ax.set_ylabel(projection.axes[1])
    if len(set(groups)) > 1:
        ax.legend(fontsize=8, loc="best")
    ax.set_title("\n".join(t for t in (title, projection.summary) if t), fontsize=9)
    ax.grid(alpha=0.3)
    io.save_figure(fig, path)
    plt.close(fig)
