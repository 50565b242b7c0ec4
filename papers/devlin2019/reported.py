"""The numbers the papers report, as :class:`papers.registry.Reported` rows.

Sources:

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
from papers.devlin2019 import reported
reported.SST2            # rows for the SST-2 experiment, dev and test
reported.by_size(6, 768, 12)["sst2"].value   # 91.3
```
"""

from __future__ import annotations

from papers.registry import Reported

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
