"""Word-level language modelling of IMDB reviews with Zaremba et al.'s LSTM (Section 4.1).

Data (:mod:`papers.zaremba2014.corpus`): the training reviews' tokens, each review followed by
``<eos>``, as one corpus; dev and test are held-out reviews from IMDB's test half; the
vocabulary is the ``vocab_size`` most frequent training tokens (with ``<pad>``, ``<unk>``,
``<eos>``), written to ``MODEL_DIR/vocab.txt`` once and read back on a restart. The ids of each
split go through the shared cache (:mod:`training.cache`), keyed by the reviews' text, the
tokenizer and the vocabulary, so runs on the same reviews tokenize them once.

Training: truncated backpropagation through time as in Zaremba et al.'s code and PyTorch's
word-language-model example. The training corpus is cut into ``batch_size`` contiguous streams
(the global batch); step ``t`` of an epoch reads tokens ``[t·T, (t+1)·T)`` of every stream
(``T = bptt``) and predicts each next token; the remainder of the streams shorter than ``T``
is not read. Every epoch reads the streams from the start, in the same order. The LSTM state
after a batch is the initial state of the next one (carried across batches, no gradient through
it) and is reset to zeros at the start of every epoch: the first batch of an epoch has
``reset`` set. The carried state is the model's non-trainable variable ``carried_state``
(all streams, whatever the number of replicas: each replica reads and writes its own rows, and
the rows of all replicas are gathered before the write), so the loop's checkpoint holds it and a
run resumed mid-epoch continues from exactly that state.

Objective and update, as in the released code: the loss of a batch is ``Σ_t mean_b
-log p(w_{b,t+1} | w_{b,≤t})``, summed over the ``T`` steps and averaged over the streams;
the global gradient norm is clipped to ``clip_norm``; plain SGD with
:class:`~papers.zaremba2014.schedule.ZarembaSchedule`. The training loss reported (progress
line, TensorBoard, ``history.json``) is per token: that sum divided by ``T``.

Evaluation: the perplexity ``exp(-(1/N) Σ log p(w_i | w_<i))`` of a held-out corpus, cut into
as many streams as the evaluation batch size (the training batch size during training, as the
paper's validation does; ``evaluate.py --batch_size=1`` reads the corpus as one stream, as the
paper's test does; ``--batch_size=10`` as PyTorch's example does). Each stream starts from a
zero state and is read in chunks of ``T`` with the state carried across chunks, so the number
counts every token but the first of each stream, exactly like those programs.

Generation (``evaluate.py --predict="My name is John and I like to"``): the prompt is read after
an ``<eos>`` (as if a review began with it) and continued by :mod:`layers.generation` with the
decoding the generation flags choose (:class:`layers.generation.Decoding`).
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from datasets import batching, text
from layers import generation
from papers.zaremba2014 import corpus
from papers.zaremba2014.model import LanguageModel
from papers.zaremba2014.schedule import ZarembaSchedule
from training import cache, io
from training.distribute import apply_gradients
from training.task import Task, steps_per_epoch, text_columns

#: IMDB's half each split's reviews come from.
_HALF = {"train": "train", "dev": "test", "test": "test"}


def check_params(params: dict) -> None:
    """The checks of this task's own hyperparameters (the shared ones are checked already)."""
    rules = [("num_layers", lambda v: v >= 1, "at least 1"),
             ("bptt", lambda v: v >= 1, "at least 1"),
             ("init_scale", lambda v: v > 0, "positive"),
             ("lr_decay", lambda v: v >= 1, "at least 1"),
             ("max_epoch", lambda v: v >= 0, "0 or more"),
             ("vocab_size", lambda v: v >= len(corpus.RESERVED) + 1,
              f"at least {len(corpus.RESERVED) + 1}"),
             ("eval_examples", lambda v: v >= 1, "at least 1")]
    problems = [f"{key}={params[key]!r} (must be {valid})" for key, ok, valid in rules
                if not ok(params[key])]
    if problems:
        raise ValueError("invalid hyperparameter(s) of zaremba2014: " + "; ".join(problems))


