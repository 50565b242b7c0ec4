"""Bag-of-words logistic (softmax) regression on sentence-level SST-2 and SST-5.

The course's first lab: features are word counts over a vocabulary built from the train split,
p(y|x) = softmax(W x + b), plain SGD on the cross-entropy plus λ Σ W², early stopping on dev
accuracy, the official SST train/dev/test splits (8,544 / 1,101 / 2,210 sentences; SST-2 drops
the neutral ones: 6,920 / 872 / 1,821). The model itself is in ``papers/text_classification.py``.
"""

from papers import registry
from papers.text_classification_hparams import hparams

for _name, _dataset in (("sst2", "sst2"), ("sst5", "sst5")):
    registry.register(registry.Experiment(
        name=f"baselines/{_name}_bow_logreg",
        task="papers.text_classification:WordClassificationTask",
        dataset=_dataset,
        metric="accuracy",
        hparams=hparams("bow_logreg", dataset=_dataset, optimizer="sgd", learning_rate=0.1,
                        l2=1e-4, batch_size=32, epochs=30, patience=5),
        description=f"bag-of-words softmax regression on sentence-level {_name.upper()}",
    ))
