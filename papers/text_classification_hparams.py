"""Hyperparameters of the word-level SST classifiers (``papers/text_classification.py``).

Each model has exactly the hyperparameters it uses: :func:`hparams` starts from
:data:`COMMON` and adds the model's own (:data:`MODEL_HPARAMS`), so ``--params`` refuses a
setting the row would ignore (``glove`` on a bag-of-words row, ``l2`` on a recurrent one).
No TensorFlow is imported here: ``train.py --list`` reads these without it.
"""

from __future__ import annotations

from typing import Any

BOW_MODELS = ("bow_logreg", "mlp")
SEQUENCE_MODELS = ("rnn", "gru", "lstm", "bigru", "gru2")
MODELS = BOW_MODELS + SEQUENCE_MODELS

#: Every model's settings.
COMMON: dict[str, Any] = {
    "dataset": "sst2",
    "model": "bow_logreg",
    "phrases": False,        # train on every labelled phrase of the train trees
    "lowercase": True,
    "min_count": 1,
    "max_length": 64,        # tokens kept per sentence (SST: 99th percentile is about 50)
    "batch_size": 32,
    "epochs": 30,
    "train_steps": 0,
    "patience": 5,
    "clip_norm": 0.0,
    "optimizer": "sgd",
    "learning_rate": 0.1,
}

_RECURRENT = {
    "hidden": 100,           # hidden units of the recurrent state
    "dropout": 0.5,          # on the embeddings and before the softmax (and between layers)
    "embedding_dim": 50,
    "glove": False,          # initialise embeddings from GloVe 6B 50d (needs embedding_dim=50)
    "train_embeddings": True,
}

#: The settings each model adds to :data:`COMMON`.
MODEL_HPARAMS: dict[str, dict[str, Any]] = {
    "bow_logreg": {"l2": 1e-4},                               # λ of λ Σ W²
    "mlp": {"hidden": 100, "dropout": 0.5, "l2": 1e-4},       # two hidden layers
    **{model: _RECURRENT for model in SEQUENCE_MODELS},
}


def hparams(model: str, **overrides: Any) -> dict[str, Any]:
    """The hyperparameters of ``model`` with ``overrides`` (which must be among them)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; valid: {', '.join(MODELS)}")
    params = {**COMMON, **MODEL_HPARAMS[model], "model": model}
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise ValueError(f"{model} has no hyperparameters {unknown}")
    params.update(overrides)
    return params
