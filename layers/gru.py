"""The gated recurrent unit of Cho et al. (2014), Section 2.3, equations 5-8.

Cho, van Merriënboer, Gulcehre, Bahdanau, Bougares, Schwenk and Bengio, "Learning Phrase
Representations using RNN Encoder-Decoder for Statistical Machine Translation", EMNLP 2014.
"""

from __future__ import annotations

from typing import Any, Callable

import keras
from keras import ops

from layers.gru_fused import fused_recurrence
from layers.recurrence import LOOPS, masked_recurrence

_LAYER_LOOPS = ("fused",) + LOOPS


@keras.saving.register_keras_serializable(package="keras_papers")
class ChoGRU(keras.layers.Layer):
    """Gated recurrent unit, as published by Cho et al. (2014), Section 2.3.

    For an input sequence ``x`` the layer computes, at every time step ``t``,

    ```
    r   = σ(W_r x + U_r h(t-1))                      (5)  reset gate
    z   = σ(W_z x + U_z h(t-1))                      (6)  update gate
    h(t) = z ⊙ h(t-1) + (1 - z) ⊙ h~(t)              (7)
    h~(t) = tanh(W x + U (r ⊙ h(t-1)))               (8)  candidate
    ```

    with biases added to each input projection (the paper omits them "to make the equations
    uncluttered"). The reset gate multiplies ``h(t-1)`` *before* the product with ``U``
    (equation 8), as in the published (EMNLP) version. The cuDNN kernel and the default
    ``keras.layers.GRU`` (``reset_after=True``, which Keras traces to the first arXiv version,
    1406.1078v1) instead compute ``h~ = tanh(W x + b + r ⊙ (U h(t-1) + b_U))``, which turns the
    three recurrent products into one matrix multiplication; it is a different model with an
    extra bias. This layer equals ``keras.layers.GRU(reset_after=False)``: Keras uses the
    same update convention as equation 7, ``h = z * h_prev + (1 - z) * hh``, and the same weight
    layout, so weights transfer 1:1 in both directions:

    - ``kernel`` ``[input_dim, 3 * units]`` = ``[W_z | W_r | W]`` (gate order z, r, h),
    - ``recurrent_kernel`` ``[units, 3 * units]`` = ``[U_z | U_r | U]``,
    - ``bias`` ``[3 * units]``.

    ``ours.set_weights(keras_gru.get_weights())`` therefore gives identical outputs.

    Computation. The input projections ``x @ [W_z W_r W] + b`` of all time steps are one
    matrix product outside the recurrence; each step then does two products with ``U``: the
    fused gate product ``h(t-1) @ [U_z U_r]`` and ``(r ⊙ h(t-1)) @ U``. On TensorFlow with the
    paper's tanh/sigmoid (``loop="auto"``), the recurrence is a ``tf.while_loop`` over
    time-major ``TensorArray`` s with a hand-written backward pass through time
    (:func:`layers.gru_fused.fused_recurrence`); it compiles with XLA when the length is
    static; being a ``tf.custom_gradient``, it has no second derivatives. Otherwise the same
    equations in ``keras.ops`` run under :func:`layers.recurrence.masked_recurrence` and are
    differentiated automatically.

    Masking. A padded step (mask ``False``) leaves the state unchanged; with
    ``return_sequences`` its output is the previous step's output (zeros before the first
    unpadded step), or zeros if ``zero_output_for_mask=True``, as in Keras' ``RNN`` (which
    ``keras.layers.Bidirectional`` switches on for sequence outputs). The final state of a
    right-padded sequence is therefore the state after its last real token, whatever the
    padding.

    Args:
        units: dimension of the hidden state ``h``.
        activation: the candidate's nonlinearity (paper: tanh).
        recurrent_activation: the gates' nonlinearity (paper: the logistic sigmoid σ).
        use_bias: add biases to the input projections.
        kernel_initializer, recurrent_initializer, bias_initializer: initialisers of ``W``,
            ``U`` and the bias (Keras' GRU defaults: Glorot uniform, orthogonal, zeros).
        kernel_regularizer, recurrent_regularizer, bias_regularizer: optional regularisers.
        kernel_constraint, recurrent_constraint, bias_constraint: optional constraints.
        dropout: fraction of the input units dropped (training only). One mask per sequence,
            shared by the three input projections and fixed across time steps.
        recurrent_dropout: fraction of the units of ``h(t-1)`` dropped where ``h(t-1)`` enters
            a product with ``U`` (training only); one mask per sequence, fixed across time. The
            carry ``z ⊙ h(t-1)`` of equation 7 is never dropped.
        return_sequences: return ``[batch, time, units]`` (all ``h(t)``) rather than the last.
        return_state: also return the final state ``h(T)``.
        go_backwards: read the sequence in reverse; the returned sequence is in reversed
            order, as in Keras.
        zero_output_for_mask: output zeros (rather than the carried output) at padded steps.
        loop: how the recurrence runs: ``"auto"`` (``"fused"`` where it applies, else
            ``"while_loop"`` on TensorFlow and ``"scan"`` elsewhere), ``"fused"`` (the
            hand-written backward pass; TensorFlow, tanh and sigmoid only), or one of
            ``"while_loop"``, ``"scan"``, ``"unroll"`` with automatic differentiation (see
            :func:`layers.recurrence.time_major_loop`; ``"scan"`` on TensorFlow does not compile
            with XLA).
        seed: seed of the dropout masks.

    Call args:
        sequences: ``[batch, time, features]``.
        initial_state: ``h(0)``, ``[batch, units]`` (or a one-element list); zeros if omitted.
        mask: boolean ``[batch, time]``, ``False`` at padded steps.
        training: enables dropout.

    Example:

    ```python
    x = keras.Input((None, 16))
    h = keras.layers.Masking()(x)
    h = ChoGRU(32, return_sequences=True)(h)
    h = keras.layers.Bidirectional(ChoGRU(32))(h)
    model = keras.Model(x, h)
    ```
    """

    def __init__(
        self,
        units: int,
        activation: str | Callable = "tanh",
        recurrent_activation: str | Callable = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        zero_output_for_mask: bool = False,
        loop: str = "auto",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if units <= 0:
            raise ValueError(f"units must be positive, got {units}")
        if loop not in _LAYER_LOOPS:
            raise ValueError(f"loop must be one of {_LAYER_LOOPS}, got {loop!r}")
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, float(recurrent_dropout)))
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.zero_output_for_mask = zero_output_for_mask
        self.loop = loop
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Attributes keras.layers.Bidirectional reads from the layer it wraps.
        self.stateful = False
        self.states = None
        self.supports_masking = True
        self.state_size = self.units
        self.output_size = self.units

    def build(self, sequences_shape, initial_state_shape=None):
        input_dim = sequences_shape[-1]
        if input_dim is None:
            raise ValueError(f"the feature dimension must be known, got {sequences_shape}")
        self.kernel = self.add_weight(
            shape=(input_dim, 3 * self.units), name="kernel",
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 3 * self.units), name="recurrent_kernel",
            initializer=self.recurrent_initializer, regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint)
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(3 * self.units,), name="bias", initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        else:
            self.bias = None

    def call(self, sequences, initial_state=None, mask=None, training=False):
        x = ops.convert_to_tensor(sequences, dtype=self.compute_dtype)
        batch = ops.shape(x)[0]
        steps = x.shape[1] if x.shape[1] is not None else ops.shape(x)[1]
        units = self.units

        if initial_state is None:
            h0 = ops.zeros((batch, units), dtype=self.compute_dtype)
        else:
            if isinstance(initial_state, (list, tuple)):
                initial_state = initial_state[0]
            h0 = ops.cast(initial_state, self.compute_dtype)
        if isinstance(mask, (list, tuple)):
            mask = mask[0]

        if training and self.dropout > 0.0:
            keep = keras.random.dropout(ops.ones_like(x[:, 0, :]), self.dropout,
                                        seed=self.seed_generator)
            x = x * ops.expand_dims(keep, 1)
        recurrent_keep = None
        if training and self.recurrent_dropout > 0.0:
            recurrent_keep = keras.random.dropout(ops.ones_like(h0), self.recurrent_dropout,
                                                  seed=self.seed_generator)

        # Input projections of all time steps in one product, time-major: [T, B, 3u].
        x = ops.transpose(x, (1, 0, 2))
        if self.go_backwards:
            x = ops.flip(x, axis=0)
        proj = ops.matmul(ops.reshape(x, (-1, x.shape[-1])), self.kernel)
        if self.use_bias:
            proj = proj + self.bias
        proj = ops.reshape(proj, (steps, batch, 3 * units))
        proj_zr, proj_h = proj[..., : 2 * units], proj[..., 2 * units:]

        u = ops.convert_to_tensor(self.recurrent_kernel)
        u_zr, u_h = u[:, : 2 * units], u[:, 2 * units:]
        m = None
        if mask is not None:
            m = ops.transpose(ops.cast(mask, "bool"), (1, 0))  # [T, B]
            if self.go_backwards:
                m = ops.flip(m, axis=0)

        if self._fused():
            outputs, last_output, h_last = fused_recurrence(
                proj_zr, proj_h, h0, u_zr, u_h, None if m is None else m[..., None],
                recurrent_keep, zero_output_for_mask=self.zero_output_for_mask,
                collect_outputs=self.return_sequences)
        else:
            outputs, last_output, h_last = self._generic_recurrence(
                proj_zr, proj_h, h0, u_zr, u_h, m, recurrent_keep)

        output = ops.transpose(outputs, (1, 0, 2)) if self.return_sequences else last_output
        if self.return_state:
            return output, h_last
        return output

    def _fused(self) -> bool:
        """Whether the hand-written backward pass (:func:`fused_recurrence`) applies."""
        applicable = (keras.backend.backend() == "tensorflow"
                      and self.activation is keras.activations.tanh
                      and self.recurrent_activation is keras.activations.sigmoid)
        if self.loop == "fused" and not applicable:
            raise ValueError("loop='fused' needs the TensorFlow backend, activation='tanh' and "
                             "recurrent_activation='sigmoid'")
        return self.loop == "fused" or (self.loop == "auto" and applicable)

    def _generic_recurrence(self, proj_zr, proj_h, h0, u_zr, u_h, mask, recurrent_keep):
        """Equations 5-8 in ``keras.ops`` (:func:`layers.recurrence.masked_recurrence`),
        differentiated automatically."""
        units = self.units
        gate, candidate = self.recurrent_activation, self.activation

        def cell(xs, h, constants):
            x_zr, x_h = xs
            h_in = h if recurrent_keep is None else h * recurrent_keep
            zr = gate(x_zr + ops.matmul(h_in, u_zr))          # equations 5, 6
            z, r = zr[:, :units], zr[:, units:]
            hh = candidate(x_h + ops.matmul(r * h_in, u_h))  # equation 8
            h = hh + z * (h - hh)                             # equation 7
            return h, h

        loop = "auto" if self.loop == "fused" else self.loop
        outputs, last_output, h_last = masked_recurrence(
            cell, (proj_zr, proj_h), h0, mask=mask, return_sequences=self.return_sequences,
            zero_output_for_mask=self.zero_output_for_mask, loop=loop)
        return outputs, last_output, h_last

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch = sequences_shape[0]
        if self.return_sequences:
            output_shape = (batch, sequences_shape[1], self.units)
        else:
            output_shape = (batch, self.units)
        if self.return_state:
            return output_shape, (batch, self.units)
        return output_shape

    def compute_mask(self, sequences, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask, None]
        return output_mask

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": keras.regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": keras.constraints.serialize(self.recurrent_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "zero_output_for_mask": self.zero_output_for_mask,
            "loop": self.loop,
            "seed": self.seed,
        })
        return config
