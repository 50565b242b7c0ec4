"""Image captioning on Flickr8k with the decoders of Xu et al. (2015), the paper's protocol.

Data: Flickr8k's standard train / dev / test image lists with all 5 captions per image; an image
listed but absent from the image folder is dropped and counted (``datasets.flickr8k``). The
frozen encoder's features of every image are computed once into the shared cache
(:mod:`training.cache`), keyed by the encoder, its weights and the image list, and read by every
run. Training examples are (image, caption) pairs, batched by similar caption length (the paper
batches captions of one length); evaluation examples are images.

Vocabulary: the train captions' words seen at least ``min_count`` times (Xu et al. keep the
10,000 most frequent words of much larger corpora; the Flickr8k train captions here have fewer
words than that), lowercased, punctuation dropped (``datasets.captions``).

Loss (per caption): the negative log-likelihood of its words and ``<end>`` plus the doubly
stochastic penalty ``λ Σ_i (1 - Σ_t α_ti)²`` over the caption's real steps (Eq. 14,
``attention_penalty``); for hard attention the REINFORCE terms of §4.1 (Eq. 12 with a moving
average baseline, decay 0.9, and the entropy bonus ``λ_e``), see :meth:`CaptionTask.loss`.

Evaluation: model selection decodes dev greedily and keeps the best BLEU-4 (the paper
early-stops on BLEU); the final evaluation decodes with a beam of ``beam_width`` and scores
BLEU-1..4, METEOR, CIDEr and ROUGE-L with coco-caption (:mod:`papers.xu2015.caption_metrics`),
beside two yardsticks on the same images: the single most frequent training caption for every
image, and the first caption of the nearest training image in feature space (cosine of the mean
annotation vector). The final evaluation on test draws the attention of each word for its first
images into ``MODEL_DIR/attention/``; ``evaluate.py --predict=IMAGE.jpg`` captions any image.
"""

from __future__ import annotations

import collections
import functools
import os
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from datasets import batching, captions, images
from datasets.flickr8k import CAPTIONS_PER_IMAGE
from layers import decoding
from papers.xu2015 import caption_metrics, encoders, plots
from papers.xu2015.model import CaptionDecoder
from training import cache
from training.task import Task

#: test images whose attention the final evaluation draws.
PICTURES = 4
_PAPER_METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "CIDEr", "ROUGE-L")


