"""layers.AdditiveAttention against Keras's built-in, a numpy transcription, and padding."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers.additive_attention import AdditiveAttention

RNG = np.random.default_rng(3)


def numpy_attention(layer, query, keys, values, mask):
    """M = tanh(W_k K + W_q q (+ b)), e = wᵀM (+ c), α = softmax over real keys, ctx = α V."""
    weights = {w.name: w.numpy() for w in layer.weights}
    hidden = np.tanh(keys @ weights["key_kernel"] + (query @ weights["query_kernel"])[:, None]
                     + weights.get("key_bias", 0.0))
    scores = (hidden @ weights["score_kernel"])[..., 0] + weights.get("score_bias", 0.0)
    scores = np.where(mask, scores, -np.inf)
    alpha = np.exp(scores - scores.max(-1, keepdims=True))
    alpha /= alpha.sum(-1, keepdims=True)
    return np.einsum("bl,bld->bd", alpha, values), alpha


@pytest.mark.parametrize("use_bias", [False, True])
def test_equals_a_numpy_transcription_with_masks(use_bias):
    batch, length, dk, dq, dv = 3, 6, 5, 4, 7
    layer = AdditiveAttention(8, use_bias=use_bias)
    query = RNG.normal(size=(batch, dq)).astype("float32")
    keys = RNG.normal(size=(batch, length, dk)).astype("float32")
    values = RNG.normal(size=(batch, length, dv)).astype("float32")
    mask = np.arange(length)[None, :] < np.array([[6], [2], [4]])
    layer(query, keys, values, mask=mask)
    if use_bias:  # make the biases matter
        layer.key_bias.assign(RNG.normal(size=8).astype("float32"))
        layer.score_bias.assign([0.7])
    context, alpha = layer(query, keys, values, mask=mask)
    expected_context, expected_alpha = numpy_attention(layer, query, keys, values, mask)
    np.testing.assert_allclose(alpha, expected_alpha, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(context, expected_context, rtol=1e-5, atol=1e-6)
    assert np.all(alpha.numpy()[~mask] == 0.0)  # padded keys get exactly zero weight
    np.testing.assert_allclose(alpha.numpy().sum(-1), 1.0, rtol=1e-6)


def test_equals_keras_additive_attention_with_identity_projections():
    """keras.layers.AdditiveAttention scores Σ_j scale_j tanh(q_j + k_ij), no projections: ours
    with W_k = W_q = I and w = scale is the same function."""
    batch, steps, length, dim = 2, 3, 5, 4
    query = RNG.normal(size=(batch, steps, dim)).astype("float32")
    keys = RNG.normal(size=(batch, length, dim)).astype("float32")
    values = RNG.normal(size=(batch, length, dim)).astype("float32")
    mask = np.arange(length)[None, :] < np.array([[5], [3]])
    reference = keras.layers.AdditiveAttention(use_scale=True)
    ours = AdditiveAttention(dim)
    ours(query, keys, values, mask=mask)
    ours.key_kernel.assign(np.eye(dim, dtype="float32"))
    ours.query_kernel.assign(np.eye(dim, dtype="float32"))
    reference.build([query.shape, values.shape, keys.shape])
    for scale in (None, RNG.normal(size=dim).astype("float32")):  # Keras's initial, a random
        if scale is not None:
            reference.scale.assign(scale)
        expected_context, expected_alpha = reference([query, values, keys], mask=[None, mask],
                                                     return_attention_scores=True)
        ours.score_kernel.assign(reference.scale.numpy()[:, None])
        context, alpha = ours(query, keys, values, mask=mask)
        np.testing.assert_allclose(alpha, expected_alpha, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(context, expected_context, rtol=1e-5, atol=1e-6)


def test_extra_padding_changes_nothing_and_keys_are_projected_once():
    layer = AdditiveAttention(6)
    query = RNG.normal(size=(2, 3)).astype("float32")
    keys = RNG.normal(size=(2, 4, 5)).astype("float32")
    mask = np.array([[True] * 4, [True, True, False, False]])
    context, alpha = layer(query, keys, mask=mask)
    padded_keys = np.concatenate([keys, RNG.normal(size=(2, 3, 5)).astype("float32")], axis=1)
    padded_mask = np.concatenate([mask, np.zeros((2, 3), bool)], axis=1)
    context2, alpha2 = layer(query, padded_keys, mask=padded_mask)
    np.testing.assert_allclose(context2, context, atol=1e-6)
    np.testing.assert_allclose(alpha2[:, :4], alpha, atol=1e-7)
    assert np.all(alpha2.numpy()[:, 4:] == 0.0)
    projected = layer.project_keys(keys)
    again = layer.attend(layer.project_query(query), projected, keys, mask)
    np.testing.assert_allclose(again[0], context, atol=1e-6)
    none = layer(query, keys, mask=np.zeros((2, 4), bool))  # no real key at all
    assert np.all(none[0].numpy() == 0) and np.all(none[1].numpy() == 0)


def test_config_round_trip_and_mixed_precision():
    layer = AdditiveAttention(7, use_bias=True, name="att")
    clone = AdditiveAttention.from_config(layer.get_config())
    assert clone.units == 7 and clone.use_bias and clone.name == "att"
    bf16 = AdditiveAttention(4, dtype="mixed_bfloat16")
    context, alpha = bf16(tf.ones((2, 3)), tf.ones((2, 5, 3)), mask=tf.ones((2, 5), bool))
    assert alpha.dtype == tf.float32 and context.dtype == tf.bfloat16
    np.testing.assert_allclose(alpha, 0.2, rtol=1e-6)
