"""Tests of the Cho et al. (2014) GRU (layers/gru.py) and the maxout layer (layers/maxout.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import ChoGRU, Maxout

B, T, D, U = 3, 6, 5, 4


def _inputs(seed=0, batch=B, steps=T, dim=D):
    return np.random.RandomState(seed).randn(batch, steps, dim).astype("float32")


def _mask(batch=B, steps=T):
    mask = np.ones((batch, steps), bool)
    mask[1, 4:] = False          # right padding
    mask[2, :2] = False          # left padding
    mask[2, 3] = False           # a hole
    return mask


def _pair(**kwargs):
    """ChoGRU and keras.layers.GRU(reset_after=False) with the same random weights."""
    ours = ChoGRU(U, **kwargs)
    ref = keras.layers.GRU(U, reset_after=False, **kwargs)
    ours.build((None, None, D))
    ref.build((None, None, D))
    rng = np.random.RandomState(1)
    weights = [rng.uniform(-0.7, 0.7, w.shape).astype("float32") for w in ref.get_weights()]
    ref.set_weights(weights)
    ours.set_weights(ref.get_weights())
    return ours, ref


def _outputs_and_grads(layer, x, **call_kwargs):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = layer(x, **call_kwargs)
        flat = tf.nest.flatten(outputs)
        # A weighted sum, so that every output element gets its own gradient.
        loss = sum(tf.reduce_sum(o * tf.reshape(tf.sin(tf.range(tf.size(o), dtype=o.dtype)),
                                                tf.shape(o)))
                   for o in flat)
    grads = tape.gradient(loss, [x] + layer.trainable_variables)
    return [o.numpy() for o in flat], [g.numpy() for g in grads]


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("return_state", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_matches_keras_gru_reset_before(return_sequences, return_state, go_backwards, masked):
    ours, ref = _pair(return_sequences=return_sequences, return_state=return_state,
                      go_backwards=go_backwards)
    x = _inputs()
    kwargs = {"mask": tf.constant(_mask())} if masked else {}
    out_ours, grad_ours = _outputs_and_grads(ours, x, **kwargs)
    out_ref, grad_ref = _outputs_and_grads(ref, x, **kwargs)
    assert len(out_ours) == len(out_ref)
    for a, b in zip(out_ours, out_ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(grad_ours, grad_ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_masking_layer_and_initial_state_match_keras():
    x = _inputs()
    x[1, 4:] = 0.0
    h0 = np.random.RandomState(2).randn(B, U).astype("float32")
    ours, ref = _pair(return_sequences=True, return_state=True)
    masked = keras.layers.Masking(0.0)(x)
    for a, b in zip(ours(masked, initial_state=h0), ref(masked, initial_state=[h0])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    _, grad_ours = _outputs_and_grads(ours, x, initial_state=tf.constant(h0))
    _, grad_ref = _outputs_and_grads(ref, x, initial_state=[tf.constant(h0)])
    for a, b in zip(grad_ours, grad_ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_matches_keras(return_sequences):
    x = _inputs()
    mask = tf.constant(_mask())
    ours, ref = _pair(return_sequences=return_sequences)
    bi_ours = keras.layers.Bidirectional(ours)
    bi_ref = keras.layers.Bidirectional(ref)
    bi_ours.build((None, None, D))
    bi_ref.build((None, None, D))
    rng = np.random.RandomState(3)
    weights = [rng.uniform(-0.7, 0.7, w.shape).astype("float32") for w in bi_ref.get_weights()]
    bi_ref.set_weights(weights)
    bi_ours.set_weights(weights)
    out_ours, grad_ours = _outputs_and_grads(bi_ours, x, mask=mask)
    out_ref, grad_ref = _outputs_and_grads(bi_ref, x, mask=mask)
    for a, b in zip(out_ours, out_ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(grad_ours, grad_ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _numpy_gru(x, h0, kernel, recurrent_kernel, bias):
    """Equations 5-8 of Cho et al. (2014), one example at a time, one time step at a time."""
    units = h0.shape[-1]
    W_z, W_r, W = (kernel[:, i * units:(i + 1) * units].T for i in range(3))
    U_z, U_r, U_h = (recurrent_kernel[:, i * units:(i + 1) * units].T for i in range(3))
    b_z, b_r, b_h = (bias[i * units:(i + 1) * units] for i in range(3))

    def sigmoid(v):
        return 1.0 / (1.0 + np.exp(-v))

    outputs = np.zeros(x.shape[:2] + (units,))
    for n in range(x.shape[0]):
        h = h0[n].astype(np.float64)
        for t in range(x.shape[1]):
            r = sigmoid(W_r @ x[n, t] + b_r + U_r @ h)                 # (5)
            z = sigmoid(W_z @ x[n, t] + b_z + U_z @ h)                 # (6)
            h_tilde = np.tanh(W @ x[n, t] + b_h + U_h @ (r * h))       # (8)
            h = z * h + (1.0 - z) * h_tilde                            # (7)
            outputs[n, t] = h
    return outputs


def test_equations_5_to_8_in_numpy():
    rng = np.random.RandomState(4)
    x = rng.randn(2, 3, 2).astype("float32")
    h0 = rng.randn(2, 3).astype("float32")
    layer = ChoGRU(3, return_sequences=True)
    layer.build((None, None, 2))
    weights = [rng.randn(*w.shape).astype("float32") for w in layer.get_weights()]
    layer.set_weights(weights)
    expected = _numpy_gru(x.astype(np.float64), h0, *[w.astype(np.float64) for w in weights])
    np.testing.assert_allclose(layer(x, initial_state=h0), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("zero_output_for_mask", [False, True])
@pytest.mark.parametrize("loop", ["while_loop", "scan", "unroll"])
def test_fused_backward_matches_automatic_differentiation(loop, zero_output_for_mask):
    """The hand-written BPTT of the default TensorFlow path against autodiff of the same
    recurrence, with masks and both dropouts (equal seeds draw equal dropout masks)."""
    x, mask = _inputs(), tf.constant(_mask())
    kwargs = dict(return_sequences=True, return_state=True, dropout=0.3, recurrent_dropout=0.4,
                  zero_output_for_mask=zero_output_for_mask, seed=5)
    fused = ChoGRU(U, loop="fused", **kwargs)
    generic = ChoGRU(U, loop=loop, **kwargs)
    fused.build((None, None, D))
    generic.build((None, None, D))
    generic.set_weights(fused.get_weights())
    out_fused, grad_fused = _outputs_and_grads(fused, x, mask=mask, training=True)
    out_generic, grad_generic = _outputs_and_grads(generic, x, mask=mask, training=True)
    for a, b in zip(out_fused, out_generic):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    for a, b in zip(grad_fused, grad_generic):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_padding_does_not_change_the_final_state():
    rng = np.random.RandomState(5)
    lengths = [2, 5, 3]
    short = rng.randn(3, 5, D).astype("float32")
    layer = ChoGRU(U, return_state=True)
    finals = []
    for total in (5, 9):
        x = np.zeros((3, total, D), np.float32)
        mask = np.zeros((3, total), bool)
        for i, n in enumerate(lengths):
            x[i, :n] = short[i, :n]
            x[i, n:] = rng.randn(total - n, D)      # garbage in the padded steps
            mask[i, :n] = True
        _, state = layer(x, mask=mask)
        finals.append(state.numpy())
        # The state equals the state of the unpadded sequence alone.
        for i, n in enumerate(lengths):
            _, alone = layer(short[i:i + 1, :n])
            np.testing.assert_allclose(state[i], alone[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(finals[0], finals[1], rtol=1e-6, atol=1e-6)


def test_config_round_trip_and_output_shape():
    layer = ChoGRU(7, dropout=0.25, recurrent_dropout=0.1, return_sequences=True,
                   return_state=True, go_backwards=True, seed=3, name="g")
    clone = ChoGRU.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert layer.compute_output_shape((2, 9, 5)) == ((2, 9, 7), (2, 7))
    symbolic = layer(keras.Input((9, 5)))
    assert [tuple(s.shape) for s in symbolic] == [(None, 9, 7), (None, 7)]


def test_model_save_and_load(tmp_path):
    inputs = keras.Input((None, D))
    h = keras.layers.Masking(0.0)(inputs)
    h = ChoGRU(U, return_sequences=True, name="gru")(h)
    h = keras.layers.Bidirectional(ChoGRU(U), name="bi")(h)
    model = keras.Model(inputs, keras.layers.Dense(2)(h))
    x = _inputs()
    x[0, 4:] = 0.0
    path = str(tmp_path / "gru.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.get_layer("gru"), ChoGRU)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6, atol=1e-6)


def test_xla_train_step_matches_eager():
    x = tf.constant(_inputs())
    mask = tf.constant(_mask())
    layer = ChoGRU(U, return_sequences=True)
    layer.build((None, None, D))

    def loss_and_grads(x, mask):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(layer(x, mask=mask, training=True)))
        return loss, tape.gradient(loss, layer.trainable_variables)

    compiled = tf.function(loss_and_grads, jit_compile=True)
    loss_xla, grads_xla = compiled(x, mask)
    assert compiled.experimental_get_compiler_ir(x, mask)(stage="hlo")  # it compiles
    loss, grads = loss_and_grads(x, mask)
    np.testing.assert_allclose(loss_xla, loss, rtol=1e-5)
    for a, b in zip(grads_xla, grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_mirrored_strategy_train_step():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        layer = ChoGRU(U)
        layer.build((None, None, D))
        optimizer = keras.optimizers.SGD(0.1)
        optimizer.build(layer.trainable_variables)
    before = [v.numpy() for v in layer.trainable_variables]

    @tf.function
    def step(x):
        def replica_step(x):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(layer(x, training=True)))
            grads = tape.gradient(loss, layer.trainable_variables)
            optimizer.apply_gradients(zip(grads, layer.trainable_variables))
            return loss
        return strategy.run(replica_step, args=(x,))

    step(tf.constant(_inputs()))
    after = [v.numpy() for v in layer.trainable_variables]
    assert all(not np.allclose(a, b) for a, b in zip(before, after))


def test_dropout_only_in_training_and_fixed_across_time():
    units = 6
    layer = ChoGRU(units, dropout=0.5, return_sequences=True, seed=1)
    layer.build((None, None, D))
    kernel = np.random.RandomState(6).randn(D, 3 * units).astype("float32")
    bias = np.zeros(3 * units, np.float32)
    bias[:units] = -30.0                      # z = 0: h(t) = h~(t), no memory of h(t-1)
    layer.set_weights([kernel, np.zeros((units, 3 * units), np.float32), bias])
    constant = np.repeat(_inputs(seed=7, steps=1), T, axis=1)   # the same x at every step

    plain = ChoGRU.from_config({**layer.get_config(), "dropout": 0.0})
    plain.build((None, None, D))
    plain.set_weights(layer.get_weights())
    np.testing.assert_allclose(layer(constant, training=False), plain(constant), atol=1e-6)

    dropped = layer(constant, training=True).numpy()
    assert not np.allclose(dropped, plain(constant).numpy(), atol=1e-3)
    # One input mask per sequence: every step sees the same dropped input.
    np.testing.assert_allclose(dropped, np.repeat(dropped[:, :1], T, axis=1), atol=1e-6)


def test_recurrent_dropout_only_in_training():
    layer = ChoGRU(U, recurrent_dropout=0.5, return_sequences=True, seed=2)
    x = _inputs()
    np.testing.assert_allclose(layer(x, training=False), layer(x), atol=0)
    assert not np.allclose(layer(x, training=True), layer(x), atol=1e-4)


def test_maxout_against_numpy():
    x = np.random.RandomState(8).randn(2, 3, 8).astype("float32")
    layer = Maxout(pool_size=2)
    expected = np.maximum(x[..., 0::2], x[..., 1::2])      # s_i = max(s'_{2i-1}, s'_{2i})
    np.testing.assert_allclose(layer(x), expected)
    np.testing.assert_allclose(Maxout(4)(x), x.reshape(2, 3, 2, 4).max(-1))
    assert layer.compute_output_shape((None, 3, 8)) == (None, 3, 4)
    assert Maxout.from_config(layer.get_config()).pool_size == 2
    with pytest.raises(ValueError):
        layer(np.zeros((2, 5), np.float32))
