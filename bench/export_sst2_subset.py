"""Writes the examples and hyperparameters of a devlin2019/sst2 run for another framework.

``train.py --experiment=devlin2019/sst2 --params=train_examples=N,...`` trains on a fixed random
subset of GLUE SST-2 train (``subset_seed``; the rows kept in file order) and evaluates on dev
(all 872 sentences unless ``eval_examples`` is set). This writes exactly those examples into
``--output_dir``, so that ``bench/hf_trainer_sst2.py`` fine-tunes on the same sentences:

- ``train.jsonl`` and ``dev.jsonl``: one ``{"sentence": ..., "label": 0|1}`` per line, in the
  run's order (the rows ``SST2Task`` selects);
- ``run.json``: the experiment's hyperparameters with ``--params`` applied, the resolved
  encoder (its Hugging Face checkpoint folder) and the data fingerprints of the run
  (``Task.data_identity``, the ones ``train.py`` records in ``config.json``).

The rows are selected as ``BertClassificationTask`` selects them and then checked against the
task's own fingerprints, so a change in the suite's selection fails here instead of comparing
two frameworks on different data.

Example (from the repository root)::

    python -m bench.export_sst2_subset --data_dir=../shared/data --output_dir=/tmp/sst2_4000 \\
        --params=train_examples=4000,max_seq_length=128,epochs=1,adam_bias_correction=true
"""

from __future__ import annotations

import json
import os

from absl import app, flags

from datasets.paths import resolve_data_dir
from training import settings

FLAGS = flags.FLAGS
# The suite's own settings (training.settings), as train.py declares them; the experiment is a
# devlin2019 single-sentence one.
settings.define_flags(["experiment", "data_dir", "params"],
                      defaults={"experiment": "devlin2019/sst2"})
flags.DEFINE_string("output_dir", None, "Where train.jsonl, dev.jsonl and run.json go.")
flags.mark_flag_as_required("output_dir")


def main(argv):
    del argv
    import datasets
    from papers import registry
    from training import io

    experiment = registry.get(FLAGS.experiment)
    params = experiment.params_with_overrides(FLAGS.params)
    data_dir = resolve_data_dir(FLAGS.data_dir)
    task = experiment.make_task(params, data_dir, "")
    if task.text_keys != ("text",):
        raise app.UsageError(f"{FLAGS.experiment} classifies text pairs; this exports single "
                             "sentences")
    identity = task.data_identity()
    for split, limit_key in (("train", "train_examples"), ("dev", "eval_examples")):
        loaded = datasets.load(task.dataset_name, split, data_dir)
        rows = loaded.subset(int(params[limit_key]), int(params["subset_seed"]))
        if loaded.fingerprint(rows) != identity[split]:
            raise RuntimeError(f"the {split} rows selected here are not the ones "
                               f"{type(task).__name__} uses")
        lines = [json.dumps({"sentence": loaded.columns["text"][i],
                             "label": int(loaded.columns["label"][i])}) for i in rows]
        io.atomic_write_text(os.path.join(FLAGS.output_dir, f"{split}.jsonl"),
                             "\n".join(lines) + "\n")
        print(f"{split}: {len(rows)} examples", flush=True)
    io.atomic_write_json(os.path.join(FLAGS.output_dir, "run.json"), {
        "experiment": FLAGS.experiment, "params": params, "params_overrides": FLAGS.params or "",
        "encoder": task.spec.to_json(), "data_identity": identity})


if __name__ == "__main__":
    app.run(main)
