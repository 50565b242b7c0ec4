"""Hyperparameters of the Devlin et al. 2019 fine-tuning rows (no TensorFlow imported here).

Every task fine-tunes all parameters of a pre-trained encoder plus a new classification layer
(§4.1) with the fine-tuning recipe of §A.3: Adam(W) with learning rate in {5e-5, 3e-5, 2e-5},
batch size 16 or 32, 2-4 epochs, dropout 0.1, a 10% linear warm-up, weight decay 0.01 and
gradient clipping at global norm 1.0 (google-research/bert ``run_classifier.py`` and
``optimization.py``).

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
"""

from __future__ import annotations

from typing import Any

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