class LanguageModelTask(Task):
    """IMDB language modelling with stateful truncated BPTT (see the module docstring)."""

    metric = "perplexity"
    metric_mode = "min"
    eval_splits = ("dev", "test")
    #: :meth:`split` loads IMDB's halves; the task's splits are cut from them (:meth:`texts`).
    dataset_name = "imdb"

    def __init__(self, params: dict, data_dir: str | None, model_dir: str):
        super().__init__(params, data_dir, model_dir)
        check_params(self.params)
        self.tokenizer = text.WordTokenizer(lowercase=True)
        self.vocab: text.Vocabulary | None = None
        self._texts: dict[str, list[str]] = {}
        self._tokens: dict[str, list[list[str]]] = {}
        self.ids: dict[str, np.ndarray] = {}

    # ----------------------------------------------------------------------------- data
    def texts(self, split: str) -> list[str]:
        """The reviews of ``split`` in corpus order (:func:`corpus.review_rows`)."""
        if split not in self._texts:
            reviews = self.split(_HALF[split]).columns["text"]
            rows = corpus.review_rows(split, len(reviews),
                                      train_examples=int(self.params["train_examples"]),
                                      eval_examples=int(self.params["eval_examples"]),
                                      subset_seed=int(self.params["subset_seed"]))
            self._texts[split] = [reviews[i] for i in rows]
        return self._texts[split]

    def tokens(self, split: str) -> list[list[str]]:
        if split not in self._tokens:
            self._tokens[split] = self.tokenizer.tokenize_py(self.texts(split))
        return self._tokens[split]

    def data_identity(self) -> dict[str, Any]:
        return {split: cache.key_digest(self.texts(split)) for split in ("train", "dev")}

    def prepare(self, env) -> None:
        """The vocabulary (``vocab.txt``) and every split's ids, through the shared cache."""
        tokenizer = self.tokenizer.get_config()
        path = os.path.join(self.model_dir, "vocab.txt")
        if io.exists(path):
            self.vocab = text.Vocabulary.load(path)
        else:
            key = {"train": cache.key_digest(self.texts("train")), "tokenizer": tokenizer,
                   "vocab_size": int(self.params["vocab_size"])}
            tokens = cache.cached_array(
                env, "zaremba2014_vocab", key,
                lambda: np.asarray(corpus.build_vocabulary(
                    self.tokens("train"), int(self.params["vocab_size"])).tokens))
            self.vocab = text.Vocabulary([str(t) for t in tokens])
            if env.is_chief:
                self.vocab.save(path)
        if not env.read_data:  # prediction: the vocabulary is all it reads
            return
        vocab = cache.key_digest(self.vocab.tokens)
        for split in ("train", "dev", "test"):
            key = {"texts": cache.key_digest(self.texts(split)), "tokenizer": tokenizer,
                   "vocab": vocab}
            self.ids[split] = np.asarray(cache.cached_array(
                env, "zaremba2014_ids", key,
                lambda split=split: corpus.encode(self.tokens(split), self.vocab)))

    def num_examples(self, split: str) -> int:
        """Training: steps per epoch × streams (a step reads one chunk of every stream)."""
        streams = int(self.params["batch_size"])
        if split != "train":
            return streams
        length = len(self.ids["train"]) // streams
        return max(0, (length - 1) // int(self.params["bptt"])) * streams

    def dataset(self, request: batching.DataRequest) -> tf.data.Dataset:
        """Training: the epoch's chunks in order (the request's seed and epoch change
        nothing); evaluation: one batch of whole streams per replica. Every shape is static.
        See the module docstring."""
        layout = batching.Layout.of(request.batch_size, request.input_context)
        streams = corpus.batchify(self.ids[request.split], layout.global_batch)
        chunk = int(self.params["bptt"])
        if request.training:
            steps = (streams.shape[1] - 1) // chunk
            if steps < 1:
                raise ValueError(f"the training streams of {streams.shape[1]} tokens are "
                                 f"shorter than bptt + 1 = {chunk + 1}: use more reviews or a "
                                 "smaller batch size")
            data = tf.constant(streams)

            def batch(t):
                start = tf.cast(t, tf.int32) * chunk
                tokens = tf.slice(data, [0, start], [layout.global_batch, chunk])
                targets = tf.slice(data, [0, start + 1], [layout.global_batch, chunk])
                reset = tf.fill([layout.global_batch], tf.equal(t, 0))
                return ({"tokens": tokens, "reset": reset}, targets,
                        tf.ones([layout.global_batch], tf.float32))

            ds = tf.data.Dataset.range(steps).map(batch)
        else:
            targets = streams.shape[1] - 1
            padded = math.ceil(targets / chunk) * chunk
            pad = [(0, 0), (0, padded - targets)]
            ds = tf.data.Dataset.from_tensors((
                {"tokens": np.pad(streams[:, :-1], pad),
                 "length": np.full([layout.global_batch], targets, np.int32)},
                np.pad(streams[:, 1:], pad), np.ones([layout.global_batch], np.float32)))
        return layout.this_pipeline(ds).prefetch(tf.data.AUTOTUNE)

    # ----------------------------------------------------------------------------- model
    def build_model(self) -> keras.Model:
        p = self.params
        model = LanguageModel(len(self.vocab), int(p["hidden_units"]),
                              num_layers=int(p["num_layers"]), dropout=float(p["dropout"]),
                              init_scale=float(p["init_scale"]), tied=bool(p["tied"]),
                              carried_streams=int(p["batch_size"]))
        model({"tokens": tf.zeros([1, 1], tf.int32)})
        return model

    def build_optimizer(self, total_steps: int) -> keras.optimizers.Optimizer:
        per_epoch = steps_per_epoch(self.num_examples("train"), int(self.params["batch_size"]))
        return keras.optimizers.SGD(ZarembaSchedule(
            float(self.params["learning_rate"]), decay=float(self.params["lr_decay"]),
            max_epoch=int(self.params["max_epoch"]), steps_per_epoch=per_epoch))

    def loss(self, features, labels, outputs):
        """Per stream: the negative log-likelihood of its chunk, summed over time ``[batch]``."""
        return tf.reduce_sum(self.token_nll(labels, outputs), axis=1)

    @staticmethod
    def token_nll(labels, outputs) -> tf.Tensor:
        """``-log p(w_{t+1} | w_{≤t})`` of every position ``[batch, time]``, float32."""
        return tf.nn.sparse_softmax_cross_entropy_with_logits(
            tf.cast(labels, tf.int32), tf.cast(Task.logits(outputs), tf.float32))

    # ----------------------------------------------------------------------------- steps
    def train_step(self, inputs, model, optimizer, *, global_batch_size, clip_norm):
        """The default step with the carried state read before and written after it."""
        features, labels, weights = inputs
        ctx = tf.distribute.get_replica_context()
        replicas = ctx.num_replicas_in_sync
        streams = tf.shape(features["tokens"])[0]
        first = ctx.replica_id_in_sync_group * streams
        carried = model.carried_state
        state = carried.value[first:first + streams]
        state = tf.where(features["reset"][:, None, None, None], tf.zeros_like(state), state)
        with tf.GradientTape() as tape:
            outputs = model({"tokens": features["tokens"], "state": state}, training=True)
            per_stream = self.loss(features, labels, outputs)
            data_loss = tf.reduce_sum(per_stream * weights) / global_batch_size
            loss = data_loss + tf.cast(self.regularization_loss(model), tf.float32) / replicas
        variables = model.trainable_variables
        apply_gradients(optimizer, tape.gradient(loss, variables), variables, clip_norm)
        new_state = tf.cast(tf.stop_gradient(outputs["state"]), carried.dtype)
        if replicas > 1:
            new_state = ctx.all_gather(new_state, axis=0)
        carried.assign(new_state)
        per_token = tf.cast(tf.shape(labels)[1], tf.float32)
        return {"loss": loss / per_token, "data_loss": data_loss / per_token}

    def eval_step(self, inputs, model):
        """The negative log-likelihood and token count of every stream, read chunk by chunk
        from a zero state with the state carried across chunks."""
        features, labels, weights = inputs
        tokens, length = features["tokens"], features["length"]
        chunk = int(self.params["bptt"])
        streams = tokens.shape[0] or tf.shape(tokens)[0]
        offsets = tf.range(chunk)

        def body(i, state, nll, count):
            start = i * chunk
            size = [-1, chunk]  # keeps the static number of streams
            outputs = model({"tokens": tf.slice(tokens, [0, start], size), "state": state},
                            training=False)
            real = tf.cast(start + offsets[None, :] < length[:, None], tf.float32)
            loss = self.token_nll(tf.slice(labels, [0, start], size), outputs) * real
            return (i + 1, outputs["state"], nll + tf.reduce_sum(loss, axis=1),
                    count + tf.reduce_sum(real, axis=1))

        zeros = tf.zeros([streams], tf.float32)
        _, _, nll, count = tf.while_loop(
            lambda i, *_: i < tf.shape(tokens)[1] // chunk, body,
            (tf.constant(0), model.zero_state(streams), zeros, zeros))
        return {"nll": nll, "tokens": count, "weights": weights,
                "loss": nll / tf.maximum(count, 1.0)}

    def compute_metrics(self, gathered, split):
        keep = gathered["weights"] > 0
        nll = float(np.sum(gathered["nll"][keep], dtype=np.float64))
        tokens = int(round(float(np.sum(gathered["tokens"][keep], dtype=np.float64))))
        return {"perplexity": math.exp(nll / tokens), "loss": nll / tokens, "tokens": tokens,
                "streams": int(keep.sum())}

    # ----------------------------------------------------------------------------- generation
    @staticmethod
    def _step(model):
        """``model.step`` with ``<pad>`` impossible: it is in the softmax (id 0 of every
        vocabulary of the suite) but never in a corpus."""
        pad = tf.one_hot(text.Vocabulary.pad_id, model.vocab_size, on_value=-1e9, off_value=0.0)

        def step(tokens, state):
            logits, state = model.step(tokens, state)
            return tf.cast(logits, tf.float32) + pad, state

        return step

    def predict(self, model, inputs: Sequence[str], output_dir: str,
                decoding: generation.Decoding | None = None) -> list[dict[str, Any]]:
        """Continues each prompt (see the module docstring); ``decoding`` defaults to greedy."""
        decoding = decoding or generation.Decoding()
        eos = self.vocab.token_id(corpus.EOS)
        results = []
        for n, prompt in enumerate(text_columns(inputs, 1)[0], start=1):
            words = self.tokenizer.tokenize_py([prompt])[0]
            if not words:
                raise ValueError(f"input {n} has no words: {prompt!r}")
            ids = [eos] + [self.vocab.token_id(w) for w in words]
            state = model({"tokens": tf.constant([ids[:-1]], tf.int32)})["state"]
            out = generation.generate(self._step(model), state, start=ids[-1], end_id=eos,
                                      pad_id=text.Vocabulary.pad_id, decoding=decoding)
            continuation = [self.vocab.tokens[i] for i in out.tokens if i != eos]
            results.append({
                "prompt": " ".join(self.vocab.tokens[i] for i in ids[1:]),
                "continuation": " ".join(continuation),
                "ended": out.ended, "log_prob": out.log_prob,
                "unknown_words": [w for w in words if w not in self.vocab],
                **decoding.describe()})
        return results
