"""Tests of the RNN Encoder-Decoder (papers/cho2014/model.py) and the reversal task
(papers/cho2014/seq2seq.py), including one training run of about two minutes on a CPU."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from papers.cho2014.model import ConditionalGRUDecoder, RNNEncoderDecoder
from papers.cho2014.seq2seq import (END, HPARAMS, PAD, START, ReverseSeq2SeqTask,
                                    encode_examples, generate_splits)
from papers import registry
from training import loop

VOCAB = 11


def _small_model(**kwargs) -> RNNEncoderDecoder:
    keras.utils.set_random_seed(0)
    config = dict(embedding_dim=6, hidden_units=8, maxout_units=5, init_std=0.0)
    config.update(kwargs)
    return RNNEncoderDecoder(VOCAB, VOCAB, **config)


def _batch(seed=0, batch=4, source_length=7, target_length=6):
    rng = np.random.RandomState(seed)
    source = rng.randint(3, VOCAB, size=(batch, source_length)).astype("int32")
    source[1, 4:] = PAD
    source[3, 2:] = PAD
    targets = rng.randint(3, VOCAB, size=(batch, target_length)).astype("int32")
    targets[0, 3], targets[0, 4:] = END, PAD
    decoder_input = np.concatenate([np.full((batch, 1), START, np.int32), targets[:, :-1]], 1)
    return source, decoder_input, targets


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def test_decoder_equations_in_numpy():
    """Appendix A.1.2: h~' = tanh(W'e + r' ⊙ (U'h' + Cc)), gates with C_z c and C_r c."""
    rng = np.random.RandomState(1)
    batch, steps, e, u, c = 2, 4, 3, 5, 4
    layer = ConditionalGRUDecoder(u)
    layer.build((None, None, e), (None, u), (None, c))
    kernel, recurrent, context_kernel, bias = [rng.randn(*w.shape) * 0.7
                                               for w in layer.get_weights()]
    layer.set_weights([w.astype("float32")
                       for w in (kernel, recurrent, context_kernel, bias)])
    emb = rng.randn(batch, steps, e)
    h0 = rng.randn(batch, u)
    ctx = rng.randn(batch, c)

    def split(m):
        return [m[..., i * u:(i + 1) * u] for i in range(3)]

    (W_z, W_r, W), (U_z, U_r, U_h), (C_z, C_r, C), (b_z, b_r, b_h) = (
        split(kernel), split(recurrent), split(context_kernel), split(bias))
    expected = np.zeros((batch, steps, u))
    for n in range(batch):
        h = h0[n]
        for t in range(steps):
            x = emb[n, t]
            z = _sigmoid(x @ W_z + b_z + h @ U_z + ctx[n] @ C_z)
            r = _sigmoid(x @ W_r + b_r + h @ U_r + ctx[n] @ C_r)
            h_tilde = np.tanh(x @ W + b_h + r * (h @ U_h + ctx[n] @ C))
            h = z * h + (1.0 - z) * h_tilde
            expected[n, t] = h
    got = layer(emb.astype("float32"), h0.astype("float32"), ctx.astype("float32"))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_summary_and_output_layer_in_numpy():
    """c = tanh(V h_N), h'_0 = tanh(V' c) and softmax(G maxout(O_h h' + O_y y + O_c c))."""
    model = _small_model()
    source, decoder_input, _ = _batch()
    context, h0 = model.encode(source)
    h_last = model.encoder(model.source_embedding(source), mask=source != PAD)
    V, b_V = model.to_context.get_weights()
    V2, b_V2 = model.to_decoder_state.get_weights()
    np.testing.assert_allclose(context, np.tanh(h_last @ V + b_V), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h0, np.tanh(np.asarray(context) @ V2 + b_V2), rtol=1e-5,
                               atol=1e-6)

    logits = model({"source": source, "decoder_input": decoder_input}).numpy()
    not_start = (decoder_input != START)[..., None]
    states = model.decoder(model.target_embedding(decoder_input) * not_start, h0, context)
    O_h, b_O = model.output_h.get_weights()
    O_y = model.output_y.get_weights()[0]
    O_c = model.output_c.get_weights()[0]
    G, b_G = model.softmax.get_weights()
    s_prime = (np.asarray(states) @ O_h + b_O + O_y[decoder_input] * not_start
               + (np.asarray(context) @ O_c)[:, None])
    s = np.maximum(s_prime[..., 0::2], s_prime[..., 1::2])
    np.testing.assert_allclose(logits, s @ G + b_G, rtol=1e-4, atol=1e-5)


