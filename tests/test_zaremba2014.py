"""Zaremba et al.'s LSTM language model: the layer, the schedule, the corpus, stateful truncated
BPTT on the shared loop (replicas, bit-exact resume), perplexity, and the CLI."""

import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from datasets.batching import DataRequest
from papers.registry import Experiment
from papers.zaremba2014 import corpus
from papers.zaremba2014.experiments import BASE_HPARAMS
from papers.zaremba2014.model import LanguageModel, ZarembaLSTM
from papers.zaremba2014.schedule import ZarembaSchedule
from papers.zaremba2014.task import LanguageModelTask
from tests.conftest import REPO
from training import loop
from training.task import RunEnv

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


# --------------------------------------------------------------------------- a synthetic corpus
class CountingTask(LanguageModelTask):
    """``train_examples`` (default 400) reviews that count up from a random word: ``w7 w8 w9
    ... w(7+k)``, in a 20-word vocabulary (cyclic). Each next word follows from the previous
    one, so a model that learns the rule reaches a perplexity near 1 everywhere but at the
    start of a review."""

    WORDS = [f"w{n}" for n in range(20)]

    def texts(self, split):
        rng = np.random.default_rng({"train": 0, "dev": 1, "test": 2}[split])
        count = {"train": int(self.params["train_examples"]) or 400, "dev": 12, "test": 12}[split]
        reviews = []
        for _ in range(count):
            start, length = rng.integers(20), rng.integers(15, 30)
            reviews.append(" ".join(self.WORDS[(start + i) % 20] for i in range(length)))
        return reviews


def counting(**overrides):
    params = {**BASE_HPARAMS, "hidden_units": 16, "vocab_size": 30, "batch_size": 4, "bptt": 5,
              "epochs": 1, "max_epoch": 0, "lr_decay": 1.0, "eval_examples": 1, **overrides}
    return Experiment(name="zaremba2014/counting", task=CountingTask, dataset="synthetic",
                      metric="perplexity", hparams=params)


def _train(tmp_path, name, strategy=None, config=None, **overrides):
    exp = counting(**overrides)
    config = {"steps_per_loop": 1, **(config or {})}
    run = loop.RunConfig(model_dir=str(tmp_path / name), verbose=False,
                         cache_dir=str(tmp_path / "cache"), **config)
    return loop.train(exp, dict(exp.hparams), run, strategy=strategy)


def _prepared(tmp_path, **overrides):
    exp = counting(**overrides)
    task = exp.make_task(dict(exp.hparams), None, str(tmp_path / "prepared"))
    task.prepare(RunEnv(cache_dir=str(tmp_path / "cache")))
    return task


# --------------------------------------------------------------------------- layer and schedule
def test_the_lstm_layer_equals_keras_lstm_with_the_gates_reordered():
    x = np.random.default_rng(0).normal(size=(3, 7, 4)).astype("float32")
    h0, c0 = (np.random.default_rng(n).normal(size=(3, 6)).astype("float32") for n in (1, 2))
    ours = ZarembaLSTM(6, init_scale=0.5)
    outputs, (h, c) = ours(x, (h0, c0))
    reference = keras.layers.LSTM(6, return_sequences=True, return_state=True)
    reference(x)

    def keras_order(m):  # ours (i, f, o, g) → Keras (i, f, c, o)
        i, f, o, g = np.split(np.asarray(m), 4, axis=-1)
        return np.concatenate([i, f, g, o], axis=-1)

    reference.set_weights([keras_order(w) for w in ours.get_weights()])
    expected, expected_h, expected_c = reference(x, initial_state=[h0, c0])
    np.testing.assert_allclose(outputs, expected, atol=1e-6)
    np.testing.assert_allclose(h, expected_h, atol=1e-6)
    np.testing.assert_allclose(c, expected_c, atol=1e-6)
    assert ours.get_config()["units"] == 6



