"""The course's baselines: bag-of-words logistic (softmax) regression on sentence-level SST-2 and
SST-5, and the hyperparameters of every SST classifier of the course's ladder.

The course's first lab: features are word counts over a vocabulary built from the train split,
p(y|x) = softmax(W x + b), plain SGD on the cross-entropy plus λ Σ W², early stopping on dev
accuracy, the official SST train/dev/test splits (8,544 / 1,101 / 2,210 sentences; SST-2 drops
the neutral ones: 6,920 / 872 / 1,821). The models are in ``papers/baselines/model.py``, the
task in ``papers/baselines/task.py``; ``papers/cho2014`` registers the ladder's recurrent rows
with :func:`hparams`. No paper reports numbers for these rows.

Each model has exactly the hyperparameters it uses: :func:`hparams` starts from :data:`COMMON`
and adds the model's own (:data:`MODEL_HPARAMS`), so ``--params`` refuses a setting the row
would ignore (``glove`` on a bag-of-words row, ``l2`` on a recurrent one). No TensorFlow is
imported here: ``train.py --list`` reads these without it.
"""

from __future__ import annotations

from typing import Any

from papers import registry

TASK = "papers.baselines.task:WordClassificationTask"

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


H = registry.Hyperparameter
#: What each hyperparameter of the SST classifiers means (``train.py --describe``); the
#: course gives no paper values.
HYPERPARAMETERS: dict[str, registry.Hyperparameter] = {
    "dataset": H("sst2 (binary, neutral sentences dropped) or sst5 (five classes)"),
    "model": H(f"the classifier: {', '.join(MODELS)}"),
    "phrases": H("train on every labelled phrase of the train trees, not only the sentences"),
    "lowercase": H("lowercase the text before tokenizing"),
    "min_count": H("a word enters the vocabulary after this many train occurrences"),
    "max_length": H("tokens kept per sentence (the rest are cut)"),
    "optimizer": H("sgd, adam, adagrad, adadelta or rmsprop"),
    "learning_rate": H("the optimiser's step size"),
    "l2": H("λ of the penalty λ Σ W² on the weights"),
    "hidden": H("hidden units (of the recurrent state, or of each MLP layer)"),
    "dropout": H("dropout rate on the embeddings and before the softmax (and between layers)"),
    "embedding_dim": H("word embedding size"),
    "glove": H("initialise the embeddings from GloVe 6B 50d (needs embedding_dim=50)"),
    "train_embeddings": H("update the embeddings during training"),
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


for _name, _dataset in (("sst2", "sst2"), ("sst5", "sst5")):
    registry.register(registry.Experiment(
        name=f"baselines/{_name}_bow_logreg",
        task=TASK,
        dataset=_dataset,
        metric="accuracy",
        hparams=hparams("bow_logreg", dataset=_dataset, optimizer="sgd", learning_rate=0.1,
                        l2=1e-4, batch_size=32, epochs=30, patience=5),
        description=f"bag-of-words softmax regression on sentence-level {_name.upper()}",
        hyperparameters=HYPERPARAMETERS,
    ))
