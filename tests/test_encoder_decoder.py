"""Tests of the RNN Encoder-Decoder (papers/cho2014/model.py) and the reversal task
(papers/cho2014/task.py), including one training run of about two minutes on a CPU."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from datasets.batching import DataRequest
from layers import decoding
from papers.cho2014.model import ConditionalGRUDecoder, RNNEncoderDecoder
from papers.cho2014.experiments import SEQ2SEQ_HPARAMS as HPARAMS
from papers.cho2014.task import (END, PAD, START, ReverseSeq2SeqTask, encode_examples,
                                    generate_splits)
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
    state, constants = model.start_decoding(source)
    for t in range(decoder_input.shape[1]):
        step_logits, state, extras = model.decode_step(decoder_input[:, t], state, constants)
        np.testing.assert_allclose(step_logits, logits[:, t], rtol=1e-5, atol=1e-5)
        assert extras == {}


def test_decoding_in_eager_tf_function_and_xla():
    model = _small_model()
    source, _, _ = _batch()
    task = ReverseSeq2SeqTask(dict(HPARAMS, max_length=8), None, "/tmp/unused")
    greedy = task.decode(model, source).numpy()
    beam = task.decode(model, source, 3).numpy()
    assert greedy.shape == beam.shape == (4, 9)
    for jit in (False, True):
        np.testing.assert_array_equal(
            tf.function(lambda s: task.decode(model, s), jit_compile=jit)(source), greedy)
        np.testing.assert_array_equal(
            tf.function(lambda s: task.decode(model, s, 3), jit_compile=jit)(source), beam)


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

    def epoch(n):
        return list(task.dataset(DataRequest("train", batch_size=32, training=True, seed=1,
                                             epoch=n)))

    train, again, other = epoch(0), epoch(0), epoch(1)
    assert len(train) == 300 // 32
    np.testing.assert_array_equal(train[0][1], again[0][1])
    assert not np.array_equal(train[0][1], other[0][1])
    features, labels, weights = train[0]
    assert features["source"].shape == (32, 10) and labels.shape == (32, 11)
    dev = list(task.dataset(DataRequest("dev", batch_size=32)))
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
    np.testing.assert_allclose(task.loss(None, labels, logits), expected, rtol=1e-5)


def test_metrics():
    task = ReverseSeq2SeqTask(HPARAMS, None, "/tmp/unused")
    labels = np.array([[5, END, PAD], [4, 3, END], [3, END, PAD]])
    predictions = np.array([[5, END, PAD], [4, 4, END], [9, 9, 9]])
    metrics = task.compute_metrics({"predictions": predictions, "labels": labels,
                                    "weights": np.array([1.0, 1.0, 0.0]),
                                    "loss": np.array([1.0, 3.0, 100.0])}, "test")
    assert metrics["sequence_accuracy"] == 50.0
    assert metrics["token_accuracy"] == pytest.approx(100.0 * 4 / 5)
    assert metrics["loss"] == 2.0 and metrics["examples"] == 2


# ------------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Trains experiment ``cho2014/reverse_seq2seq`` with the shared loop (XLA train step); its
    final evaluation decodes greedily and with a beam of 5."""
    experiment = registry.get("cho2014/reverse_seq2seq")
    config = loop.RunConfig(model_dir=str(tmp_path_factory.mktemp("seq2seq")),
                            jit_compile=True, verbose=False)
    result = loop.train(experiment, dict(HPARAMS), config)
    print(f"trained {result.results['steps']} steps in {result.results['train_seconds']:.0f} s:"
          f" {result.results['metrics']}")
    return result


def test_training_reaches_95_percent_exact_match_greedy_and_with_beams(trained):
    test = trained.results["metrics"]["test"]
    assert test["examples"] == HPARAMS["test_examples"] and test["beam_width"] == 5
    assert test["sequence_accuracy"] > 95.0
    # A beam finds sequences at least as probable as greedy decoding; on a model this good,
    # the most probable sequence is nearly always the right one.
    assert test["beam_sequence_accuracy"] >= test["sequence_accuracy"] - 1.0


def test_beam_scores_are_the_model_s_teacher_forced_log_probabilities(trained):
    task, model = trained.task, trained.model
    source = task.arrays("test")["source"][:100]
    state, constants = model.start_decoding(source)
    beams = decoding.beam_search(model.decode_step, state, constants, beam_width=5,
                                 start_id=START, end_id=END, pad_id=PAD,
                                 max_length=task.max_target_length)
    sequences = np.asarray(beams.sequences).reshape(-1, task.max_target_length)
    repeated = np.repeat(source, 5, axis=0)
    decoder_input = np.concatenate([np.full((len(sequences), 1), START), sequences[:, :-1]], 1)
    logits = model({"source": repeated, "decoder_input": decoder_input}).numpy()
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    token = np.take_along_axis(log_p, sequences[..., None], -1)[..., 0]
    lengths = np.asarray(beams.lengths).reshape(-1)
    upto = np.arange(task.max_target_length)[None, :] < lengths[:, None]
    np.testing.assert_allclose((token * upto).sum(-1).reshape(-1, 5), beams.log_probs,
                               rtol=1e-4, atol=1e-3)