def test_softmax_factorisation():
    model = _small_model(softmax_rank=3)
    source, decoder_input, _ = _batch()
    assert model.softmax_r.kernel.shape == (5, 3)
    assert model({"source": source, "decoder_input": decoder_input}).shape == (4, 6, VOCAB)


def test_start_symbol_is_the_zero_vector():
    """e(y_0) = 0 (Appendix A.1.2): the <start> rows of the tables are never used."""
    model = _small_model()
    source, decoder_input, _ = _batch()
    features = {"source": source, "decoder_input": decoder_input}
    before = model(features).numpy()
    for table in (model.target_embedding.embeddings, model.output_y.embeddings):
        value = table.numpy()
        value[START] += 5.0
        table.assign(value)
    np.testing.assert_allclose(model(features), before, atol=1e-6)


def test_source_padding_is_ignored():
    model = _small_model()
    source, _, _ = _batch()
    longer = np.concatenate([source, np.zeros((4, 5), np.int32)], axis=1)
    for a, b in zip(model.encode(source), model.encode(longer)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_teacher_forcing_equals_stepwise_decoding():
    model = _small_model()
    source, decoder_input, _ = _batch()
    logits = model({"source": source, "decoder_input": decoder_input}).numpy()
    state, constants = model._decoding_state(source)
    for t in range(decoder_input.shape[1]):
        step_logits, state = model.decode_step(decoder_input[:, t], state, constants)
        np.testing.assert_allclose(step_logits, logits[:, t], rtol=1e-5, atol=1e-5)


def test_decoding_in_eager_tf_function_and_xla():
    model = _small_model()
    source, _, _ = _batch()
    greedy = model.greedy_decode(source, 9).numpy()
    beams = model.beam_search(source, 3, 9)
    assert greedy.shape == (4, 9) and beams.sequences.shape == (4, 3, 9)
    np.testing.assert_array_equal(
        tf.function(lambda s: model.greedy_decode(s, 9), jit_compile=True)(source), greedy)
    compiled = tf.function(lambda s: model.beam_search(s, 3, 9))(source)
    np.testing.assert_array_equal(compiled.sequences, beams.sequences)
    np.testing.assert_allclose(compiled.scores, beams.scores, rtol=1e-5)
    np.testing.assert_array_equal(model.beam_search(source, 1, 9).sequences[:, 0], greedy)


def test_model_save_and_load(tmp_path):
    model = _small_model(softmax_rank=3)
    source, decoder_input, _ = _batch()
    features = {"source": source, "decoder_input": decoder_input}
    path = str(tmp_path / "encdec.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, RNNEncoderDecoder)
    np.testing.assert_allclose(loaded(features), model(features), rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------------- data
def test_splits_are_deterministic_disjoint_and_reversed():
    sizes = {"train": 500, "dev": 100, "test": 100}
    splits = generate_splits(5, 3, 6, sizes, seed=7)
    assert splits == generate_splits(5, 3, 6, sizes, seed=7)
    assert splits != generate_splits(5, 3, 6, sizes, seed=8)
    sets = {name: set(seqs) for name, seqs in splits.items()}
    assert {name: len(s) for name, s in sets.items()} == sizes
    assert not (sets["train"] & sets["dev"] or sets["train"] & sets["test"]
                or sets["dev"] & sets["test"])
    assert {len(s) for s in splits["train"]} == {3, 4, 5, 6}

    arrays = encode_examples([(3, 4, 5), (7, 6, 5, 4, 3, 3)], max_length=6)
    np.testing.assert_array_equal(arrays["source"], [[3, 4, 5, 0, 0, 0], [7, 6, 5, 4, 3, 3]])
    np.testing.assert_array_equal(arrays["target"],
                                  [[5, 4, 3, END, 0, 0, 0], [3, 3, 4, 5, 6, 7, END]])
    np.testing.assert_array_equal(arrays["decoder_input"],
                                  [[START, 5, 4, 3, END, 0, 0], [START, 3, 3, 4, 5, 6, 7]])


def test_dataset_batches_and_eval_padding():
    params = dict(HPARAMS, train_examples=300, dev_examples=70, test_examples=50)
    task = ReverseSeq2SeqTask(params, None, "/tmp/unused")
    train = list(task.dataset("train", batch_size=32, training=True, seed=1, epoch=0))
    again = list(task.dataset("train", batch_size=32, training=True, seed=1, epoch=0))
    other = list(task.dataset("train", batch_size=32, training=True, seed=1, epoch=1))
    assert len(train) == 300 // 32
    np.testing.assert_array_equal(train[0][1], again[0][1])
    assert not np.array_equal(train[0][1], other[0][1])
    features, labels, weights = train[0]
    assert features["source"].shape == (32, 10) and labels.shape == (32, 11)
    dev = list(task.dataset("dev", batch_size=32, training=False, seed=0))
    assert len(dev) == 3
    weights = np.concatenate([w.numpy() for _, _, w in dev])
    assert weights.sum() == 70 and weights.shape == (96,)


def test_loss_is_the_summed_token_cross_entropy():
    task = ReverseSeq2SeqTask(HPARAMS, None, "/tmp/unused")
    rng = np.random.RandomState(2)
    labels = np.array([[5, 4, END, PAD], [3, END, PAD, PAD]], np.int32)
    logits = rng.randn(2, 4, 7).astype("float32")
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = [-(log_p[0, 0, 5] + log_p[0, 1, 4] + log_p[0, 2, END]),
                -(log_p[1, 0, 3] + log_p[1, 1, END])]
    np.testing.assert_allclose(task.loss(labels, logits), expected, rtol=1e-5)


def test_metrics():
    task = ReverseSeq2SeqTask(HPARAMS, None, "/tmp/unused")
    labels = np.array([[5, END, PAD], [4, 3, END], [3, END, PAD]])
    predictions = np.array([[5, END, PAD], [4, 4, END], [9, 9, 9]])
    metrics = task.compute_metrics({"predictions": predictions, "labels": labels,
                                    "weights": np.array([1.0, 1.0, 0.0]),
                                    "loss": np.array([1.0, 3.0, 100.0])})
    assert metrics["sequence_accuracy"] == 50.0
    assert metrics["token_accuracy"] == pytest.approx(100.0 * 4 / 5)
    assert metrics["loss"] == 2.0 and metrics["examples"] == 2


# ------------------------------------------------------------------------------- training
def _evaluate(task: ReverseSeq2SeqTask, model, split: str) -> dict:
    step = tf.function(lambda batch: task.eval_step(batch, model))
    gathered: dict[str, list] = {}
    for batch in task.dataset(split, batch_size=250, training=False, seed=0):
        for key, value in step(batch).items():
            gathered.setdefault(key, []).append(np.asarray(value))
    return task.compute_metrics({k: np.concatenate(v) for k, v in gathered.items()})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Trains experiment ``cho2014/reverse_seq2seq`` with the shared loop (XLA train step)."""
    experiment = registry.get("cho2014/reverse_seq2seq")
    config = loop.RunConfig(model_dir=str(tmp_path_factory.mktemp("seq2seq")),
                            seed=HPARAMS["seed"], jit_compile=True, verbose=False)
    result = loop.train(experiment, dict(HPARAMS), config)
    history = result.results
    print(f"trained {history['steps']} steps in {history['train_seconds']:.0f} s: "
          f"{history['metrics']}")
    assert history["metrics"]["test"]["sequence_accuracy"] > 95.0
    return result.task, result.model


def test_training_reaches_95_percent_exact_match_greedy(trained):
    task, model = trained
    metrics = _evaluate(task, model, "test")
    print("greedy test:", metrics)
    assert metrics["examples"] == HPARAMS["test_examples"]
    assert metrics["sequence_accuracy"] > 95.0


def test_beam_search_on_the_trained_model(trained):
    task, model = trained
    source = task.arrays("test")["source"]
    length = task.max_target_length

    greedy = np.asarray(model.greedy_decode(source, length))
    one = model.beam_search(source, 1, length)
    np.testing.assert_array_equal(one.sequences[:, 0], greedy)

    beam_task = ReverseSeq2SeqTask(dict(HPARAMS, beam_width=5), None, "/tmp/unused")
    greedy_metrics = _evaluate(task, model, "test")
    beam_metrics = _evaluate(beam_task, model, "test")
    print("beam 5 test:", beam_metrics)
    assert beam_metrics["sequence_accuracy"] >= greedy_metrics["sequence_accuracy"]

    # Scores are sorted and equal log p(y | x) computed by teacher forcing on the output.
    subset = source[:200]
    beams = model.beam_search(subset, 5, length)
    scores = np.asarray(beams.scores)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    np.testing.assert_allclose(scores, beams.log_probs, rtol=1e-6)
    sequences = np.asarray(beams.sequences).reshape(-1, length)
    rescored = model.sequence_log_prob(np.repeat(subset, 5, axis=0), sequences)
    np.testing.assert_allclose(np.reshape(rescored, (-1, 5)), scores, rtol=1e-4, atol=1e-3)
    ends = np.where(np.any(sequences == END, axis=1), np.argmax(sequences == END, axis=1) + 1,
                    length)
    np.testing.assert_array_equal(np.reshape(beams.lengths, (-1,)), ends)
    assert np.all(np.diff(np.asarray(model.beam_search(subset, 5, length, 1.0).scores),
                          axis=1) <= 1e-6)
