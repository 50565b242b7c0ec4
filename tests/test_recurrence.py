"""layers.recurrence: the masked loop against numpy, nested state, constants, padding, XLA."""

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from layers.recurrence import masked_recurrence, time_major_loop

RNG = np.random.default_rng(5)
T, B, D, H = 6, 4, 3, 2
X = RNG.normal(size=(T, B, D)).astype("float32")
W = RNG.normal(size=(D, H)).astype("float32")
U = RNG.normal(size=(H, H)).astype("float32")
# column b: real steps of sequence b (right padding, left padding, none, all real)
MASK = np.array([[1, 0, 0, 1], [1, 0, 0, 1], [1, 1, 0, 1], [0, 1, 0, 1], [0, 1, 0, 1],
                 [0, 1, 0, 1]], bool)


def cell(x_t, state, constants):
    """An LSTM-like cell: nested state (h, c), a per-sequence constant, nested output."""
    h, c = state
    c = 0.5 * c + ops.tanh(ops.matmul(x_t, W) + ops.matmul(h, U) + constants["bias"])
    h = ops.tanh(c)
    return {"h": h, "norm": ops.sum(h * h, axis=-1)}, (h, c)


def numpy_run(mask, zero_output):
    bias = CONSTANTS["bias"].numpy()
    h = np.zeros((B, H), "float32")
    c = np.zeros((B, H), "float32")
    previous = {"h": np.zeros((B, H)), "norm": np.zeros(B)}
    outputs = []
    for t in range(T):
        c_new = 0.5 * c + np.tanh(X[t] @ W + h @ U + bias)
        h_new = np.tanh(c_new)
        m = mask[t][:, None]
        h, c = np.where(m, h_new, h), np.where(m, c_new, c)
        y = {"h": h_new, "norm": (h_new * h_new).sum(-1)}
        out = {k: np.where(mask[t].reshape((B,) + (1,) * (v.ndim - 1)), v,
                           0.0 if zero_output else previous[k]) for k, v in y.items()}
        if not zero_output:
            previous = out
        outputs.append(out)
    return {k: np.stack([o[k] for o in outputs]) for k in ("h", "norm")}, (h, c)


CONSTANTS = {"bias": tf.constant(RNG.normal(size=(B, H)).astype("float32"))}
INITIAL = (tf.zeros((B, H)), tf.zeros((B, H)))


@pytest.mark.parametrize("loop", ["while_loop", "unroll"])
@pytest.mark.parametrize("zero_output", [False, True])
def test_masked_steps_keep_the_state_and_outputs_follow_keras(loop, zero_output):
    outputs, last, (h, c) = masked_recurrence(cell, tf.constant(X), INITIAL, mask=MASK,
                                              constants=CONSTANTS, loop=loop,
                                              zero_output_for_mask=zero_output)
    expected, (h_np, c_np) = numpy_run(MASK, zero_output)
    for key in ("h", "norm"):
        np.testing.assert_allclose(outputs[key], expected[key], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(last[key], expected[key][-1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h, h_np, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c, c_np, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(c[2], 0.0)  # a sequence without a real step


def test_padding_at_the_end_changes_nothing():
    real = np.array([[1, 1, 1, 1]] * 3 + [[1, 0, 0, 1]] * 3, bool)  # right-padded only
    short = masked_recurrence(cell, tf.constant(X), INITIAL, mask=real, constants=CONSTANTS)
    padded_x = np.concatenate([X, RNG.normal(size=(4, B, D)).astype("float32")])
    padded_mask = np.concatenate([real, np.zeros((4, B), bool)])
    long = masked_recurrence(cell, tf.constant(padded_x), INITIAL, mask=padded_mask,
                             constants=CONSTANTS)
    for a, b in zip(short[2], long[2]):
        np.testing.assert_allclose(a, b, atol=1e-7)
    np.testing.assert_allclose(short[1]["h"], long[1]["h"], atol=1e-7)
    np.testing.assert_allclose(long[0]["h"][:T], short[0]["h"], atol=1e-7)


def test_without_a_mask_and_under_xla():
    outputs, last, state = masked_recurrence(cell, tf.constant(X), INITIAL, constants=CONSTANTS)
    expected, (h_np, _) = numpy_run(np.ones((T, B), bool), False)
    np.testing.assert_allclose(outputs["h"], expected["h"], rtol=1e-5, atol=1e-6)
    compiled = tf.function(lambda x: masked_recurrence(
        cell, x, INITIAL, mask=MASK, constants=CONSTANTS)[0]["h"], jit_compile=True)
    np.testing.assert_allclose(compiled(tf.constant(X)), numpy_run(MASK, False)[0]["h"],
                               rtol=1e-5, atol=1e-6)


def test_time_major_loop_collects_nested_outputs_and_validates():
    def step(carry, x):
        return carry + x, {"running": carry + x}

    for loop in ("while_loop", "unroll"):
        total, outputs = time_major_loop(step, tf.constant(X), tf.zeros((B, D)), loop=loop)
        np.testing.assert_allclose(outputs["running"], np.cumsum(X, axis=0), rtol=1e-6)
        np.testing.assert_allclose(total, X.sum(0), rtol=1e-6)
    # keras.ops.scan on TensorFlow: outputs shaped like the carry (what ChoGRU needs)
    total, outputs = time_major_loop(lambda c, x: (c + x, c + x), tf.constant(X),
                                     tf.zeros((B, D)), loop="scan")
    np.testing.assert_allclose(outputs, np.cumsum(X, axis=0), rtol=1e-6)
    with pytest.raises(ValueError, match="loop must be one of"):
        time_major_loop(step, tf.constant(X), tf.zeros((B, D)), loop="fast")