def test_a_checkpoint_of_the_model_holds_every_weight(tmp_path):
    """The best checkpoint holds the model alone: every weight must be in it, the LSTMs'
    included (tf.train.Checkpoint does not follow a list of layers)."""
    model = LanguageModel(50, 8, num_layers=2, dropout=0.2, carried_streams=4)
    model({"tokens": tf.zeros([1, 1], tf.int32)})
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    saved = [k for k in tf.train.load_checkpoint(path).get_variable_to_shape_map()
             if k.startswith("model/")]
    assert len(saved) == len(model.weights) == 10, sorted(saved)

def test_the_hand_written_backward_pass_equals_automatic_differentiation():
    x = tf.constant(np.random.default_rng(0).normal(size=(3, 6, 4)).astype("float32"))
    h0, c0 = (tf.constant(np.random.default_rng(n).normal(size=(3, 5)).astype("float32"))
              for n in (1, 2))
    fused, plain = ZarembaLSTM(5, init_scale=0.5), ZarembaLSTM(5, init_scale=0.5, fused=False)
    fused(x, (h0, c0))
    plain(x, (h0, c0))
    plain.set_weights(fused.get_weights())
    # a loss that reads every output and both final states, with unequal weights
    weights = [tf.constant(np.random.default_rng(n).normal(size=s).astype("float32"))
               for n, s in ((3, (3, 6, 5)), (4, (3, 5)), (5, (3, 5)))]
    results = []
    for layer in (fused, plain):
        with tf.GradientTape() as tape:
            tape.watch([x, h0, c0])
            outputs, (h, c) = layer(x, (h0, c0))
            loss = sum(tf.reduce_sum(w * v) for w, v in zip(weights, (outputs, h, c)))
        results.append([outputs, h, c] + tape.gradient(
            loss, [x, h0, c0] + layer.trainable_weights))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_every_parameter_starts_uniform_in_the_init_range():
    model = LanguageModel(50, 8, init_scale=0.05, carried_streams=3)
    model({"tokens": tf.zeros([1, 2], tf.int32)})
    for weight in model.trainable_weights:
        values = np.asarray(weight)
        assert np.abs(values).max() <= 0.05 and np.abs(values).max() > 0.03, weight.name
    assert not np.any(np.asarray(model.carried_state))
    assert model.carried_state.shape == (3, 2, 2, 8)
    assert all(w is not model.carried_state for w in model.trainable_weights)


@pytest.mark.parametrize("decay, max_epoch", [(2.0, 4), (1.2, 6), (1.15, 14)])
def test_the_schedule_follows_the_released_code(decay, max_epoch):
    """main.lua: after epoch e's validation, lr = lr / decay if e > max_epoch."""
    per_epoch, lr, expected = 7, 1.0, []
    for epoch in range(1, max_epoch + 6):
        expected += [lr] * per_epoch
        if epoch > max_epoch:
            lr = lr / decay
    schedule = ZarembaSchedule(1.0, decay=decay, max_epoch=max_epoch, steps_per_epoch=per_epoch)
    ours = [float(schedule(step)) for step in range(len(expected))]
    np.testing.assert_allclose(ours, expected, rtol=1e-6)


def test_tied_embeddings_share_one_matrix():
    model = LanguageModel(30, 8, tied=True)
    out = model({"tokens": tf.constant([[3, 4]])})
    names = [w.path for w in model.trainable_weights]
    assert not any("softmax" in n for n in names) and any("output_bias" in n for n in names)
    with tf.GradientTape() as tape:
        out = model({"tokens": tf.constant([[3, 4]])})
        loss = tf.reduce_sum(out["logits"][0, 0])
    grad = tape.gradient(loss, model.embedding.embeddings)
    assert np.count_nonzero(np.abs(tf.convert_to_tensor(grad)).sum(-1)) == 30  # every row


