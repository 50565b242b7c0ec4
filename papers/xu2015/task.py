"""Image captioning on Flickr8k with the decoders of Xu et al. (2015), the paper's protocol.

Data: Flickr8k's standard train / dev / test image lists (6,000 / 1,000 / 1,000) with all 5
captions per image; an image listed but absent from the image folder is dropped and counted
(``datasets.flickr8k``). ``train_images`` keeps a nested subset of the train images (the first
n of one fixed permutation, so a smaller subset lies inside a larger one), for a learning curve.
The frozen encoder's features of every image are computed once into the shared cache
(:mod:`training.cache`), keyed by the encoder, its weights and each image's name and bytes, and
read by every run; the test images are read only by the final evaluation. Training examples are
(image, caption) pairs, batched by similar caption length (the paper batches captions of one
length, §4.3); evaluation examples are images.

Vocabulary: as ``capgen.py`` chooses it, the ``max_words`` (10,000) most frequent words of the
training captions, which on Flickr8k is every training word (``min_count`` 1); lowercased,
punctuation dropped (``datasets.captions``). So ``<unk>`` is never a training target: its
logit is only ever pushed down; decoding does not forbid it, and the final evaluation counts
the captions that contain it (``unk_captions``).

Loss (per caption): the negative log-likelihood of its words and ``<end>``; for soft attention
the doubly stochastic penalty ``λ Σ_i (1 - Σ_t α_ti)²`` over the caption's real steps (Eq. 14,
``attention_penalty``); for hard attention the REINFORCE update of §4.1 in
:meth:`CaptionTask.train_step`, with one of two estimators (``estimator``):

- ``"paper"``, Eq. 12 as printed: the reward is the caption's log-likelihood
  ``log p(y | s̃, a)``, the baseline its moving average ``b ← 0.9 b + 0.1 log p(y | s̃, a)``
  (per mini-batch, over the global batch), ``λ_r`` = ``reinforce_weight`` (1), and the entropy
  bonus ``λ_e H[s̃]`` = ``entropy_weight`` (0.002) per word;
- ``"capgen"``, as ``capgen.py`` computes its gradient: the reward is the per-word mean
  ``log p`` over the batch's padded length, λ_r = 0.1, and both the REINFORCE and the entropy
  gradients are added per caption without the batch mean's ``1/B`` (Theano's ``known_grads``
  on the summed α), i.e. ``B`` times the weight they would have in the mean loss.

Evaluation: model selection decodes dev greedily and keeps the best BLEU-4 (the paper early-stops
on BLEU); the final evaluation decodes with a beam of ``beam_width`` (no length normalisation, as
``capgen.py``'s default) and scores BLEU-1..4, METEOR, CIDEr and ROUGE-L with coco-caption
(:mod:`metrics.captions`), each with a 95 % bootstrap interval over the images; the attention's
statistics (:mod:`papers.xu2015.attention_stats`); and two yardsticks on the same images: the
single most frequent training caption for every image, and the first caption of the nearest
training image in feature space (cosine of the mean annotation vector). Every generated caption
is stored in ``MODEL_DIR/captions_<split>.jsonl`` (:mod:`papers.xu2015.caption_records`;
``python -m papers.xu2015.rescore`` rescores one alone); the final evaluation on test draws the
attention of each word for its first images into ``MODEL_DIR/attention/``;
``evaluate.py --predict=IMAGE.jpg`` captions any image.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import os
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

import datasets
from datasets import batching, captions, images
from datasets.errors import UserError
from datasets.flickr8k import CAPTIONS_PER_IMAGE
from layers import decoding
from metrics import captions as caption_metrics
from papers.xu2015 import attention_stats, caption_records, encoders, plots
from papers.xu2015.model import CaptionDecoder
from training import cache
from training.distribute import apply_gradients
from training.task import RunEnv, Task

#: test images whose attention the final evaluation draws.
PICTURES = 4
ESTIMATORS = ("paper", "capgen")
_PAPER_METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "CIDEr", "ROUGE-L")


class CaptionTask(Task):
    """Flickr8k captioning (see the module docstring)."""

    metric = "BLEU-4"
    eval_splits = ("dev", "test")
    has_final_eval_step = True
    dataset_name = "flickr8k"

    def __init__(self, params: dict, data_dir: str | None, model_dir: str):
        super().__init__(params, data_dir, model_dir)
        if params.get("estimator", "paper") not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}, got "
                             f"{params['estimator']!r}")
        self._env: RunEnv | None = None
        self.vocab = None
        self.features: dict[str, np.ndarray] = {}

    # ----------------------------------------------------------------------------- data
    def rows(self, name: str) -> np.ndarray:
        """The images of ``name`` used: for train a nested subset of ``train_images``."""
        if name != "train":
            return np.arange(self.split(name).num_rows)
        return self.split(name).subset(int(self.params.get("train_images", 0)),
                                       int(self.params.get("subset_seed", 0)))

    def column(self, split: str, name: str) -> list:
        """A column of the images of ``split`` that are used (:meth:`rows`)."""
        values = self.split(split).columns[name]
        return [values[i] for i in self.rows(split)]

    def data_identity(self) -> dict[str, Any]:
        return {name: self.split(name).fingerprint(self.rows(name)) for name in ("train", "dev")}

    def num_examples(self, split: str) -> int:
        images = len(self.rows(split))
        return images * CAPTIONS_PER_IMAGE if split == "train" else images

    @functools.cached_property
    def encoder_key(self) -> dict:
        return encoders.encoder_key(self.params["encoder"], self.params["encoder_weights"])

    def prepare(self, env) -> None:
        """The vocabulary of the training captions, and the train and dev features (test's
        are computed by the final evaluation, the first to read a test image)."""
        self.vocab = self.vocabulary(lambda: captions.caption_vocabulary(
            [c for caps in self.column("train", "captions") for c in caps],
            max_words=int(self.params["max_words"]) or None,
            min_count=int(self.params["min_count"])))
        self._env = env
        for name in ("train", "dev") if env.read_data else ():  # prediction encodes its own
            self.features_of(name)

    def features_of(self, split: str) -> np.ndarray:
        """The annotation vectors ``[images, L, D]`` of the used images of ``split``."""
        if split not in self.features:
            if self._env is None:
                raise RuntimeError("prepare() must run before features are read")
            loaded = self.split(split)
            every = cache.cached_array(
                self._env, "flickr8k_features", self._feature_key(loaded),
                lambda: encoders.extract_features(
                    self.params["encoder"], self.params["encoder_weights"],
                    loaded.columns["image_path"], dtype="float16",
                    cache_dir=self._env.cache_dir))
            rows = self.rows(split)
            self.features[split] = every if len(rows) == len(every) else every[rows]
        return self.features[split]

    def _feature_key(self, loaded: datasets.LoadedSplit) -> dict:
        """What a split's features depend on: the encoder and each image's name and bytes."""
        digest = hashlib.sha256("\n".join(loaded.columns["image_sha256"]).encode()).hexdigest()
        return {**self.encoder_key, "images": loaded.columns["image_id"],
                "image_bytes_sha256": digest, "dtype": "float16"}

    @functools.lru_cache(maxsize=None)
    def _feature_tensor(self, split: str) -> tf.Tensor:
        return tf.constant(np.asarray(self.features_of(split), np.float16))

    def dataset(self, request: batching.DataRequest) -> tf.data.Dataset:
        """Training: (image, caption) pairs batched by similar caption length; evaluation: the
        images in order (fixed-shape features, whatever ``request.static_shapes``)."""
        split = request.split
        features = self._feature_tensor(split)
        if not request.training:
            ds = tf.data.Dataset.range(len(self.rows(split))).map(lambda i: {"image": i})
            return batching.eval_batches(
                ds, request.batch_size,
                split_fn=lambda b: ({"features": tf.gather(features, b["image"])}, b["image"]),
                input_context=request.input_context)
        length = int(self.params["max_caption_length"])
        texts = self.column(split, "captions")
        pairs = tf.data.Dataset.from_tensor_slices({
            "caption": [c for caps in texts for c in caps],
            "image": np.repeat(np.arange(len(texts)), CAPTIONS_PER_IMAGE)})
        ds = captions.encode_captions(pairs, self.vocab, max_length=length)
        ds = ds.map(lambda ex: {"image": ex["image"], "caption": ex["caption_ids"]})

        def split_fn(batch):
            ids = tf.cast(batch["caption"], tf.int32)
            return ({"features": tf.gather(features, batch["image"]),
                     "caption_in": ids[:, :-1]}, ids[:, 1:])

        return batching.batches(ds, request, split_fn=split_fn, group_by_length=True,
                                static_lengths={"caption": length})

    # ----------------------------------------------------------------------------- model
    def build_model(self) -> keras.Model:
        p = self.params
        return CaptionDecoder(p["decoder"], len(self.vocab),
                              encoders.get_spec(p["encoder"]).feature_dim,
                              embedding_dim=int(p["embedding_dim"]), units=int(p["units"]),
                              attention_units=int(p["attention_units"]),
                              dropout=float(p["dropout"]), coin=p["coin"],
                              start_id=self.vocab.token_id(captions.START))

    def build_optimizer(self, total_steps: int) -> keras.optimizers.Optimizer:
        """RMSProp for Flickr8k (§5) as ``capgen.py``'s ``rmsprop`` computes it: Graves' centred
        variant, ``v ← 0.9 v - lr g / sqrt(E[g²] - E[g]² + 1e-4)`` with averages of decay 0.95,
        where ``capgen.py`` hard-codes lr = 1e-4 (``learning_rate``); or Adam."""
        lr = float(self.params["learning_rate"])
        if self.params["optimizer"] == "rmsprop":
            return keras.optimizers.RMSprop(lr, rho=0.95, momentum=0.9, epsilon=1e-4,
                                            centered=True)
        return keras.optimizers.Adam(lr)

    # ----------------------------------------------------------------------------- loss
    @staticmethod
    def _nll(labels, outputs):
        """Per caption: ``-log p(y | a)`` summed over its real steps, and the real-step mask."""
        real = tf.cast(tf.not_equal(labels, 0), tf.float32)                    # [B, T]
        token = keras.losses.sparse_categorical_crossentropy(
            labels, tf.cast(outputs["logits"], tf.float32), from_logits=True)
        return tf.reduce_sum(token * real, axis=-1), real

    def loss(self, features, labels, outputs):
        """Per caption: NLL, plus ``λ Σ_i (1 - Σ_t α_ti)²`` (Eq. 14) for soft attention."""
        nll, real = self._nll(labels, outputs)
        penalty = float(self.params["attention_penalty"])
        if not penalty or self.params["decoder"] != "soft":
            return nll
        coverage = tf.reduce_sum(tf.cast(outputs["attention"], tf.float32)
                                 * real[..., None], axis=1)                    # [B, L]
        return nll + penalty * tf.reduce_sum(tf.square(1.0 - coverage), axis=-1)  # Eq. (14)

    def _reinforce(self, nll, real, outputs, baseline, global_batch_size: int):
        """Per caption: the reward and the REINFORCE surrogate whose gradient is Eq. 12's
        update (without its ∂ log p(y|s̃) term, which the NLL gives)."""
        capgen = self.params["estimator"] == "capgen"
        if capgen:  # per-word mean over the batch's padded length
            reward = -nll / tf.cast(tf.shape(real)[1], tf.float32)
        else:
            reward = -nll                                                      # log p(y|s̃, a)
        log_p_s = tf.reduce_sum(outputs["log_sample_prob"] * real, axis=-1)   # log p(s̃ | a)
        entropy = tf.reduce_sum(outputs["entropy"] * real, axis=-1)            # H[s̃]
        scale = float(global_batch_size) if capgen else 1.0
        surrogate = -float(self.params["reinforce_weight"]) * scale * outputs["sampled"] * (
            tf.stop_gradient(reward) - baseline) * log_p_s                     # Eq. (12)
        return reward, surrogate - float(self.params["entropy_weight"]) * scale * entropy

    def train_step(self, inputs, model, optimizer, *, global_batch_size: int,
                   clip_norm: float | None) -> dict[str, tf.Tensor]:
        """The default step; for hard attention, the REINFORCE step of §4.1: the NLL and the
        surrogate of Eq. 12 under one gradient, then the baseline's moving average
        ``b ← 0.9 b + 0.1 r̄`` with ``r̄`` the mean reward of the global batch."""
        if self.params["decoder"] != "hard":
            return super().train_step(inputs, model, optimizer,
                                      global_batch_size=global_batch_size, clip_norm=clip_norm)
        features, labels, weights = inputs
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        baseline = tf.identity(tf.cast(model.baseline.value, tf.float32))
        with tf.GradientTape() as tape:
            outputs = model(features, training=True)
            nll, real = self._nll(labels, outputs)
            reward, surrogate = self._reinforce(nll, real, outputs, baseline, global_batch_size)
            per_example = tf.cast(self.loss(features, labels, outputs), tf.float32) + surrogate
            data_loss = tf.reduce_sum(tf.cast(nll, tf.float32) * weights) / global_batch_size
            loss = (tf.reduce_sum(per_example * weights) / global_batch_size
                    + tf.cast(self.regularization_loss(model), tf.float32) / replicas)
            scaled = optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
        variables = model.trainable_variables
        apply_gradients(optimizer, tape.gradient(scaled, variables), variables, clip_norm)
        total = tf.reduce_sum(tf.stop_gradient(reward) * weights)
        context = tf.distribute.get_replica_context()
        if context is not None and replicas > 1:
            total = context.all_reduce(tf.distribute.ReduceOp.SUM, total)
        model.baseline.assign(0.9 * baseline + 0.1 * total / global_batch_size)
        return {"loss": loss, "data_loss": data_loss}

    # ----------------------------------------------------------------------------- decoding
    def _decode(self, model, features, beam_width: int) -> decoding.Decoded:
        state, constants = model.start(features)
        ids = {"start_id": self.vocab.token_id(captions.START),
               "end_id": self.vocab.token_id(captions.END), "pad_id": 0,
               "max_length": int(self.params["max_decode_length"])}
        return decoding.beam_search(model.decode_step, state, constants,
                                    beam_width=beam_width, **ids)

    def eval_step(self, inputs, model):
        features, image, weights = inputs
        decoded = self._decode(model, features["features"], 1)
        return {"tokens": decoded.sequences[:, 0], "image": image, "weights": weights}

    def final_eval_step(self, inputs, model):
        features, image, weights = inputs
        decoded = self._decode(model, features["features"], int(self.params["beam_width"]))
        return {"tokens": decoded.sequences[:, 0], "log_probability": decoded.log_probs[:, 0],
                "attention": decoded.extras["attention"][:, 0], "image": image,
                "weights": weights}

    def words(self, tokens) -> list[str]:
        """The words of a generated sequence, up to ``<end>``."""
        out = []
        for t in np.asarray(tokens).tolist():
            word = self.vocab.tokens[t]
            if word == captions.END or t == 0:
                break
            out.append(word)
        return out

    def _hypotheses(self, gathered, split) -> dict[str, str]:
        ids = self.column(split, "image_id")
        assert np.all(gathered["image"][:len(ids)] == np.arange(len(ids))), "rows out of order"
        return {ids[i]: " ".join(self.words(gathered["tokens"][i])) for i in range(len(ids))}

    def _references(self, split) -> dict[str, list[str]]:
        return dict(zip(self.column(split, "image_id"), self.column(split, "captions")))

    # ----------------------------------------------------------------------------- metrics
    @functools.cached_property
    def scorer(self) -> caption_metrics.CaptionScorer:
        return caption_metrics.CaptionScorer()

    def compute_metrics(self, gathered, split):
        scores = self.scorer.score(self._references(split), self._hypotheses(gathered, split),
                                   metrics=("bleu",))
        return {**{k: scores[k] for k in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4")},
                "examples": len(self.rows(split))}

    def compute_final_metrics(self, gathered, split):
        """The paper's metrics with their 95 % bootstrap intervals (``<metric>/ci95``), the
        attention statistics (``attention/…``), the yardsticks and the ``<unk>`` count."""
        references, hypotheses = self._references(split), self._hypotheses(gathered, split)
        metrics = self._paper_scores(references, hypotheses)
        intervals = self.scorer.intervals(references, hypotheses,
                                          seed=int(self.params.get("bootstrap_seed", 0)))
        metrics.update({f"{k}/ci95": list(v) if v else None for k, v in intervals.items()})
        lengths = np.array([len(self.words(t)) for t in gathered["tokens"][:len(hypotheses)]])
        stats = attention_stats.attention_statistics(gathered["attention"][:len(hypotheses)],
                                                     lengths)
        metrics.update({f"attention/{k}": v for k, v in stats.items()})
        for name, yardstick in self.yardsticks(split).items():
            metrics.update({f"{name}/{k}": v for k, v in self._paper_scores(
                references, yardstick).items()})
        metrics.update(examples=len(hypotheses), beam_width=int(self.params["beam_width"]),
                       unk_captions=sum(captions.OOV in h.split() for h in hypotheses.values()))
        return metrics

    def _paper_scores(self, references, hypotheses) -> dict[str, float | None]:
        scores = self.scorer.score(references, hypotheses)
        return {k: scores[k] for k in _PAPER_METRICS}

    @functools.cached_property
    def _most_frequent_caption(self) -> str:
        """The most frequent normalised training caption (one batched tokenisation)."""
        texts = [c for caps in self.column("train", "captions") for c in caps]
        tokenized = captions.CAPTION_TOKENIZER.tokenize_py(texts)
        return collections.Counter(" ".join(words) for words in tokenized).most_common(1)[0][0]

    def yardsticks(self, split: str) -> dict[str, dict[str, str]]:
        """Captions that need no model: the most frequent training caption for every image,
        and the first caption of the nearest training image (cosine of mean features)."""
        frequent = self._most_frequent_caption
        ids = self.column(split, "image_id")

        def unit(x):
            x = np.asarray(x, np.float32).mean(axis=1)
            return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

        nearest = (unit(self.features_of(split)) @ unit(self.features_of("train")).T).argmax(1)
        train_captions = self.column("train", "captions")
        return {"frequent_caption": {i: frequent for i in ids},
                "nearest_image": {i: train_captions[j][0] for i, j in zip(ids, nearest)}}

    # ----------------------------------------------------------------------------- artefacts
    def write_artifacts(self, model, split, gathered, directory) -> list[str]:
        """``captions_<split>.jsonl`` (every caption, :mod:`papers.xu2015.caption_records`),
        and for test the attention pictures of its first images."""
        ids, refs = self.column(split, "image_id"), self.column(split, "captions")
        records = [{"image": ids[i], "caption": " ".join(self.words(gathered["tokens"][i])),
                    "tokens": self._emitted(gathered["tokens"][i]),
                    "log_probability": float(gathered["log_probability"][i]),
                    "references": list(refs[i])} for i in range(len(ids))]
        path = os.path.join(directory, f"captions_{split}.jsonl")
        caption_records.write_captions(path, records)
        if split != "test":
            return [path]
        n = min(PICTURES, len(ids))
        paths = [os.path.join(directory, "attention", f"test_{i}.png") for i in range(n)]
        self._draw(model, np.asarray(self.features_of(split)[:n], np.float32),
                   self.column(split, "image_path")[:n], paths)
        return [path] + paths

    def _emitted(self, tokens) -> list[int]:
        """The decoded ids up to and including ``<end>``."""
        out = []
        for t in np.asarray(tokens).tolist():
            if t == 0:
                break
            out.append(int(t))
            if t == self.vocab.token_id(captions.END):
                break
        return out

    def _draw(self, model, features, image_paths, paths) -> list[dict[str, Any]]:
        decoded = self._decode(model, features, int(self.params["beam_width"]))
        tokens, attention = decoded.sequences[:, 0], decoded.extras["attention"][:, 0]
        grid = encoders.get_spec(self.params["encoder"]).grid
        results = []
        for n, path in enumerate(paths):
            words = self.words(tokens[n])
            steps = np.asarray(attention[n])  # <end> has a step too, if it was produced
            plots.plot_caption_attention(image_paths[n], (words + [captions.END])[:len(steps)],
                                         steps, grid, path)
            results.append({"caption": " ".join(words), "files": [path]})
        return results

    def serving_endpoint(self, model):
        """``image``: encoded JPEG bytes → ``caption`` (string) and ``tokens``: the frozen
        encoder, the decoder and the beam search of ``beam_width`` run in the graph."""
        spec = encoders.get_spec(self.params["encoder"])
        encoder, words = self.encoder, tf.constant(self.vocab.tokens)
        end = self.vocab.token_id(captions.END)

        def serve(image):
            pictures = tf.map_fn(
                lambda data: images.decode_jpeg(data, spec.image_size, spec.preprocess), image,
                fn_output_signature=tf.TensorSpec([spec.image_size, spec.image_size, 3],
                                                  tf.float32))
            tokens = self._decode(model, encoder(pictures),
                                  int(self.params["beam_width"])).sequences[:, 0]
            before_end = tf.math.cumsum(tf.cast(tf.equal(tokens, end), tf.int32), axis=1,
                                        exclusive=True) == 0
            keep = before_end & tf.not_equal(tokens, end) & tf.not_equal(tokens, 0)
            caption = tf.strings.reduce_join(
                tf.where(keep, tf.gather(words, tokens) + " ", ""), axis=1)
            return {"caption": tf.strings.strip(caption), "tokens": tokens}

        return serve, [tf.TensorSpec([None], tf.string, name="image")], []

    @functools.cached_property
    def encoder(self) -> keras.Model:
        return encoders.build_encoder(self.params["encoder"], self.params["encoder_weights"],
                                      cache_dir=self._env.cache_dir if self._env else None)

    def input_problem(self, raw: str) -> str | None:
        """An image file that ``datasets.images.load_image`` reads (JPEG, PNG, GIF, BMP)."""
        spec = encoders.get_spec(self.params["encoder"])
        try:
            images.load_image(raw, spec.image_size, spec.preprocess)
        except UserError as e:
            return str(e)
        return None

    def predict(self, model, inputs: Sequence[str], output_dir: str) -> list[dict[str, Any]]:
        """Captions of image files (JPEG, PNG, GIF, BMP), with a picture of each word's
        attention."""
        spec = encoders.get_spec(self.params["encoder"])
        pictures = np.stack([images.load_image(path, spec.image_size, spec.preprocess)
                             for path in inputs])
        features = self.encoder.predict_on_batch(pictures)
        paths = [os.path.join(output_dir, f"caption_{i}.png") for i in range(len(inputs))]
        return self._draw(model, features, list(inputs), paths)