class CaptionTask(Task):
    """Flickr8k captioning (see the module docstring)."""

    metric = "BLEU-4"
    eval_splits = ("dev", "test")
    has_final_eval_step = True
    dataset_name = "flickr8k"

    def __init__(self, params: dict, data_dir: str | None, model_dir: str):
        super().__init__(params, data_dir, model_dir)
        self.vocab = None
        self.features: dict[str, np.ndarray] = {}

    # ----------------------------------------------------------------------------- data
    def num_examples(self, split: str) -> int:
        loaded = self.split(split)
        return loaded.num_rows * CAPTIONS_PER_IMAGE if split == "train" else \
            loaded.num_rows

    @functools.cached_property
    def encoder_key(self) -> dict:
        return encoders.encoder_key(self.params["encoder"], self.params["encoder_weights"])

    def prepare(self, env) -> None:
        self.vocab = self.vocabulary(lambda: captions.caption_vocabulary(
            captions.all_captions(self.split("train")), min_count=int(self.params["min_count"])))
        for name in ("train", "dev", "test"):
            loaded = self.split(name)
            key = {**self.encoder_key, "images": loaded.columns["image_id"], "dtype": "float16"}
            self.features[name] = cache.cached_array(
                env, "flickr8k_features", key, lambda: encoders.extract_features(
                    self.params["encoder"], self.params["encoder_weights"],
                    loaded.columns["image_path"], dtype="float16", cache_dir=env.cache_dir))

    @functools.lru_cache(maxsize=None)
    def _feature_tensor(self, split: str) -> tf.Tensor:
        return tf.constant(np.asarray(self.features[split], np.float16))

    def dataset(self, request):
        split = request.split
        features = self._feature_tensor(split)
        length = int(self.params["max_caption_length"])
        if request.training:
            pairs = captions.caption_pairs(self.split(split).dataset)
            index = tf.data.Dataset.range(self.split(split).num_rows * CAPTIONS_PER_IMAGE).map(
                lambda i: i // CAPTIONS_PER_IMAGE)  # caption_pairs: image by image
            ds = tf.data.Dataset.zip(pairs, index).map(lambda pair, i: {**pair, "image": i})
            ds = captions.encode_captions(ds, self.vocab, max_length=length)
            ds = ds.map(lambda ex: {"image": ex["image"], "caption": ex["caption_ids"]})

            def split_fn(batch):
                ids = tf.cast(batch["caption"], tf.int32)
                return ({"features": tf.gather(features, batch["image"]),
                         "caption_in": ids[:, :-1]}, ids[:, 1:])

            return batching.batches(ds, request, split_fn=split_fn, group_by_length=True,
                                    static_lengths={"caption": length})
        ds = tf.data.Dataset.range(self.split(split).num_rows).map(lambda i: {"image": i})
        return batching.eval_batches(
            ds, request.batch_size,
            split_fn=lambda b: ({"features": tf.gather(features, b["image"])}, b["image"]),
            input_context=request.input_context)

    # ----------------------------------------------------------------------------- model
    def build_model(self) -> keras.Model:
        p = self.params
        model = CaptionDecoder(p["decoder"], len(self.vocab), self.features["train"].shape[-1],
                               embedding_dim=int(p["embedding_dim"]), units=int(p["units"]),
                               attention_units=int(p["attention_units"]),
                               dropout=float(p["dropout"]),
                               start_id=self.vocab.token_id(captions.START))
        self._baseline = getattr(model, "baseline", None)
        return model

    def build_optimizer(self, total_steps: int) -> keras.optimizers.Optimizer:
        """RMSProp for Flickr8k (§5), as ``capgen.py`` runs it: Graves' centred variant with
        momentum 0.9 and decay 0.95; or Adam."""
        lr = float(self.params["learning_rate"])
        if self.params["optimizer"] == "rmsprop":
            return keras.optimizers.RMSprop(lr, rho=0.95, momentum=0.9, epsilon=1e-4,
                                            centered=True)
        return keras.optimizers.Adam(lr)

    def loss(self, features, labels, outputs):
        """Per caption: NLL + ``λ Σ_i (1 - Σ_t α_ti)²`` (Eq. 14), and for hard attention the
        REINFORCE surrogate of Eq. 12: ``-λ_r (log p(y|s̃) - b) Σ_t log α_t(s_t)`` on the
        images that sampled, ``-λ_e Σ_t H[α_t]``, and the baseline update
        ``b ← 0.9 b + 0.1 mean(log p(y|s̃))``."""
        real = tf.cast(tf.not_equal(labels, 0), tf.float32)                    # [B, T]
        token = keras.losses.sparse_categorical_crossentropy(
            labels, tf.cast(outputs["logits"], tf.float32), from_logits=True)
        nll = tf.reduce_sum(token * real, axis=-1)
        loss = nll
        penalty = float(self.params["attention_penalty"])
        if penalty and self.params["decoder"] != "gru":
            coverage = tf.reduce_sum(tf.cast(outputs["attention"], tf.float32)
                                     * real[..., None], axis=1)                # [B, L]
            loss += penalty * tf.reduce_sum(tf.square(1.0 - coverage), axis=-1)
        if "log_sample_prob" in outputs:  # hard attention, training
            baseline = tf.identity(tf.cast(self._baseline.value, tf.float32))
            reward = tf.stop_gradient(-nll)                                    # log p(y|s̃)
            log_p_s = tf.reduce_sum(outputs["log_sample_prob"] * real, axis=-1)
            loss -= (float(self.params["reinforce_weight"]) * outputs["sampled"]
                     * (reward - baseline) * log_p_s)
            loss -= float(self.params["entropy_weight"]) * tf.reduce_sum(
                outputs["entropy"] * real, axis=-1)
            # the variable averages over replicas (the baseline of the global batch)
            self._baseline.assign(0.9 * baseline + 0.1 * tf.reduce_mean(reward))
        return loss

    # ----------------------------------------------------------------------------- decoding
    def _decode(self, model, features, beam_width: int):
        state, constants = model.start(features)
        ids = {"start_id": self.vocab.token_id(captions.START),
               "end_id": self.vocab.token_id(captions.END), "pad_id": 0,
               "max_length": int(self.params["max_decode_length"])}
        beams = decoding.beam_search(model.decode_step, state, constants,
                                     beam_width=beam_width, **ids)
        return beams.sequences[:, 0], beams.extras["attention"][:, 0]

    def eval_step(self, inputs, model):
        features, image, weights = inputs
        tokens, _ = self._decode(model, features["features"], 1)
        return {"tokens": tokens, "image": image, "weights": weights}

    def final_eval_step(self, inputs, model):
        features, image, weights = inputs
        tokens, _ = self._decode(model, features["features"], int(self.params["beam_width"]))
        return {"tokens": tokens, "image": image, "weights": weights}

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
        n = self.split(split).num_rows
        assert np.all(gathered["image"][:n] == np.arange(n)), "rows out of order"
        ids = self.split(split).columns["image_id"]
        return {ids[i]: " ".join(self.words(gathered["tokens"][i])) for i in range(n)}

    def _references(self, split) -> dict[str, list[str]]:
        loaded = self.split(split)
        return dict(zip(loaded.columns["image_id"], loaded.columns["captions"]))

    @functools.cached_property
    def scorer(self) -> caption_metrics.CaptionScorer:
        return caption_metrics.CaptionScorer()

    def compute_metrics(self, gathered, split):
        scores = self.scorer.score(self._references(split), self._hypotheses(gathered, split),
                                   metrics=("bleu",))
        return {**{k: scores[k] for k in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4")},
                "examples": self.split(split).num_rows}

    def compute_final_metrics(self, gathered, split):
        references = self._references(split)
        metrics = self._paper_scores(references, self._hypotheses(gathered, split))
        for name, hypotheses in self.yardsticks(split).items():
            metrics.update({f"{name}/{k}": v for k, v in self._paper_scores(
                references, hypotheses).items()})
        metrics.update(examples=self.split(split).num_rows,
                       beam_width=int(self.params["beam_width"]))
        return metrics

    def _paper_scores(self, references, hypotheses) -> dict[str, float | None]:
        scores = self.scorer.score(references, hypotheses)
        return {k: scores[k] for k in _PAPER_METRICS}

    @functools.cached_property
    def _most_frequent_caption(self) -> str:
        """The most frequent normalised training caption (one batched tokenisation)."""
        tokenized = captions.CAPTION_TOKENIZER.tokenize_py(
            captions.all_captions(self.split("train")))
        return collections.Counter(" ".join(words) for words in tokenized).most_common(1)[0][0]

    def yardsticks(self, split: str) -> dict[str, dict[str, str]]:
        """Captions that need no model: the most frequent training caption for every image,
        and the first caption of the nearest training image (cosine of mean features)."""
        train = self.split("train")
        frequent = self._most_frequent_caption
        ids = self.split(split).columns["image_id"]

        def unit(x):
            x = np.asarray(x, np.float32).mean(axis=1)
            return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

        nearest = (unit(self.features[split]) @ unit(self.features["train"]).T).argmax(axis=1)
        return {"frequent_caption": {i: frequent for i in ids},
                "nearest_image": {i: train.columns["captions"][j][0]
                                  for i, j in zip(ids, nearest)}}

    # ----------------------------------------------------------------------------- pictures
    def _draw(self, model, features, image_paths, paths) -> list[dict[str, Any]]:
        tokens, attention = self._decode(model, features, int(self.params["beam_width"]))
        grid = encoders.get_spec(self.params["encoder"]).grid
        results = []
        for n, path in enumerate(paths):
            words = self.words(tokens[n])
            steps = np.asarray(attention[n])  # <end> has a step too, if it was produced
            plots.plot_caption_attention(image_paths[n], (words + [captions.END])[:len(steps)],
                                         steps, grid, path)
            results.append({"caption": " ".join(words), "files": [path]})
        return results

    def write_artifacts(self, model, split, gathered, directory) -> list[str]:
        if split != "test":
            return []
        n = min(PICTURES, self.split(split).num_rows)
        paths = [os.path.join(directory, "attention", f"test_{i}.png") for i in range(n)]
        self._draw(model, np.asarray(self.features[split][:n], np.float32),
                   self.split(split).columns["image_path"][:n], paths)
        return paths

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
            tokens, _ = self._decode(model, encoder(pictures), int(self.params["beam_width"]))
            before_end = tf.math.cumsum(tf.cast(tf.equal(tokens, end), tf.int32), axis=1,
                                        exclusive=True) == 0
            keep = before_end & tf.not_equal(tokens, end) & tf.not_equal(tokens, 0)
            caption = tf.strings.reduce_join(
                tf.where(keep, tf.gather(words, tokens) + " ", ""), axis=1)
            return {"caption": tf.strings.strip(caption), "tokens": tokens}

        return serve, [tf.TensorSpec([None], tf.string, name="image")], []

    @functools.cached_property
    def encoder(self) -> keras.Model:
        return encoders.build_encoder(self.params["encoder"], self.params["encoder_weights"])

    def predict(self, model, inputs: Sequence[str], output_dir: str) -> list[dict[str, Any]]:
        """Captions of image files (JPEG), with a picture of each word's attention."""
        spec = encoders.get_spec(self.params["encoder"])
        pictures = np.stack([images.load_image(path, spec.image_size, spec.preprocess)
                             for path in inputs])
        features = self.encoder.predict_on_batch(pictures)
        paths = [os.path.join(output_dir, f"caption_{i}.png") for i in range(len(inputs))]
        return self._draw(model, features, list(inputs), paths)
