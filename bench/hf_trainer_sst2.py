"""Fine-tuning on a GLUE SST-2 subset with Hugging Face's ``Trainer``, then dev accuracy.

The Hugging Face side of the end-to-end comparison with ``train.py --experiment=devlin2019/sst2``
(``results/performance.md``). It reads what ``bench/export_sst2_subset.py`` wrote for the
suite's run (the same training subset, the same dev set, the run's hyperparameters and
checkpoint folder) and does what a Hugging Face user does:

1. tokenise with the checkpoint's fast tokenizer (truncation at ``max_seq_length``, no padding);
2. ``BertForSequenceClassification`` from the same checkpoint folder (dropout ``dropout``);
3. ``Trainer`` with dynamic padding (``DataCollatorWithPadding``) and length grouping
   (``train_sampling_strategy="group_by_length"``, which replaced ``group_by_length=True``),
   AdamW with the run's learning rate, batch size, epochs, warm-up steps
   (``int(warmup_proportion · steps)``, as the suite), weight decay (not on biases and
   LayerNorm, as the suite), epsilon and gradient clipping; the last partial batch dropped, as
   the suite drops it; bfloat16 autocast with ``--mixed_precision=mixed_bfloat16``;
4. predict dev and score accuracy.

Two differences are inherent and not hyperparameters: Trainer's linear schedule decays from the
peak after the warm-up, the suite's (google-research/bert's) follows ``peak · (1 - step /
total)`` so it is at 90% of the peak when the warm-up ends; and the suite evaluates dev twice
(at the end of the epoch to select the checkpoint, then the best checkpoint), where Trainer
evaluates once; both write checkpoints by default (the suite its latest and best, Trainer one
at the end of training). The run's update rule must be ``torch.optim.AdamW``'s
(``adam_bias_correction=true``) and its head BERT's (``pooling=cls``, no hidden layers);
anything else is refused.

``OUTPUT_DIR/results.json`` has the layout of ``train.py``'s (``metrics.dev.accuracy``,
``train_seconds``, ``examples_per_second``), so ``bench/interleave.py`` reads both alike.

torch and transformers are not suite dependencies; install them into an environment of their
own, e.g.::

    python -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    /tmp/torchenv/bin/pip install transformers accelerate

and run this file by its path (``python bench/hf_trainer_sst2.py``), not as a module from the
repository root, where the suite's ``datasets`` package would shadow Hugging Face's::

    /tmp/torchenv/bin/python bench/hf_trainer_sst2.py --data=/tmp/sst2_4000 \\
        --output_dir=/tmp/hf_run --seed=0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os


def read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def check_run(params: dict, encoder: dict) -> None:
    """Refuses settings Trainer would not reproduce (see the module docstring)."""
    problems = []
    if not params["adam_bias_correction"]:
        problems.append("adam_bias_correction=false (Trainer's AdamW is bias-corrected): "
                        "export with adam_bias_correction=true")
    if params["pooling"] != "cls" or params["hidden_dims"]:
        problems.append("the head must be BERT's (pooling=cls, no hidden_dims)")
    if params["truncation"] != "longest_first":
        problems.append(f"truncation={params['truncation']} (the tokenizer truncates the end)")
    if encoder["kind"] != "hf_folder":
        problems.append(f"the encoder {encoder['name']} is not a Hugging Face folder")
    if problems:
        raise SystemExit("hf_trainer_sst2: error: " + "; ".join(problems))


def write_json(path: str, value: dict) -> None:
    """Writes ``value`` to a temporary file beside ``path`` and renames it over ``path``."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True,
                        help="the folder bench/export_sst2_subset.py wrote")
    parser.add_argument("--output_dir", required=True, help="results.json goes here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mixed_precision", choices=("float32", "mixed_bfloat16"),
                        default="float32")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default, $OMP_NUM_THREADS)")
    args = parser.parse_args(argv)

    with open(os.path.join(args.data, "run.json")) as f:
        run = json.load(f)
    params, encoder = run["params"], run["encoder"]
    check_run(params, encoder)

    import numpy as np
    import torch
    import transformers

    if args.threads:
        torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    transformers.set_seed(args.seed)
    tokenizer = transformers.AutoTokenizer.from_pretrained(encoder["source"])
    max_length = int(params["max_seq_length"])

    def encode(examples: list[dict]) -> list[dict]:
        tokens = tokenizer([e["sentence"] for e in examples], truncation=True,
                           max_length=max_length)
        return [{**{k: v[i] for k, v in tokens.items()}, "labels": e["label"]}
                for i, e in enumerate(examples)]

    train = encode(read_jsonl(os.path.join(args.data, "train.jsonl")))
    dev = encode(read_jsonl(os.path.join(args.data, "dev.jsonl")))
    dropout = float(params["dropout"])
    model = transformers.BertForSequenceClassification.from_pretrained(
        encoder["source"], num_labels=2, hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout, classifier_dropout=dropout)

    batch = int(params["batch_size"])
    epochs = int(params["epochs"])
    total_steps = len(train) // batch * epochs
    grouping = ({"train_sampling_strategy": "group_by_length"}
                if "train_sampling_strategy" in
                {f.name for f in dataclasses.fields(transformers.TrainingArguments)}
                else {"group_by_length": True})
    training_args = transformers.TrainingArguments(
        output_dir=args.output_dir, use_cpu=True, seed=args.seed,
        per_device_train_batch_size=batch, per_device_eval_batch_size=batch,
        num_train_epochs=epochs, learning_rate=float(params["learning_rate"]),
        warmup_steps=int(float(params["warmup_proportion"]) * total_steps),
        lr_scheduler_type="linear", weight_decay=float(params["weight_decay"]),
        adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=float(params["adam_epsilon"]),
        max_grad_norm=float(params["clip_norm"]), dataloader_drop_last=True,
        bf16=args.mixed_precision == "mixed_bfloat16", report_to="none", disable_tqdm=True,
        **grouping)
    trainer = transformers.Trainer(
        model=model, args=training_args, train_dataset=train, processing_class=tokenizer,
        data_collator=transformers.DataCollatorWithPadding(tokenizer))
    output = trainer.train()
    # dataloader_drop_last (the suite drops the last incomplete training batch too) also applies
    # to evaluation: score every dev example.
    trainer.args.dataloader_drop_last = False
    prediction = trainer.predict(dev)
    # the labels in the order of the predictions (here they did not come back in the order of dev)
    labels = prediction.label_ids
    assert labels is not None and len(labels) == len(dev), "the dev labels did not come back"
    accuracy = 100.0 * float(np.mean(prediction.predictions.argmax(-1) == labels))
    train_seconds = float(output.metrics["train_runtime"])
    results = {
        "experiment": "hf_trainer/" + run["experiment"], "status": "ok",
        "metrics": {"dev": {"accuracy": accuracy, "loss": prediction.metrics.get("test_loss"),
                            "examples": len(dev)}},
        "params": params, "seed": args.seed, "mixed_precision": args.mixed_precision,
        "steps": int(output.global_step), "global_batch_size": batch,
        "train_seconds": train_seconds,
        "examples_per_second": output.global_step * batch / train_seconds,
        "threads": torch.get_num_threads(),
        "data_identity": run["data_identity"],
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    write_json(os.path.join(args.output_dir, "results.json"), results)
    print(f"dev accuracy {accuracy:.2f}% after {output.global_step} steps, "
          f"{results['examples_per_second']:.1f} examples/s in training", flush=True)


if __name__ == "__main__":
    main()
