"""Xu et al. 2015: the decoder against numpy (Eq. 1-7, β, init MLPs), the doubly stochastic
term, REINFORCE against the exact gradient, padding, the feature cache, learning on Flickr8k."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from papers import registry
from papers.xu2015 import encoders
from papers.xu2015.model import CaptionDecoder
from training import loop
from training.task import RunEnv

RNG = np.random.default_rng(21)
VOCAB, D, L, M, N, A = 9, 6, 4, 5, 7, 3
START = 2


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _decoder(kind="soft", **kwargs):
    model = CaptionDecoder(kind, VOCAB, D, embedding_dim=M, units=N, attention_units=A,
                           dropout=0.0, start_id=START, **kwargs)
    for w in model.weights:  # non-zero biases so that every term is checked
        if w.trainable:
            w.assign(RNG.normal(size=w.shape).astype("float32") * 0.5)
    return model


FEATURES = RNG.normal(size=(2, L, D)).astype("float32")
CAPTION_IN = np.array([[START, 5, 6, 7, 0], [START, 4, 0, 0, 0]], np.int32)
CAPTION_OUT = np.array([[5, 6, 7, 3, 0], [4, 3, 0, 0, 0]], np.int32)


def _w(layer):
    return {w.path.split("/")[-1]: w.numpy() for w in layer.weights}


def numpy_soft(model, features, tokens):
    """§3.1.2 and capgen.py in numpy for one image: logits and α of every step."""
    E = model.embedding.embeddings.numpy()
    att = _w(model.attention)
    mean = features.mean(0)
    h = np.tanh(mean @ _w(model.init_h)["kernel"] + _w(model.init_h)["bias"])
    c = np.tanh(mean @ _w(model.init_c)["kernel"] + _w(model.init_c)["bias"])
    cell = _w(model.cell)
    logits, alphas = [], []
    for token in tokens:
        e = np.zeros(M) if token == START else E[token]
        scores = np.tanh(features @ att["key_kernel"] + att["key_bias"]
                         + h @ att["query_kernel"]) @ att["score_kernel"][:, 0] \
            + att["score_bias"][0]                                             # Eq. 4
        alpha = np.exp(scores - scores.max())
        alpha /= alpha.sum()                                                   # Eq. 5
        beta = _sigmoid(h @ _w(model.selector)["kernel"] + _w(model.selector)["bias"])
        z = beta * (alpha @ features)                                          # Eq. 6, β
        gates = np.concatenate([e, z]) @ cell["kernel"] + h @ cell["recurrent_kernel"] \
            + cell["bias"]
        i, f, g, o = np.split(gates, 4)                                        # Keras order
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)                         # Eq. 1-2
        h = _sigmoid(o) * np.tanh(c)                                           # Eq. 3
        deep = np.tanh(e + h @ _w(model.out_h)["kernel"] + _w(model.out_h)["bias"]
                       + z @ _w(model.out_z)["kernel"] + _w(model.out_z)["bias"])   # Eq. 7
        logits.append(deep @ _w(model.out)["kernel"] + _w(model.out)["bias"])
        alphas.append(alpha)
    return np.stack(logits), np.stack(alphas)


def test_the_soft_decoder_equals_the_numpy_transcription():
    model = _decoder("soft")
    out = model({"features": FEATURES, "caption_in": CAPTION_IN})
    for n in range(2):
        real = int((CAPTION_IN[n] > 0).sum())
        logits, alphas = numpy_soft(model, FEATURES[n], CAPTION_IN[n, :real])
        np.testing.assert_allclose(out["logits"][n, :real], logits, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out["attention"][n, :real], alphas, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["attention"].numpy().sum(-1)[CAPTION_IN > 0], 1.0,
                               rtol=1e-6)


def test_decoding_steps_equal_teacher_forcing_and_padding_changes_nothing():
    for kind in ("soft", "hard", "gru"):
        model = _decoder(kind)
        out = model({"features": FEATURES, "caption_in": CAPTION_IN})
        padded = model({"features": FEATURES,
                        "caption_in": np.pad(CAPTION_IN, [[0, 0], [0, 3]])})
        real = CAPTION_IN > 0
        np.testing.assert_allclose(padded["logits"][:, :5][real], out["logits"][real],
                                   atol=1e-6)
        np.testing.assert_allclose(padded["attention"][:, :5][real], out["attention"][real],
                                   atol=1e-7)
        state, constants = model.start(FEATURES)
        for t in range(3):
            logits, state, extras = model.decode_step(CAPTION_IN[:, t], state, constants)
            np.testing.assert_allclose(logits[0], out["logits"][0, t], rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(extras["attention"][0], out["attention"][0, t],
                                       atol=1e-6)


def _task(decoder="soft", tmp_path=None, data_dir=None, **overrides):
    exp = registry.get(f"xu2015/flickr8k_{decoder}")
    return exp.make_task(exp.params_with_overrides(overrides), data_dir, str(tmp_path))


def test_the_doubly_stochastic_term_counts_only_real_steps(tmp_path):
    task = _task("soft", tmp_path, attention_penalty=0.7)
    logits = RNG.normal(size=(2, 5, VOCAB)).astype("float32")
    attention = RNG.dirichlet(np.ones(L), size=(2, 5)).astype("float32")
    loss = task.loss(None, CAPTION_OUT, {"logits": logits, "attention": attention}).numpy()
    for n in range(2):
        real = CAPTION_OUT[n] > 0
        log_p = logits[n] - np.log(np.exp(logits[n]).sum(-1, keepdims=True))
        nll = -log_p[np.arange(5), CAPTION_OUT[n]][real].sum()
        penalty = ((1.0 - attention[n][real].sum(0)) ** 2).sum()               # Eq. 14
        np.testing.assert_allclose(loss[n], nll + 0.7 * penalty, rtol=1e-5)


def test_the_reinforce_estimator_s_expectation_is_the_exact_gradient(tmp_path):
    """§4.1 on 2 steps × 4 locations: Σ_s p(s) ∇(surrogate loss with sample s) equals
    -∇ Σ_s p(s) log p(y | s) (Eq. 10-11), computed by enumerating the 16 location sequences;
    the baseline changes nothing in expectation."""
    model = _decoder("hard")
    task = _task("hard", tmp_path, attention_penalty=0.0, entropy_weight=0.0,
                 reinforce_weight=1.0)
    task._baseline = model.baseline
    model.baseline.assign(-3.0)
    features, caption_in = FEATURES[:1], CAPTION_IN[:1, :2]
    caption_out = np.array([[5, 6]], np.int32)
    variables = model.trainable_variables

    def run(sequence):
        gumbel = np.full((1, 2, L), -1e9, "float32")
        gumbel[0, [0, 1], list(sequence)] = 0.0
        with tf.GradientTape(persistent=True) as tape:
            outputs = model({"features": features, "caption_in": caption_in,
                             "gumbel": gumbel, "sampled": np.array([True])}, training=True)
            log_p_s = tf.reduce_sum(outputs["log_sample_prob"])
            log_p_y = -tf.reduce_sum(tf.keras.losses.sparse_categorical_crossentropy(
                caption_out, outputs["logits"], from_logits=True))
            model.baseline.assign(-3.0)  # the loss moves it; every sample sees the same one
            surrogate = tf.reduce_sum(task.loss(None, caption_out, outputs))
            exact_term = tf.exp(log_p_s) * log_p_y                 # p(s) log p(y|s)
        dense = lambda grads: [tf.convert_to_tensor(g) for g in grads]  # noqa: E731
        return (float(tf.exp(log_p_s)), dense(tape.gradient(surrogate, variables)),
                dense(tape.gradient(exact_term, variables)))

    expected = [tf.zeros_like(v) for v in variables]
    exact = [tf.zeros_like(v) for v in variables]
    total = 0.0
    for sequence in itertools.product(range(L), repeat=2):
        p, surrogate, term = run(sequence)
        total += p
        expected = [e + p * g for e, g in zip(expected, surrogate)]
        exact = [e - g for e, g in zip(exact, term)]
    np.testing.assert_allclose(total, 1.0, rtol=1e-5)
    for e, x, v in zip(expected, exact, variables):
        np.testing.assert_allclose(e, x, rtol=2e-3, atol=1e-5, err_msg=v.path)
    assert any(np.abs(x.numpy()).max() > 1e-3 for x in exact)


def test_features_are_cached_by_encoder_and_images(tmp_path, monkeypatch, data_dir):
    calls = []

    def fake(name, weights, paths, **kwargs):
        calls.append((name, len(paths)))
        return np.zeros((len(paths), 4, 3), np.float16)

    monkeypatch.setattr(encoders, "extract_features", fake)
    env = RunEnv(cache_dir=str(tmp_path / "cache"))
    _task("soft", tmp_path / "a", data_dir).prepare(env)
    assert [n for _, n in calls] == [753, 113, 125]
    _task("soft", tmp_path / "b", data_dir).prepare(env)  # another run, same features
    assert len(calls) == 3
    monkeypatch.setattr(encoders, "encoder_key", lambda name, weights: {"encoder": name})
    _task("soft", tmp_path / "c", data_dir, encoder="vgg19").prepare(env)
    assert calls[3:] == [("vgg19", 753), ("vgg19", 113), ("vgg19", 125)]


@pytest.fixture(scope="module")
def short_run(data_dir, cache_dir, tmp_path_factory):
    """Soft attention on the staged Flickr8k images for a few epochs (real features)."""
    exp = registry.get("xu2015/flickr8k_soft")
    params = exp.params_with_overrides("epochs=6,patience=0,units=256,embedding_dim=128,"
                                       "attention_units=128,beam_width=3")
    config = loop.RunConfig(model_dir=str(tmp_path_factory.mktemp("xu") / "soft"),
                            data_dir=data_dir, verbose=False, cache_dir=cache_dir)
    return loop.train(exp, params, config)


@pytest.mark.slow
def test_a_short_training_learns_and_beats_the_constant_caption(short_run):
    results = short_run.results
    losses = [loss for _, loss in short_run.train_losses]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    dev = results["metrics"]["dev"]
    assert dev["BLEU-1"] > dev["frequent_caption/BLEU-1"], dev
    assert dev["METEOR"] is not None and dev["examples"] == 113
    pictures = results["artifacts"]
    assert len(pictures) == 4 and all(open(p, "rb").read(4) == b"\x89PNG" for p in pictures)


@pytest.mark.slow
def test_predict_captions_an_image_and_draws_its_attention(short_run, data_dir, tmp_path):
    task, model = short_run.task, short_run.model
    image = task.split("test").columns["image_path"][0]
    out = task.predict(model, [image], str(tmp_path))
    assert out[0]["caption"] and open(out[0]["files"][0], "rb").read(4) == b"\x89PNG"
