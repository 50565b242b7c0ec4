"""GloVe (Pennington, Socher & Manning, EMNLP 2014) and pretrained word vectors: cosine
neighbours, analogies (Mikolov et al. 2013's task, 3CosAdd and 3CosMul), semantic orientation,
2-D pictures, and the benchmarks (analogies, WordSim-353, SimLex-999).

Nothing is trained: the package reads pretrained vectors (GloVe 6B 50d and two subsets of the
word2vec GoogleNews 300d vectors, ``datasets.word_vectors``) and measures them. So it has no
``model.py``, ``task.py`` or registered experiments as the trained papers have: its rows are the
vector sets of the benchmark table, and its reported numbers live in ``reported.py``.

- :mod:`~papers.pennington2014.vectors`: :class:`Embeddings` (unit rows, lookup, neighbours).
- :mod:`~papers.pennington2014.analogy`: 3CosAdd and 3CosMul, one question or a batch.
- :mod:`~papers.pennington2014.orientation`: Turney & Littman's SO-A with cosine.
- :mod:`~papers.pennington2014.projection`: PCA and t-SNE pictures (scikit-learn, matplotlib).
- :mod:`~papers.pennington2014.benchmarks`: the benchmark files and protocol;
  :mod:`~papers.pennington2014.table` and :mod:`~papers.pennington2014.reported`: the table.
- Command lines: ``python -m papers.pennington2014.explore`` (one action per command) and
  ``python -m papers.pennington2014.benchmark`` (the table).

Example:

```python
from papers.pennington2014 import Embeddings, semantic_orientation
from papers.pennington2014.analogy import analogy
glove = Embeddings.load("glove-6b-50d")
glove.neighbours("frog", k=5)
analogy(glove, "man", "king", "woman", k=1)      # [("queen", 0.85)]
semantic_orientation(glove, "superb").score      # > 0: praise
```
"""

from papers.pennington2014.orientation import semantic_orientation
from papers.pennington2014.projection import plot, project
from papers.pennington2014.vectors import Embeddings, UnknownWordError

__all__ = ["Embeddings", "UnknownWordError", "plot", "project", "semantic_orientation"]
