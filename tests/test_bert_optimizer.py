"""BERT's AdamW: decoupled weight decay that skips LayerNorm and biases; warm-up + linear decay."""

import keras
import keras_hub
import numpy as np
import pytest

from papers.devlin2019.model import build_classifier
from training import optimizers


def test_schedule_values_at_key_steps():
    schedule = optimizers.WarmupLinearDecay(1e-3, total_steps=100, warmup_steps=10)
    at = lambda step: float(schedule(step))  # noqa: E731
    assert at(0) == 0.0                                   # first update: no step yet
    assert at(5) == pytest.approx(0.5e-3)                 # mid warm-up
    assert at(9) == pytest.approx(0.9e-3)
    assert at(10) == pytest.approx(1e-3 * (1 - 10 / 100))  # end of warm-up (google's line)
    assert at(55) == pytest.approx(1e-3 * 0.45)           # mid decay
    assert at(100) == 0.0 and at(150) == 0.0              # end, and past it


def test_schedule_decaying_from_the_peak():
    schedule = optimizers.WarmupLinearDecay(2e-5, total_steps=100, warmup_steps=10,
                                            decay_from_peak=True)
    assert float(schedule(5)) == pytest.approx(1e-5)
    assert float(schedule(10)) == pytest.approx(2e-5)
    assert float(schedule(55)) == pytest.approx(1e-5)
    assert float(schedule(100)) == 0.0


def test_schedule_config_round_trip_and_validation():
    schedule = optimizers.WarmupLinearDecay(3e-5, total_steps=60, warmup_steps=6)
    clone = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule))
    assert isinstance(clone, optimizers.WarmupLinearDecay)
    assert clone.get_config() == schedule.get_config()
    assert float(clone(30)) == pytest.approx(float(schedule(30)))
    no_warmup = optimizers.WarmupLinearDecay(1.0, total_steps=10, warmup_steps=0)
    assert float(no_warmup(0)) == 1.0
    with pytest.raises(ValueError, match="warmup_steps"):
        optimizers.WarmupLinearDecay(1.0, total_steps=10, warmup_steps=11)


def test_bert_adamw_settings():
    optimizer = optimizers.bert_adamw(5e-5, total_steps=1000)
    assert optimizer.weight_decay == pytest.approx(0.01)
    assert optimizer.beta_1 == pytest.approx(0.9) and optimizer.beta_2 == pytest.approx(0.999)
    assert optimizer.epsilon == pytest.approx(1e-6)
    schedule = optimizer._learning_rate
    assert isinstance(schedule, optimizers.WarmupLinearDecay)
    assert schedule.warmup_steps == 100 and schedule.peak_learning_rate == 5e-5


@pytest.fixture
def model():
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=20, num_layers=2, num_heads=2,
                                             hidden_dim=8, intermediate_dim=16,
                                             max_sequence_length=16)
    return build_classifier(backbone, 3, hidden_dims=(4,))


def _is_layer_norm_or_bias(variable, model):
    norm_vars = {id(v) for layer in model._flatten_layers()
                 if isinstance(layer, keras.layers.LayerNormalization) for v in layer.weights}
    return id(variable) in norm_vars or variable.name == "bias"


def test_excluded_variables_are_exactly_layer_norms_and_biases(model):
    optimizer = optimizers.bert_adamw(1e-3, total_steps=10)
    optimizer.build(model.trainable_variables)
    paths = {v.path: optimizers.uses_weight_decay(optimizer, v)
             for v in model.trainable_variables}
    for variable in model.trainable_variables:
        assert paths[variable.path] == (not _is_layer_norm_or_bias(variable, model)), \
            variable.path
    # keras-hub's names, as google-research/bert's LayerNorm / bias exclusions see them.
    assert not paths["transformer_layer_0/self_attention_layer_norm/gamma"]
    assert not paths["transformer_layer_0/feedforward_layer_norm/beta"]
    assert not paths["embeddings_layer_norm/gamma"]
    assert not paths["transformer_layer_1/self_attention_layer/query/bias"]
    assert not paths["pooled_dense/bias"]
    assert paths["transformer_layer_0/self_attention_layer/query/kernel"]
    assert paths["token_embedding/embeddings"] and paths["position_embedding/embeddings"]
    assert paths["pooled_dense/kernel"]
    head = [p for p in paths if "logits" in p]
    assert {p: paths[p] for p in head} == {"classifier/logits/kernel": True,
                                          "classifier/logits/bias": False}


def test_decay_only_update_shrinks_kernels_and_leaves_norms_and_biases(model):
    lr, wd = 0.1, 0.01
    optimizer = optimizers.bert_adamw(lr, total_steps=10, warmup_proportion=0.0,
                                      weight_decay=wd)
    variables = model.trainable_variables
    optimizer.build(variables)
    # Non-trivial LayerNorm scales and biases, so "unchanged" is not trivially true.
    for v in variables:
        if _is_layer_norm_or_bias(v, model):
            v.assign(np.full(v.shape, 0.5, "float32"))
    before = [np.array(v) for v in variables]
    optimizer.apply_gradients([(np.zeros(v.shape, "float32"), v) for v in variables])
    decayed = 0
    for variable, old in zip(variables, before):
        new = np.array(variable)
        if _is_layer_norm_or_bias(variable, model):
            np.testing.assert_array_equal(new, old, err_msg=variable.path)
        else:
            # lr at step 0 is the peak (no warm-up): w <- w - lr * wd * w
            np.testing.assert_allclose(new, old * (1 - lr * wd), rtol=1e-6, err_msg=variable.path)
            decayed += 1
    assert decayed > 0 and decayed < len(variables)


