"""Xu et al. 2015: the decoder against numpy (Eq. 1-7, β, init MLPs), the doubly stochastic
term, REINFORCE against the exact gradient, padding, the feature cache, learning on Flickr8k."""

import itertools
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from datasets import captions
from papers import registry
from papers.xu2015 import caption_records, encoders
from papers.xu2015.model import CaptionDecoder
from training import loop, run_dir
from training.run import start
from training.task import RunEnv

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


def numpy_soft(model, features, tokens, locations=None):
    """§3.1.2 and capgen.py in numpy for one image: logits and α of every step; with
    ``locations`` (one per step) the hard attention's context ``β a_{s_t}`` instead (§4.1)."""
    E = model.embedding.embeddings.numpy()
    att = _w(model.attention)
    mean = features.mean(0)
    h = np.tanh(mean @ _w(model.init_h)["kernel"] + _w(model.init_h)["bias"])
    c = np.tanh(mean @ _w(model.init_c)["kernel"] + _w(model.init_c)["bias"])
    cell = _w(model.cell)
    logits, alphas = [], []
    for t, token in enumerate(tokens):
        e = np.zeros(M) if token == START else E[token]
        scores = np.tanh(features @ att["key_kernel"] + att["key_bias"]
                         + h @ att["query_kernel"]) @ att["score_kernel"][:, 0] \
            + att["score_bias"][0]                                             # Eq. 4
        alpha = np.exp(scores - scores.max())
        alpha /= alpha.sum()                                                   # Eq. 5
        beta = _sigmoid(h @ _w(model.selector)["kernel"] + _w(model.selector)["bias"])
        chosen = alpha if locations is None else np.eye(len(features))[locations[t]]
        z = beta * (chosen @ features)                                         # Eq. 6, 8, β
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


def _forced(locations, batch=1):
    """Hard-attention draws that pick ``locations[t]`` at step t, for every image sampling."""
    gumbel = np.full((batch, len(locations), L), -1e9, "float32")
    gumbel[:, np.arange(len(locations)), list(locations)] = 0.0
    return gumbel, np.ones(batch, bool)


def test_hard_attention_reads_the_sampled_location_and_soft_the_expectation():
    model = _decoder("hard")
    tokens = CAPTION_IN[:1, :4]
    out = model({"features": FEATURES[:1], "caption_in": tokens}, training=True,
                draws=_forced([2, 0, 3, 3]))
    logits, alphas = numpy_soft(model, FEATURES[0], tokens[0], locations=[2, 0, 3, 3])
    np.testing.assert_allclose(out["logits"][0], logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["log_sample_prob"][0],
                               np.log(alphas[np.arange(4), [2, 0, 3, 3]]), rtol=1e-4)
    np.testing.assert_allclose(out["entropy"][0], -(alphas * np.log(alphas)).sum(-1),
                               rtol=1e-4)
    # an image whose coin says "expected context" is the soft decoder
    gumbel, _ = _forced([2, 0, 3, 3])
    soft = model({"features": FEATURES[:1], "caption_in": tokens}, training=True,
                 draws=(gumbel, np.zeros(1, bool)))
    np.testing.assert_allclose(soft["logits"][0], numpy_soft(model, FEATURES[0], tokens[0])[0],
                               rtol=1e-4, atol=1e-5)


def test_the_coin_is_fair_per_image_or_per_batch():
    per_image = np.stack([_decoder("hard", coin="image", seed=s).draw(400, 2, L)[1].numpy()
                          for s in range(3)])
    assert 0.43 < per_image.mean() < 0.57 and per_image.min() != per_image.max()
    per_batch = np.stack([_decoder("hard", coin="batch", seed=s).draw(50, 2, L)[1].numpy()
                          for s in range(40)])
    assert all(len(set(row)) == 1 for row in per_batch.tolist())
    assert 0.2 < per_batch[:, 0].mean() < 0.8
    with pytest.raises(ValueError, match="unknown coin"):
        _decoder("hard", coin="caption")


def test_dropout_falls_on_h_and_on_the_deep_output():
    model = CaptionDecoder("soft", VOCAB, D, embedding_dim=M, units=N, attention_units=A,
                           dropout=0.5, start_id=START)
    seen = []
    original = model.drop.call
    model.drop.call = lambda x, training=False: (seen.append((x.shape[-1], training)),
                                                 original(x, training=training))[1]
    model({"features": FEATURES, "caption_in": CAPTION_IN}, training=True)
    assert sorted(seen) == [(M, True), (N, True)]   # tanh(E y + L_h h + L_z z) and h_t