# --------------------------------------------------------------------------- corpus
def test_batchify_and_the_text_files_read_back_as_pytorch_reads_them(tmp_path):
    vocab = corpus.build_vocabulary([["a", "b", "a", "c"], ["b", "a"]], size=5)
    assert vocab.tokens == ["<pad>", "<unk>", "<eos>", "a", "b"]
    reviews = [["a", "b", "c"], ["b", "zz", "a", "a"], ["b"]]
    ids = corpus.encode(reviews, vocab)
    assert ids.tolist() == [3, 4, 1, 2, 4, 1, 3, 3, 2, 4, 2]
    # pytorch/examples word_language_model: data.narrow(0, 0, nbatch * bsz).view(bsz, -1)
    np.testing.assert_array_equal(corpus.batchify(ids, 3), ids[:9].reshape(3, 3))
    paths = corpus.write_text_corpus(str(tmp_path), {"train": ids}, vocab)
    read = [w for line in open(paths["train"], encoding="utf8") for w in line.split() + ["<eos>"]]
    assert [vocab.token_id(w) for w in read] == ids.tolist()
    with pytest.raises(ValueError, match="cannot be cut into 6 streams"):
        corpus.batchify(ids, 6)


def test_a_token_holding_what_str_split_splits_on_reads_back_as_one_token(tmp_path):
    vocab = corpus.build_vocabulary([["a", "\x85", "a", "\x85"], ["b"]], size=6)
    ids = corpus.encode([["a", "\x85", "b"], ["\x85"]], vocab)
    paths = corpus.write_text_corpus(str(tmp_path), {"train": ids}, vocab)
    read = [w for line in open(paths["train"], encoding="utf8") for w in line.split() + ["<eos>"]]
    assert read == ["a", "<U+0085>", "b", "<eos>", "<U+0085>", "<eos>"]
    clash = corpus.build_vocabulary([["\x85", "<U+0085>"]], size=5)
    with pytest.raises(ValueError, match="written alike"):
        corpus.write_text_corpus(str(tmp_path), {"train": corpus.encode([["a"]], clash)}, clash)


def test_review_rows_are_nested_disjoint_and_fixed():
    small = corpus.review_rows("train", 100, train_examples=10, eval_examples=5, subset_seed=0)
    large = corpus.review_rows("train", 100, train_examples=30, eval_examples=5, subset_seed=0)
    assert large[:10].tolist() == small.tolist()
    assert sorted(corpus.review_rows("train", 100, train_examples=0, eval_examples=5,
                                     subset_seed=0)) == list(range(100))
    dev, test = (corpus.review_rows(s, 100, train_examples=0, eval_examples=20, subset_seed=0)
                 for s in ("dev", "test"))
    assert len(dev) == len(test) == 20 and not set(dev) & set(test)
    with pytest.raises(ValueError, match="eval_examples=60"):
        corpus.review_rows("dev", 100, train_examples=0, eval_examples=60, subset_seed=0)


def test_training_batches_tile_the_streams_and_reset_at_the_start_of_an_epoch(tmp_path):
    task = _prepared(tmp_path)
    streams = corpus.batchify(task.ids["train"], 4)
    batches = list(task.dataset(DataRequest("train", batch_size=4, training=True)))
    assert len(batches) * 4 == task.num_examples("train") == (streams.shape[1] - 1) // 5 * 4
    tokens = np.concatenate([f["tokens"].numpy() for f, _, _ in batches], axis=1)
    targets = np.concatenate([y.numpy() for _, y, _ in batches], axis=1)
    np.testing.assert_array_equal(tokens, streams[:, :tokens.shape[1]])
    np.testing.assert_array_equal(targets, streams[:, 1:tokens.shape[1] + 1])
    assert [bool(f["reset"].numpy().all()) for f, _, _ in batches] == \
        [True] + [False] * (len(batches) - 1)
    # two replicas: replica r reads streams 2r and 2r + 1 (the global batch cut in order)
    ctx = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0,
                                     num_replicas_in_sync=2)
    halves = list(task.dataset(DataRequest("train", batch_size=2, training=True,
                                           input_context=ctx)).take(2))
    np.testing.assert_array_equal(halves[0][0]["tokens"], batches[0][0]["tokens"][:2])
    np.testing.assert_array_equal(halves[1][0]["tokens"], batches[0][0]["tokens"][2:])


