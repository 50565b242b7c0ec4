"""Additive (Bahdanau-style) attention with projections and a key mask."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_papers")
class AdditiveAttention(keras.layers.Layer):
    """Additive attention: a query scores every key through a one-layer MLP.

    Bahdanau, Cho and Bengio (2015), Eq. 6 and Appendix A.1.2; in the notation of Rocktäschel
    et al. (2016), Eq. 7-9, and Xu et al. (2015), Eq. 4-6 (``f_att``):

    ```
    M   = tanh(W_k K + (W_q q) ⊗ e_L [+ b])         keys K: [L, d_k], query q: [d_q]
    e   = wᵀ M [+ c]                                 one score per key
    α   = softmax(e) over the real (unmasked) keys
    ctx = Σ_i α_i v_i                                values v default to the keys
    ```

    ``W_k K`` does not depend on the query, so it is computed once per sequence
    (:meth:`project_keys`) and reused at every step of a recurrent model; :meth:`attend` takes
    it with a query projection the caller may have built itself (word-by-word attention adds
    ``W^r r_{t-1}`` to ``W^h h_t``).

    Masking: a key whose mask is ``False`` (padding) gets weight exactly 0 (its score is
    replaced by a number so low that its exponential underflows to 0 in float32); a row
    without any real key gets all-zero weights and a zero context. Scores and the softmax are
    computed in float32 under mixed precision.

    Args:
        units: the size of the hidden layer ``M`` (``k`` in Rocktäschel et al.).
        use_bias: add ``b`` (to the key projection) and ``c`` (to the scores), as the
            authors' code of Xu et al. does; Rocktäschel et al.'s equations have neither.
        kernel_initializer: initialiser of ``W_k``, ``W_q`` and ``w``.

    Call args:
        query: ``[batch, d_q]`` (one query) or ``[batch, T_q, d_q]`` (one per step).
        keys: ``[batch, L, d_k]``.
        values: ``[batch, L, d_v]``; default ``keys``.
        mask: boolean ``[batch, L]``, ``False`` at padded keys.

    Returns:
        ``(context, weights)``: ``[batch, (T_q,) d_v]`` and ``[batch, (T_q,) L]``.

    Example:

    ```python
    attention = AdditiveAttention(100)
    context, alpha = attention(h_N, Y, mask=premise_mask)       # Rocktäschel et al. Eq. 7-9
    keys = attention.project_keys(Y)                            # once per premise
    for t in range(T):
        q = attention.project_query(h[t]) + W_r(r)
        r, alpha_t = attention.attend(q, keys, Y, premise_mask)  # word by word
    ```
    """

    def __init__(self, units: int, use_bias: bool = False,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if units < 1:
            raise ValueError(f"units must be at least 1, got {units}")
        self.units = int(units)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True  # the mask of the keys is an argument, not propagated

    def build(self, query_shape, keys_shape, values_shape=None, mask_shape=None):
        init = self.kernel_initializer
        self.key_kernel = self.add_weight(shape=(keys_shape[-1], self.units), name="key_kernel",
                                          initializer=init)                              # W_k
        self.query_kernel = self.add_weight(shape=(query_shape[-1], self.units),
                                            name="query_kernel", initializer=init)       # W_q
        self.score_kernel = self.add_weight(shape=(self.units, 1), name="score_kernel",
                                            initializer=init)                            # w
        if self.use_bias:
            self.key_bias = self.add_weight(shape=(self.units,), name="key_bias",
                                            initializer="zeros")                         # b
            self.score_bias = self.add_weight(shape=(1,), name="score_bias",
                                              initializer="zeros")                       # c

    def project_keys(self, keys):
        """``W_k K [+ b]``: ``[batch, L, units]``, once per sequence."""
        projected = ops.matmul(keys, self.key_kernel)
        return projected + self.key_bias if self.use_bias else projected

    def project_query(self, query):
        """``W_q q``: ``[batch, (T_q,) units]``."""
        return ops.matmul(query, self.query_kernel)

    def attend(self, projected_query, projected_keys, values, mask=None):
        """Weights and context from projections (see the class docstring).

        Args:
            projected_query: ``[batch, (T_q,) units]``.
            projected_keys: ``[batch, L, units]`` from :meth:`project_keys`.
            values: ``[batch, L, d_v]``.
            mask: boolean ``[batch, L]`` or ``None``.
        """
        single = len(projected_query.shape) == 2
        query = projected_query[:, None, :] if single else projected_query        # [B, Tq, u]
        hidden = ops.tanh(query[:, :, None, :] + projected_keys[:, None, :, :])   # [B, Tq, L, u]
        scores = ops.squeeze(ops.matmul(hidden, self.score_kernel), -1)           # [B, Tq, L]
        if self.use_bias:
            scores = scores + self.score_bias
        scores = ops.cast(scores, "float32")
        if mask is not None:
            real = ops.cast(mask, "bool")[:, None, :]
            scores = ops.where(real, scores, -1e9)
        weights = ops.softmax(scores, axis=-1)
        if mask is not None:
            weights = ops.where(real, weights, 0.0)
        context = ops.matmul(ops.cast(weights, values.dtype), values)              # [B, Tq, dv]
        if single:
            return context[:, 0], weights[:, 0]
        return context, weights

    def call(self, query, keys, values=None, mask=None):
        values = keys if values is None else values
        return self.attend(self.project_query(query), self.project_keys(keys), values, mask)

    def compute_mask(self, query, keys, values=None, mask=None):
        return None

    def compute_output_shape(self, query_shape, keys_shape, values_shape=None, mask_shape=None):
        values_shape = keys_shape if values_shape is None else values_shape
        lead = tuple(query_shape[:-1])
        return (*lead, values_shape[-1]), (*lead, keys_shape[1])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"units": self.units, "use_bias": self.use_bias,
                       "kernel_initializer": keras.initializers.serialize(
                           self.kernel_initializer)})
        return config