def test_the_doubly_stochastic_term_counts_only_real_steps_and_only_soft(tmp_path):
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
        hard = _task("hard", tmp_path, attention_penalty=0.7).loss(
            None, CAPTION_OUT, {"logits": logits, "attention": attention}).numpy()
        np.testing.assert_allclose(hard[n], nll, rtol=1e-5)


def _hard_outputs(batch=2, steps=5):
    return {"logits": RNG.normal(size=(batch, steps, VOCAB)).astype("float32"),
            "attention": RNG.dirichlet(np.ones(L), size=(batch, steps)).astype("float32"),
            "log_sample_prob": -RNG.uniform(0.1, 2, size=(batch, steps)).astype("float32"),
            "entropy": RNG.uniform(0.1, 1.3, size=(batch, steps)).astype("float32"),
            "sampled": np.array([1.0, 0.0], "float32")}


@pytest.mark.parametrize("estimator", ["paper", "capgen"])
def test_the_reinforce_surrogate_is_eq_12_or_capgen_s(tmp_path, estimator):
    """Value of the per-caption surrogate, -λ_r·B'·sampled·(r - b)·Σ_t log α(s_t) - λ_e·B'·Σ H,
    with r the caption's log-likelihood (paper) or its mean over the padded length (capgen,
    whose gradients are summed over the batch: B' = B)."""
    weight, entropy_weight, batch = (1.0, 0.002, 1) if estimator == "paper" else (0.1, 0.002, 8)
    task = _task("hard", tmp_path, estimator=estimator, reinforce_weight=weight,
                 entropy_weight=entropy_weight)
    outputs = _hard_outputs()
    nll, real = task._nll(CAPTION_OUT, outputs)
    reward, surrogate = task._reinforce(nll, real, outputs, -4.0, global_batch_size=batch)
    real = (CAPTION_OUT > 0).astype("float32")
    logits = outputs["logits"]
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    log_p_y = np.array([(log_softmax[n, np.arange(5), CAPTION_OUT[n]] * real[n]).sum()
                        for n in range(2)])
    expected_reward = log_p_y if estimator == "paper" else log_p_y / 5   # 5: padded length
    np.testing.assert_allclose(reward, expected_reward, rtol=1e-5)
    expected = (-weight * batch * outputs["sampled"] * (expected_reward + 4.0)
                * (outputs["log_sample_prob"] * real).sum(-1)
                - entropy_weight * batch * (outputs["entropy"] * real).sum(-1))
    np.testing.assert_allclose(surrogate, expected, rtol=1e-5)
