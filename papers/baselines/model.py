"""The course's SST sentence classifiers, from logistic regression to recurrent networks.

``kind`` (the ``model`` hyperparameter) is one of:

- ``bow_logreg``: softmax regression on bag-of-words counts, p(y|x) = softmax(W x + b) (the
  baselines; trained with SGD and the L2 penalty λ Σ W², biases not penalised, see
  :mod:`papers.baselines.task`).
- ``mlp``: two tanh hidden layers on the bag-of-words counts; dropout after each non-linearity,
  active in training only.
- ``rnn`` (tanh Elman RNN), ``gru`` (Cho et al. 2014's GRU, :class:`layers.ChoGRU`), ``lstm``,
  ``bigru`` (a bidirectional Cho GRU) and ``gru2`` (two stacked Cho GRUs): word embeddings
  (optionally initialised from given vectors) → dropout → recurrent encoder → final state →
  dropout → softmax. Padded steps are masked (word id 0), so padding never changes a
  prediction. The recurrent rows are registered under ``cho2014`` (they run Cho et al.'s GRU).

Example:

```python
model = build_classifier("gru", vocab_size=5000, classes=2, params=hparams("gru"))
logits = model(ids)            # ids: int64 [batch, length], 0 = padding
```
"""

from __future__ import annotations

from typing import Any, Mapping

import keras
import numpy as np

from layers import ChoGRU
from papers.baselines.experiments import BOW_MODELS


def build_classifier(kind: str, *, vocab_size: int, classes: int, params: Mapping[str, Any],
                     vectors: np.ndarray | None = None) -> keras.Model:
    """The ``kind`` classifier (see the module docstring); it outputs logits.

    Args:
        kind: the model.
        vocab_size: words in the vocabulary (the bag-of-words width, or embedding rows).
        classes: the number of labels.
        params: the row's hyperparameters (``hidden``, ``dropout``, ``embedding_dim``,
            ``train_embeddings``).
        vectors: initial embeddings ``[vocab_size, embedding_dim]`` of the recurrent models.
    """
    if kind in BOW_MODELS:
        inputs = keras.Input((vocab_size,), name="bag_of_words")
        x = inputs
        if kind == "mlp":
            for i in range(2):
                x = keras.layers.Dense(params["hidden"], activation="tanh",
                                       name=f"hidden_{i}")(x)
                x = keras.layers.Dropout(params["dropout"], name=f"dropout_{i}")(x)
        return keras.Model(inputs, keras.layers.Dense(classes, name="softmax")(x), name=kind)

    inputs = keras.Input((None,), dtype="int64", name="ids")
    embedding = keras.layers.Embedding(vocab_size, params["embedding_dim"], mask_zero=True,
                                       trainable=params["train_embeddings"], name="embedding")
    x = embedding(inputs)
    if vectors is not None:
        embedding.set_weights([vectors])
    x = keras.layers.Dropout(params["dropout"], name="embedding_dropout")(x)
    x = _encoder(kind, params["hidden"], params["dropout"], x)
    x = keras.layers.Dropout(params["dropout"], name="output_dropout")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="softmax")(x), name=kind)


def _encoder(kind: str, units: int, dropout: float, x):
    """The recurrent encoder's final state (of the last real word)."""
    if kind == "rnn":
        return keras.layers.SimpleRNN(units, activation="tanh", name="rnn")(x)
    if kind == "lstm":
        return keras.layers.LSTM(units, name="lstm")(x)
    if kind == "gru":
        return ChoGRU(units, name="gru")(x)
    if kind == "bigru":
        return keras.layers.Bidirectional(ChoGRU(units), name="bigru")(x)
    if kind == "gru2":
        x = ChoGRU(units, return_sequences=True, name="gru_1")(x)
        x = keras.layers.Dropout(dropout, name="between_dropout")(x)
        return ChoGRU(units, name="gru_2")(x)
    raise ValueError(f"unknown recurrent model {kind!r}")