# --------------------------------------------------------------------------- evaluation
@pytest.mark.parametrize("streams", [1, 3])
def test_perplexity_counts_every_token_but_each_streams_first(tmp_path, streams):
    """Chunked evaluation with the carried state equals one pass over each whole stream."""
    task = _prepared(tmp_path, bptt=4, init_scale=0.5)  # a state that matters
    model = task.build_model()
    evaluate = loop.make_evaluator(task, model, tf.distribute.get_strategy(),
                                   per_replica_batch=streams)
    metrics, _ = evaluate("dev")
    whole = corpus.batchify(task.ids["dev"], streams)
    logits = model({"tokens": tf.constant(whole[:, :-1])})["logits"]
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(whole[:, 1:], logits).numpy()
    assert metrics["tokens"] == whole.shape[0] * (whole.shape[1] - 1) == nll.size
    assert metrics["streams"] == streams
    assert metrics["perplexity"] == pytest.approx(math.exp(nll.mean()), rel=1e-5)


# --------------------------------------------------------------------------- training
def test_the_train_step_carries_the_state_and_resets_it_at_the_start_of_an_epoch(tmp_path):
    task = _prepared(tmp_path, learning_rate=0.0)  # no update: the model stays as built
    model = task.build_model()
    optimizer = task.build_optimizer(10)
    model.carried_state.assign(np.random.default_rng(0).normal(
        size=model.carried_state.shape).astype("float32"))  # as left by the last epoch
    first, second = list(task.dataset(DataRequest("train", batch_size=4, training=True)).take(2))

    def expected(batch, state):
        out = model({"tokens": batch[0]["tokens"], "state": state})
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(batch[1], out["logits"])
        return out["state"].numpy(), float(tf.reduce_mean(nll))

    after_first, loss_first = expected(first, None)       # reset: from zeros
    after_second, loss_second = expected(second, after_first)
    for batch, state, loss in ((first, after_first, loss_first),
                               (second, after_second, loss_second)):
        out = task.train_step(batch, model, optimizer, global_batch_size=4, clip_norm=5.0)
        np.testing.assert_allclose(model.carried_state.numpy(), state, atol=1e-6)
        assert float(out["loss"]) == pytest.approx(loss, rel=1e-5)  # per token


@pytest.mark.slow
def test_the_counting_corpus_is_learned(tmp_path):
    result = _train(tmp_path, "learn", epochs=6, learning_rate=1.0, clip_norm=5.0,
                    config={"steps_per_loop": 20})
    dev = result.results["metrics"]["dev"]["perplexity"]
    # 26 of 27 tokens of a review follow from the one before; its first word is one of 20
    assert dev < 2.0, result.results["metrics"]
    losses = [loss for _, loss in result.train_losses]
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.slow
def test_a_resumed_run_ends_with_the_weights_and_carried_state_of_an_uninterrupted_one(
        tmp_path):
    """7 steps straight, or 3 steps (mid-epoch, carried state non-zero) then 4 more, with
    dropout: the same weights, bit for bit; without the carried state in the checkpoint the
    resumed run would start step 4 from zeros."""
    overrides = {"dropout": 0.3, "train_steps": 7, "train_examples": 5}
    whole = _train(tmp_path, "whole", **overrides)
    per_epoch = whole.task.num_examples("train") // 4
    assert 3 < per_epoch < 7, per_epoch  # the run crosses an epoch boundary after the resume
    first = _train(tmp_path, "resumed", **{**overrides, "train_steps": 3})
    assert np.any(np.asarray(first.model.carried_state))
    resumed = _train(tmp_path, "resumed", config={"extend": True}, **overrides)
    assert resumed.results["steps"] == 7
    for a, b in zip(whole.model.weights, resumed.model.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)