def test_the_reinforce_estimator_s_expectation_is_the_exact_gradient(tmp_path):
    """§4.1 on 2 steps × 4 locations: Σ_s p(s) ∇(NLL + surrogate with sample s) equals
    -∇ Σ_s p(s) log p(y | s) (Eq. 10-11), computed by enumerating the 16 location sequences;
    the baseline changes nothing in expectation."""
    model = _decoder("hard")
    task = _task("hard", tmp_path, entropy_weight=0.0, reinforce_weight=1.0)
    features, caption_in = FEATURES[:1], CAPTION_IN[:1, :2]
    caption_out = np.array([[5, 6]], np.int32)
    variables = model.trainable_variables

    def run(sequence):
        with tf.GradientTape(persistent=True) as tape:
            outputs = model({"features": features, "caption_in": caption_in}, training=True,
                            draws=_forced(sequence))
            nll, real = task._nll(caption_out, outputs)
            _, surrogate = task._reinforce(nll, real, outputs, -3.0, global_batch_size=1)
            total = tf.reduce_sum(nll + surrogate)
            log_p_s = tf.reduce_sum(outputs["log_sample_prob"])
            exact_term = tf.exp(log_p_s) * -tf.reduce_sum(nll)      # p(s) log p(y|s)
        dense = lambda grads: [tf.convert_to_tensor(g) for g in grads]  # noqa: E731
        return (float(tf.exp(log_p_s)), dense(tape.gradient(total, variables)),
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


def test_the_hard_train_step_moves_the_baseline_to_the_mean_reward(tmp_path):
    """b ← 0.9 b + 0.1 mean log p(y | s̃) over the batch, after one REINFORCE step."""
    model = _decoder("hard")
    task = _task("hard", tmp_path)
    draws = _forced([1, 3, 0, 2, 2], batch=2)
    model.draw = lambda batch, steps, locations: draws
    model.baseline.assign(-2.5)
    inputs = ({"features": FEATURES, "caption_in": CAPTION_IN}, CAPTION_OUT,
              np.ones(2, "float32"))
    nll, _ = task._nll(CAPTION_OUT, model(inputs[0], training=True, draws=draws))
    optimizer = tf.keras.optimizers.SGD(0.0)
    task.train_step(inputs, model, optimizer, global_batch_size=2, clip_norm=None)
    np.testing.assert_allclose(model.baseline.numpy(), 0.9 * -2.5 + 0.1 * -np.mean(nll),
                               rtol=1e-5)


def _data_copy(data_dir, tmp_path):
    """A data dir whose Flickr8k images are links to the real ones (cheap to alter one)."""
    copy = tmp_path / "data"
    (copy / "flickr8k" / "images").mkdir(parents=True)
    os.symlink(os.path.join(data_dir, "flickr8k", "text"), copy / "flickr8k" / "text")
    folder = os.path.join(data_dir, "flickr8k", "images")
    for name in os.listdir(folder):
        os.symlink(os.path.join(folder, name), copy / "flickr8k" / "images" / name)
    return copy


def test_features_are_cached_by_encoder_and_image_bytes_and_test_is_read_last(
        tmp_path, monkeypatch, data_dir):
    calls = []

    def fake(name, weights, paths, **kwargs):
        calls.append((name, len(paths)))
        return np.zeros((len(paths), 4, 3), np.float16)

    monkeypatch.setattr(encoders, "extract_features", fake)
    env = RunEnv(cache_dir=str(tmp_path / "cache"))
    data = _data_copy(data_dir, tmp_path)
    task = _task("soft", tmp_path / "a", str(data))
    task.prepare(env)
    assert [n for _, n in calls] == [753, 113] and "test" not in task._loaded_splits
    task.yardsticks("dev")
    assert "test" not in task._loaded_splits, "a dev yardstick read the test split"
    assert task.features_of("test").shape[0] == 125 and len(calls) == 3
    _task("soft", tmp_path / "b", str(data)).prepare(env)   # another run, same features
    assert len(calls) == 3
    # one dev image's bytes change under the same name: its split is computed again
    dev_image = task.split("dev").columns["image_path"][0]
    os.remove(dev_image)
    with open(dev_image, "wb") as f:
        f.write(open(task.split("dev").columns["image_path"][1], "rb").read())
    again = _task("soft", tmp_path / "c", str(data))
    again.prepare(env)
    assert [n for _, n in calls[3:]] == [113]
    assert again.data_identity()["dev"] != task.data_identity()["dev"]
    assert again.data_identity()["train"] == task.data_identity()["train"]
    monkeypatch.setattr(encoders, "encoder_key", lambda name, weights: {"encoder": name})
    _task("soft", tmp_path / "d", str(data), encoder="efficientnet_lite0").prepare(env)
    assert calls[4:] == [("efficientnet_lite0", 753), ("efficientnet_lite0", 113)]


def test_a_training_subset_is_nested_and_sets_the_vocabulary(tmp_path, data_dir, monkeypatch):
    monkeypatch.setattr(encoders, "extract_features",
                        lambda name, weights, paths, **kw: np.zeros((len(paths), 4, 3),
                                                                    np.float16))
    env = RunEnv(cache_dir=str(tmp_path / "cache"))
    small, large = (_task("soft", tmp_path / str(n), data_dir, train_images=n) for n in (50, 300))
    for task in (small, large):
        task.prepare(env)
    assert set(small.column("train", "image_id")) < set(large.column("train", "image_id"))
    assert small.num_examples("train") == 250 and small.features_of("train").shape[0] == 50
    words = {w for caps in small.column("train", "captions") for c in caps
             for w in captions.CAPTION_TOKENIZER.tokenize_py([c])[0]}
    assert set(small.vocab.tokens[4:]) == words


@pytest.fixture(scope="module")
def short_run(data_dir, cache_dir, tmp_path_factory):
    """Soft attention on the staged Flickr8k images for a few epochs (real features)."""
    exp = registry.get("xu2015/flickr8k_soft")
    # Adam at 1e-3 (the paper's optimiser for Flickr30k and COCO): capgen's RMSProp at 1e-4
    # needs more than these 348 steps before its captions follow the image
    params = exp.params_with_overrides("encoder=efficientnet_lite0,epochs=6,patience=0,"
                                       "optimizer=adam,learning_rate=1e-3,"
                                       "units=256,embedding_dim=128,attention_units=128,"
                                       "beam_width=3")
    config = loop.RunConfig(model_dir=str(tmp_path_factory.mktemp("xu") / "soft"),
                            data_dir=data_dir, verbose=False, cache_dir=cache_dir)
    return loop.train(exp, params, config)


@pytest.mark.slow
def test_a_short_training_learns_and_beats_the_constant_caption(short_run):
    results = short_run.results
    losses = [loss for _, loss in short_run.train_losses]
    # the doubly stochastic term has a floor of (L - T)² / L ≈ 28 here: the NLL falls faster
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])
    dev, test = results["metrics"]["dev"], results["metrics"]["test"]
    # one caption for every image (train's most frequent) is the bar: CIDEr weighs n-grams by
    # how rare they are across images, so it rewards captions that follow the image
    for metric in ("BLEU-1", "BLEU-4", "CIDEr"):
        assert dev[metric] > dev[f"frequent_caption/{metric}"], (metric, dev)
    assert dev["METEOR"] is not None and dev["examples"] == 113
    for metric in ("BLEU-1", "BLEU-4", "METEOR", "CIDEr"):
        low, high = test[f"{metric}/ci95"]
        assert low <= test[metric] <= high and low < high, (metric, low, high)
    assert 0 < test["attention/entropy_fraction"] <= 1 and test["attention/words"] > 0
    files = results["artifacts"]
    pictures = [p for p in files if p.endswith(".png")]
    assert len(pictures) == 4 and all(open(p, "rb").read(4) == b"\x89PNG" for p in pictures)
    records = caption_records.read_captions(
        next(p for p in files if p.endswith("captions_test.jsonl")))
    assert len(records) == 125 and records[0]["references"]