def _numpy_bert_adamw(w, grads, lrs, *, wd, decay, bias_correction, b1=0.9, b2=0.999,
                      eps=1e-6):
    """google-research/bert ``AdamWeightDecayOptimizer`` (and, with ``bias_correction``,
    ``torch.optim.AdamW``), transcribed in numpy."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = (m / (1 - b1 ** t), v / (1 - b2 ** t)) if bias_correction else (m, v)
        update = m_hat / (np.sqrt(v_hat) + eps) + (wd * w if decay else 0.0)
        w = w - lr * update
    return w


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("bias_correction", [False, True])
def test_bert_adamw_update_equals_the_reference_rule(bias_correction, fused):
    rng = np.random.default_rng(0)
    # Gradients of BERT's per-element size, where the placement of ε matters.
    kernel0 = rng.normal(size=(4, 3)).astype("float32")
    bias0 = rng.normal(size=(3,)).astype("float32")
    grads = [(rng.normal(size=(4, 3)) * 1e-5).astype("float32") for _ in range(4)]
    bias_grads = [(rng.normal(size=(3,)) * 1e-5).astype("float32") for _ in range(4)]
    lr, total, wd = 1e-3, 4, 0.01
    optimizer = optimizers.bert_adamw(lr, total_steps=total, warmup_proportion=0.5,
                                      weight_decay=wd, bias_correction=bias_correction,
                                      fused=fused)
    assert optimizer.fused == fused
    kernel = keras.Variable(kernel0, name="kernel")
    bias = keras.Variable(bias0, name="bias")
    optimizer.build([kernel, bias])
    schedule = optimizer._learning_rate
    lrs = [float(schedule(s)) for s in range(total)]
    for g, gb in zip(grads, bias_grads):
        optimizer.apply_gradients([(g, kernel), (gb, bias)])
    np.testing.assert_allclose(
        np.asarray(kernel), _numpy_bert_adamw(kernel0.astype("float64"), grads, lrs, wd=wd,
                                              decay=True, bias_correction=bias_correction),
        rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        np.asarray(bias), _numpy_bert_adamw(bias0.astype("float64"), bias_grads, lrs, wd=wd,
                                            decay=False, bias_correction=bias_correction),
        rtol=1e-5, atol=1e-7)
    # Keras's own AdamW puts ε elsewhere: on these gradients it moves the weights differently.
    if bias_correction:
        keras_adamw = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=wd,
                                             epsilon=1e-6)
        other = keras.Variable(kernel0, name="kernel")
        keras_adamw.build([other])
        for g in grads:
            keras_adamw.apply_gradients([(g, other)])
        assert not np.allclose(np.asarray(other), np.asarray(kernel), rtol=1e-5, atol=1e-7)


def test_bert_adamw_config_round_trip():
    optimizer = optimizers.bert_adamw(3e-5, total_steps=50, bias_correction=True)
    clone = optimizers.BertAdamW.from_config(optimizer.get_config())
    assert isinstance(clone, optimizers.BertAdamW) and clone.bias_correction
    assert clone.epsilon == pytest.approx(1e-6) and clone.weight_decay == pytest.approx(0.01)
    assert not optimizers.bert_adamw(3e-5, total_steps=50).bias_correction
    with pytest.raises(ValueError, match="amsgrad"):
        optimizers.BertAdamW(amsgrad=True)


@pytest.mark.parametrize("bias_correction", [False, True])
def test_fused_update_equals_the_unfused_one_in_a_compiled_two_replica_step(bias_correction):
    """The fused-kernel update is the same rule as the element-wise one, also where the loop runs
    it: inside a ``tf.function``, per replica under ``MirroredStrategy``, with a decayed kernel
    and an undecayed bias, over several steps of the warm-up and decay."""
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(  # two logical CPUs: tests/conftest.py
        ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice())
    rng = np.random.default_rng(1)
    kernel0 = rng.normal(size=(8, 5)).astype("float32")
    bias0 = rng.normal(size=(5,)).astype("float32")
    grads = [((rng.normal(size=(8, 5)) * 1e-4).astype("float32"),
              (rng.normal(size=(5,)) * 1e-4).astype("float32")) for _ in range(5)]
    results = {}
    for fused in (True, False):
        with strategy.scope():
            kernel = keras.Variable(kernel0, name="kernel")
            bias = keras.Variable(bias0, name="bias")
            optimizer = optimizers.bert_adamw(1e-2, total_steps=5, warmup_proportion=0.4,
                                              bias_correction=bias_correction, fused=fused)
            optimizer.build([kernel, bias])

        @tf.function
        def step(gk, gb):
            def replica_fn(gk, gb):
                optimizer.apply_gradients([(gk / 2, kernel), (gb / 2, bias)])
            strategy.run(replica_fn, args=(gk, gb))

        for gk, gb in grads:
            step(tf.constant(gk), tf.constant(gb))
        results[fused] = [np.asarray(kernel), np.asarray(bias)]
        assert int(optimizer.iterations.value.numpy()) == len(grads)
    # TensorFlow's kernel forms 1 - β2 from float32(0.999), 1.3e-5 away from 0.001 in relative
    # terms; the unfused rule forms it in float64. Updates are about lr = 1e-2 here, so a wrong
    # rule (no bias correction, a missing decay) is 1e-3 away, not 1e-7.
    for a, b in zip(results[True], results[False]):
        np.testing.assert_allclose(a, b, rtol=0, atol=5e-7)
    assert not np.allclose(results[True][0], kernel0)