@pytest.mark.slow
def test_one_and_two_replicas_follow_the_same_trajectory(tmp_path):
    one = tf.distribute.MirroredStrategy(["/cpu:0"])
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"],
                                         cross_device_ops=tf.distribute.ReductionToOneDevice())
    a = _train(tmp_path, "one", strategy=one, train_steps=6, clip_norm=0.5)
    b = _train(tmp_path, "two", strategy=two, train_steps=6, clip_norm=0.5)
    np.testing.assert_allclose([loss for _, loss in a.train_losses],
                               [loss for _, loss in b.train_losses],
                               atol=1e-5)
    for wa, wb in zip(a.model.weights, b.model.weights):
        np.testing.assert_allclose(np.asarray(wa), np.asarray(wb), atol=1e-5, err_msg=wa.path)
    assert a.results["metrics"]["dev"]["perplexity"] == pytest.approx(
        b.results["metrics"]["dev"]["perplexity"], rel=1e-5)


# --------------------------------------------------------------------------- real data, CLIs
def _cli(*args, data_dir):
    env = dict(ENV, KERAS_PAPERS_DATA_DIR=data_dir)
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.mark.slow
def test_train_evaluate_and_generate_from_the_command_line(data_dir, tmp_path):
    run = tmp_path / "lm"
    out = _cli("train.py", "--experiment=zaremba2014/imdb_small", f"--model_dir={run}",
               "--params=train_examples=60,eval_examples=8,hidden_units=16,vocab_size=2000",
               "--epochs=1", "--verbose=false", f"--cache_dir={tmp_path / 'cache'}",
               data_dir=data_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads((run / "results.json").read_text())
    dev = results["metrics"]["dev"]
    assert dev["streams"] == 20 and dev["perplexity"] < 2000  # uniform: 2000
    vocab = (run / "vocab.txt").read_text().splitlines()
    assert vocab[:3] == ["<pad>", "<unk>", "<eos>"] and len(vocab) == 2000

    out = _cli("evaluate.py", f"--model_dir={run}", "--split=test", "--batch_size=1",
               data_dir=data_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    # the record is the JSON object that starts on its own line (a cold cache prints first)
    record = out.stdout[out.stdout.index("{\n"):out.stdout.rindex("}") + 1]
    single = json.loads(record)["metrics"]
    assert single["streams"] == 1
    # one stream of N tokens predicts N - 1; twenty streams lose N mod 20 tokens and 20 firsts
    assert 19 <= single["tokens"] - results["metrics"]["test"]["tokens"] <= 38

    prompt = "--predict=My name is John and I like to"
    runs = [_cli("evaluate.py", f"--model_dir={run}", prompt, "--decoding=top_k", "--top_k=5",
                 f"--seed={seed}", "--length=12", data_dir=data_dir) for seed in (3, 3, 4)]
    for out in runs:
        assert out.returncode == 0, out.stderr[-3000:]
    texts = [json.loads(out.stdout.strip().splitlines()[-1]) for out in runs]
    assert texts[0] == texts[1] and texts[0]["continuation"] != texts[2]["continuation"]
    assert texts[0]["prompt"] == "my name is john and i like to"
    assert texts[0]["decoding"] == "top_k" and texts[0]["top_k"] == 5
    assert 1 <= len(texts[0]["continuation"].split()) <= 12

    out = _cli("evaluate.py", f"--model_dir={run}", prompt, "--temperature=0",
               data_dir=data_dir)
    assert out.returncode == 2 and "--temperature=0.0: must be a positive number" in out.stderr
    out = _cli("evaluate.py", f"--model_dir={run}", "--decoding=beam", data_dir=data_dir)
    assert out.returncode == 2 and "--decoding apply to --predict" in out.stderr


def test_every_weight_is_checkpointed_and_no_two_start_equal(tmp_path):
    """Every weight goes into the checkpoint (the LSTMs are kept in a list) and the two
    LSTM matrices of one shape are drawn independently."""
    from training import loop

    model = LanguageModel(40, 8, carried_streams=2)
    model({"tokens": tf.zeros([1, 2], tf.int32)})
    loop.check_checkpointed(model)
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    other = LanguageModel(40, 8, carried_streams=2)
    other({"tokens": tf.zeros([1, 2], tf.int32)})
    tf.train.Checkpoint(model=other).restore(path).assert_consumed()
    for a, b in zip(model.weights, other.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    values = [np.asarray(w).tobytes() for w in model.trainable_weights]
    assert len(set(values)) == len(values)