@pytest.mark.slow
def test_a_run_rescores_from_its_captions_file_alone(short_run, tmp_path):
    """The stored captions, moved away from the run and the data, give the run's numbers."""
    path = tmp_path / "captions_test.jsonl"
    path.write_bytes(open(os.path.join(short_run.results["config"]["model_dir"],
                                       "captions_test.jsonl"), "rb").read())
    out = subprocess.run([sys.executable, "-m", "papers.xu2015.rescore", f"--captions={path}",
                          "--resamples=50"], capture_output=True, text=True, check=True,
                         cwd=REPO, env={**os.environ, "KERAS_PAPERS_DATA_DIR": "/nonexistent"})
    rescored = json.loads(out.stdout)
    test = short_run.results["metrics"]["test"]
    for metric in ("BLEU-4", "METEOR", "CIDEr", "ROUGE-L"):
        assert rescored["metrics"][metric] == pytest.approx(test[metric], abs=1e-9), metric
    (tmp_path / "bad.jsonl").write_text('{"image": "a.jpg"}\n')
    bad = subprocess.run([sys.executable, "-m", "papers.xu2015.rescore",
                          f"--captions={tmp_path / 'bad.jsonl'}"], capture_output=True,
                         text=True, cwd=REPO)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "bad.jsonl" in bad.stderr and "line 1" in bad.stderr


