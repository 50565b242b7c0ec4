"""Cho et al. 2014 rows: the RNN Encoder–Decoder on a synthetic task, and the course's SST
ladder from an MLP to recurrent networks built on the published GRU.

Reference points (``reported``):

- the course's: a tanh RNN reaches about 73% and a GRU about 80% dev accuracy on binary SST;
- Tai et al. 2015 (ACL), Table 2, sentence-level rows — LSTM 46.4 fine-grained / 84.9 binary,
  Bi-LSTM 49.1 / 87.5, 2-layer LSTM 46.0 / 86.3 (test accuracy). Those models use GloVe 840B
  300d vectors, 168 hidden units, AdaGrad and training on all labelled phrases, tuned; our rows
  use 50d (GloVe 6B 50d optional), sentence-level training by default and no tuning. The GRU
  rows are compared with Tai et al.'s LSTM rows as the nearest published anchor.
"""

from papers import registry
from papers.cho2014 import seq2seq
from papers.registry import Reported
from papers.text_classification import DEFAULTS, WordClassificationTask

TAI = "Tai et al. 2015, Table 2"
TAI_NOTE = "GloVe 840B 300d, phrase-level training, tuned"
COURSE = "course reference point"

_RECURRENT = dict(optimizer="adam", learning_rate=1e-3, batch_size=32, epochs=10, patience=3,
                  hidden=100, dropout=0.5, embedding_dim=50, clip_norm=5.0)

# (row, params, {dataset: reported numbers})
LADDER = (
    ("mlp", dict(model="mlp", optimizer="adam", learning_rate=1e-3, hidden=100, dropout=0.5,
                 l2=0.0, epochs=10, patience=3), {}),
    ("rnn", dict(_RECURRENT, model="rnn"),
     {"sst2": (Reported(73.0, "dev", COURSE, note="about 73%"),)}),
    ("gru", dict(_RECURRENT, model="gru"),
     {"sst2": (Reported(80.0, "dev", COURSE, note="about 80%"),
               Reported(84.9, "test", TAI + " (LSTM)", note=TAI_NOTE)),
      "sst5": (Reported(46.4, "test", TAI + " (LSTM)", note=TAI_NOTE),)}),
    ("lstm", dict(_RECURRENT, model="lstm"),
     {"sst2": (Reported(84.9, "test", TAI, note=TAI_NOTE),),
      "sst5": (Reported(46.4, "test", TAI, note=TAI_NOTE),)}),
    ("bigru", dict(_RECURRENT, model="bigru"),
     {"sst2": (Reported(87.5, "test", TAI + " (Bi-LSTM)", note=TAI_NOTE),),
      "sst5": (Reported(49.1, "test", TAI + " (Bi-LSTM)", note=TAI_NOTE),)}),
    ("gru2", dict(_RECURRENT, model="gru2"),
     {"sst2": (Reported(86.3, "test", TAI + " (2-layer LSTM)", note=TAI_NOTE),),
      "sst5": (Reported(46.0, "test", TAI + " (2-layer LSTM)", note=TAI_NOTE),)}),
)

for _dataset in ("sst2", "sst5"):
    for _row, _params, _reported in LADDER:
        registry.register(registry.Experiment(
            name=f"cho2014/{_dataset}_{_row}",
            task=WordClassificationTask,
            dataset=_dataset,
            metric="accuracy",
            hparams=dict(DEFAULTS, dataset=_dataset, **_params),
            reported=_reported.get(_dataset, ()),
            description=f"{_row} on sentence-level {_dataset.upper()} (the course's ladder)",
        ))

registry.register(registry.Experiment(
    name="cho2014/reverse_seq2seq",
    task=seq2seq.ReverseSeq2SeqTask,
    dataset="synthetic",
    metric="sequence_accuracy",
    hparams=seq2seq.HPARAMS,
    description="RNN Encoder-Decoder (Section 2) reversing random token sequences",
))