def test_two_runs_captions_compare_on_the_same_resamples(data_dir, tmp_path):
    """``rescore --against``: both scores, their difference and its paired interval; a held-out
    human caption beats another image's on every metric; other images are one clear line."""
    from datasets.flickr8k import read_captions

    captions, _ = read_captions(os.path.join(data_dir, "flickr8k", "text",
                                             "Flickr8k.token.txt"))
    names = sorted(captions)[:40]

    def write(path, caption_of):
        caption_records.write_captions(str(path), [
            {"image": k, "caption": caption_of(i, k), "tokens": [3], "log_probability": -1.0,
             "references": captions[k][1:]} for i, k in enumerate(names)])

    write(tmp_path / "human.jsonl", lambda i, k: captions[k][0])
    write(tmp_path / "other.jsonl", lambda i, k: captions[names[(i + 1) % len(names)]][0])
    out = subprocess.run([sys.executable, "-m", "papers.xu2015.rescore",
                          f"--captions={tmp_path / 'human.jsonl'}",
                          f"--against={tmp_path / 'other.jsonl'}", "--resamples=40"],
                         capture_output=True, text=True, check=True, cwd=REPO)
    result = json.loads(out.stdout)
    assert result["images"] == 40 and set(result["metrics"]) == {
        "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "CIDEr", "ROUGE-L"}
    for name, m in result["metrics"].items():
        assert m["difference"] == pytest.approx(m["captions"] - m["against"]), name
        low, high = m["difference_ci95"]
        assert 0 < low <= m["difference"] <= high and m["captions_higher"] == 1.0, name
    names.pop()
    write(tmp_path / "fewer.jsonl", lambda i, k: captions[k][0])
    bad = subprocess.run([sys.executable, "-m", "papers.xu2015.rescore",
                          f"--captions={tmp_path / 'human.jsonl'}",
                          f"--against={tmp_path / 'fewer.jsonl'}"], capture_output=True,
                         text=True, cwd=REPO)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "fewer.jsonl is not a captions file of the same images" in bad.stderr


@pytest.mark.slow
def test_predict_captions_an_image_and_draws_its_attention(short_run, data_dir, tmp_path):
    task, model = short_run.task, short_run.model
    image = task.split("test").columns["image_path"][0]
    out = task.predict(model, [image], str(tmp_path))
    assert out[0]["caption"] and open(out[0]["files"][0], "rb").read(4) == b"\x89PNG"


def test_a_finished_run_restarted_on_a_changed_image_is_refused(tmp_path, monkeypatch, data_dir):
    """One dev image's bytes change under the same name: the run's data identity changes, so
    the restart is refused with one line per differing key, as for a changed SST line. (The
    run is set up, not trained: a run's identity is recorded when it starts and compared on
    every restart, finished or not.)"""
    monkeypatch.setattr(encoders, "extract_features",
                        lambda name, weights, paths, **kw: np.zeros((len(paths), 4, 3),
                                                                    np.float16))
    monkeypatch.setattr(encoders, "encoder_key", lambda name, weights: {"encoder": name})
    data = _data_copy(data_dir, tmp_path)
    exp = registry.get("xu2015/flickr8k_soft")
    params = exp.params_with_overrides(
        "train_images=20,train_steps=2,batch_size=10,units=8,embedding_dim=8,"
        "attention_units=8")
    config = loop.RunConfig(model_dir=str(tmp_path / "run"), data_dir=str(data), verbose=False,
                            cache_dir=str(tmp_path / "cache"))
    start(exp, params, config, tf.distribute.get_strategy())
    assert (tmp_path / "run" / "config.json").exists()
    folder = data / "flickr8k" / "images"
    first, second = sorted(os.listdir(folder))[:2]
    dev = _task("soft", tmp_path / "run", str(data)).split("dev").columns["image_path"][0]
    os.remove(dev)
    with open(dev, "wb") as f:
        f.write(open(folder / (second if os.path.basename(dev) == first else first),
                     "rb").read())
    with pytest.raises(run_dir.RunDirError) as refused:
        loop.train(exp, params, config)
    lines = str(refused.value).splitlines()
    assert lines[0] == (f"{tmp_path / 'run'} holds another run (config.json); these settings "
                        "differ:")
    assert len(lines) == 3 and re.fullmatch(r"  data\.dev: '[0-9a-f]{64}' → '[0-9a-f]{64}'",
                                            lines[1]), lines


def test_the_learning_curve_groups_runs_by_size_with_their_updates_and_draws_a_png(tmp_path):
    from papers.xu2015 import learning_curve

    def run(size, bleu, step, row="flickr8k_soft", status="ok"):
        test = {"BLEU-4": bleu, "BLEU-4/ci95": [bleu - 1, bleu + 1], "METEOR": 15.0,
                "CIDEr": 30.0, "attention/entropy_fraction": 0.98}
        return {"experiment": f"xu2015/{row}", "status": status, "best": {"step": step},
                "params": {"train_images": size}, "metrics": {"test": test}}

    runs = [run(0, 14.0, 1872), run(753, 13.0, 1218), run(0, 12.0, 1404),
            run(0, 99.0, 5, status="failed"), run(0, 50.0, 5, row="flickr8k_hard")]
    curve = learning_curve.points(runs, "flickr8k_soft")
    assert list(curve) == [753, 6000]  # 0 is every training image
    assert [(m["BLEU-4"], m["updates"]) for m in curve[6000]] == [(14.0, 1872), (12.0, 1404)]
    lines = learning_curve.table(curve).splitlines()
    assert lines[2].startswith("| 753 | 1 | 13.00 (12.0–14.0) |") and lines[2].endswith("| 1,218 |")
    assert "| 6,000 | 2 | 13.00 ± 1.41 (13.0–15.0; 11.0–13.0) |" in lines[3]
    assert lines[3].endswith("| 1,872, 1,404 |")
    path = tmp_path / "curve.png"
    learning_curve.plot(curve, 19.5, "soft", str(path))
    assert path.read_bytes()[:4] == b"\x89PNG"
