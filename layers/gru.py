"""The gated recurrent unit of Cho et al. (2014), Section 2.3, equations 5-8.

Cho, van Merriënboer, Gulcehre, Bahdanau, Bougares, Schwenk and Bengio, "Learning Phrase
Representations using RNN Encoder-Decoder for Statistical Machine Translation", EMNLP 2014.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import keras
from keras import ops

_LOOPS = ("auto", "while_loop", "scan", "unroll")
_LAYER_LOOPS = ("fused",) + _LOOPS


def time_major_loop(step: Callable, inputs: Sequence[Any], carry: Sequence[Any], *,
                    collect_outputs: bool = True, loop: str = "auto"):
    """Runs ``carry, y_t = step(carry, inputs_t)`` over the leading (time) axis.

    Args:
        step: ``step(carry, inputs_t) -> (new_carry, output_t)``; ``carry`` and ``inputs_t`` are
            tuples of tensors, ``output_t`` a single tensor (ignored when not collected).
        inputs: time-major tensors ``[T, ...]``, all with the same ``T``.
        carry: the initial carry, a tuple of tensors.
        collect_outputs: stack the per-step outputs into ``[T, ...]``; otherwise return ``None``.
        loop: ``"while_loop"`` (TensorFlow: a ``tf.while_loop`` over ``TensorArray`` s, the
            fastest on CPU and XLA-compatible with a static ``T``), ``"scan"`` (``keras.ops.scan``,
            any backend), ``"unroll"`` (a Python loop; needs a static ``T``) or ``"auto"``
            (``while_loop`` on TensorFlow, ``scan`` elsewhere).

    Returns:
        ``(final_carry, outputs)``.
    """
    if loop not in _LOOPS:
        raise ValueError(f"loop must be one of {_LOOPS}, got {loop!r}")
    inputs = tuple(inputs)
    carry = tuple(carry)
    if loop == "auto":
        loop = "while_loop" if keras.backend.backend() == "tensorflow" else "scan"

    if loop == "unroll":
        steps = inputs[0].shape[0]
        if steps is None:
            raise ValueError("loop='unroll' needs a static number of time steps")
        outputs = []
        for t in range(steps):
            carry, y = step(carry, tuple(x[t] for x in inputs))
            if collect_outputs:
                outputs.append(y)
        return carry, (ops.stack(outputs) if collect_outputs else None)

    if loop == "while_loop":
        if keras.backend.backend() != "tensorflow":
            raise ValueError("loop='while_loop' needs the TensorFlow backend")
        return _tf_while_loop(step, inputs, carry, collect_outputs)

    def scan_fn(c, xs):
        c, y = step(c, xs)
        # keras.ops.scan on TensorFlow requires per-step outputs with the carry's structure
        # (the output has the shape of the first carry entry).
        return c, (y,) + tuple(c[1:])

    carry, outputs = ops.scan(scan_fn, carry, inputs)
    return carry, (outputs[0] if collect_outputs else None)


def _tf_while_loop(step, inputs, carry, collect_outputs):
    import tensorflow as tf

    steps = inputs[0].shape[0]
    if steps is None:
        steps = tf.shape(inputs[0])[0]
    input_tas = tuple(
        tf.TensorArray(x.dtype, size=steps, element_shape=x.shape[1:]).unstack(x)
        for x in inputs)
    carry = tuple(tf.convert_to_tensor(c) for c in carry)
    # The output has the shape and dtype of the first carry entry (the hidden state).
    output_ta = tf.TensorArray(carry[0].dtype, size=steps if collect_outputs else 0,
                               element_shape=carry[0].shape)

    def body(t, c, out_ta):
        c, y = step(c, tuple(ta.read(t) for ta in input_tas))
        if collect_outputs:
            out_ta = out_ta.write(t, y)
        return t + 1, tuple(c), out_ta

    _, carry, output_ta = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), carry, output_ta),
        maximum_iterations=steps)
    return carry, (output_ta.stack() if collect_outputs else None)


def _fused_recurrence(proj_zr, proj_h, h0, u_zr, u_h, mask=None, keep=None, *,
                      zero_output_for_mask: bool = False, collect_outputs: bool = True):
    """Equations 5-8 over time with a hand-written backward pass (TensorFlow, tanh/sigmoid).

    Forward, for ``t = 0 ... T-1`` (``keep``: the recurrent dropout mask, else 1)::

        h_in = keep ⊙ h(t-1)
        [z, r] = σ(x_zr(t) + h_in [U_z U_r])                  (5), (6)
        h~ = tanh(x_h(t) + (r ⊙ h_in) U)                     (8)
        h(t) = z ⊙ h(t-1) + (1 - z) ⊙ h~                     (7)

    Backward through time, with ``g = ∂L/∂h(t)`` (``σ' = σ(1 - σ)``, ``tanh' = 1 - tanh²``)::

        a_h = (1 - z) ⊙ g ⊙ (1 - h~²)                        ∂L/∂x_h(t)
        q = a_h Uᵀ                                           ∂L/∂(r ⊙ h_in)
        a_zr = [g ⊙ (h(t-1) - h~), q ⊙ h_in] ⊙ σ'            ∂L/∂x_zr(t)
        ∂L/∂h(t-1) = z ⊙ g + keep ⊙ (r ⊙ q + a_zr [U_z U_r]ᵀ)

    The per-step work is two products with ``Uᵀ``; the weight gradients are then two products
    over all time steps at once: ``∂L/∂[U_z U_r] = Σ_t h_inᵀ a_zr`` and
    ``∂L/∂U = Σ_t (r ⊙ h_in)ᵀ a_h``. Automatic differentiation of the ``tf.while_loop`` would
    instead do four products per step and push every intermediate on a stack. A padded step
    (``mask`` false) passes ``g`` through to ``h(t-1)`` and contributes nothing else.

    Args:
        proj_zr, proj_h: time-major input projections ``[T, B, 2u]`` and ``[T, B, u]``.
        h0: ``[B, u]``. u_zr, u_h: ``[U_z U_r]`` ``[u, 2u]`` and ``U`` ``[u, u]``.
        mask: boolean ``[T, B, 1]`` or ``None``. keep: ``[B, u]`` or ``None``.

    Returns:
        ``(outputs [T, B, u] or None, last_output, h_last)``, as the generic path.
    """
    import tensorflow as tf

    units = h0.shape[-1]
    steps = proj_zr.shape[0]
    if steps is None:
        steps = tf.shape(proj_zr)[0]
    masked, dropped = mask is not None, keep is not None
    extras = tuple(t for t in (mask, keep) if t is not None)

    def unstack(x):
        return tf.TensorArray(x.dtype, size=steps, element_shape=x.shape[1:]).unstack(x)

    def new_array(like, width):
        return tf.TensorArray(like.dtype, size=steps, element_shape=(like.shape[0], width))

    @tf.custom_gradient
    def run(proj_zr, proj_h, h0, u_zr, u_h, *extras):
        mask = extras[0] if masked else None
        keep = extras[-1] if dropped else None
        x_zr_ta, x_h_ta = unstack(proj_zr), unstack(proj_h)
        mask_ta = unstack(mask) if masked else None
        zeros = tf.zeros_like(h0)

        def body(t, h, output, states_ta, zr_ta, hh_ta, outputs_ta):
            h_in = h * keep if dropped else h
            zr = tf.sigmoid(x_zr_ta.read(t) + tf.matmul(h_in, u_zr))
            z, r = zr[:, :units], zr[:, units:]
            hh = tf.tanh(x_h_ta.read(t) + tf.matmul(r * h_in, u_h))
            h_new = hh + z * (h - hh)
            if masked:
                m = mask_ta.read(t)
                output = tf.where(m, h_new, zeros if zero_output_for_mask else output)
                h_new = tf.where(m, h_new, h)
                if collect_outputs:
                    outputs_ta = outputs_ta.write(t, output)
            return (t + 1, h_new, output, states_ta.write(t, h_new), zr_ta.write(t, zr),
                    hh_ta.write(t, hh), outputs_ta)

        loop_vars = (tf.constant(0), h0, zeros, new_array(h0, units),
                     new_array(h0, 2 * units), new_array(h0, units),
                     new_array(h0, units) if masked and collect_outputs else tf.constant(0))
        _, h_last, last_output, states_ta, zr_ta, hh_ta, outputs_ta = tf.while_loop(
            lambda t, *_: t < steps, body, loop_vars, maximum_iterations=steps)
        states, zr_all, hh_all = states_ta.stack(), zr_ta.stack(), hh_ta.stack()

        def grad(*upstream):
            if masked:
                d_outputs = upstream[0] if collect_outputs else None
                d_output, d_state = upstream[-2], upstream[-1]
            else:
                d_outputs, d_state = upstream
                d_output = None
            d_state = tf.zeros_like(h0) if d_state is None else d_state
            d_output = tf.zeros_like(h0) if d_output is None else d_output
            h_prev_all = tf.concat([h0[None], states[:-1]], axis=0)
            h_prev_ta, zr_all_ta, hh_all_ta = unstack(h_prev_all), unstack(zr_all), unstack(hh_all)
            d_outputs_ta = unstack(d_outputs) if d_outputs is not None else None
            mask_back_ta = unstack(mask) if masked else None
            u_zr_t, u_h_t = tf.transpose(u_zr), tf.transpose(u_h)

            def back(i, dh, dout, d_zr_ta, d_h_ta):
                t = steps - 1 - i
                h, zr, hh = h_prev_ta.read(t), zr_all_ta.read(t), hh_all_ta.read(t)
                if masked:
                    m = tf.cast(mask_back_ta.read(t), dh.dtype)
                    g_out = dout + d_outputs_ta.read(t) if d_outputs_ta is not None else dout
                    g = m * (dh + g_out)
                    dh_prev = (1.0 - m) * dh
                    dout = tf.zeros_like(dout) if zero_output_for_mask else (1.0 - m) * g_out
                else:
                    g = dh + d_outputs_ta.read(t) if d_outputs_ta is not None else dh
                    dh_prev = tf.zeros_like(dh)
                z, r = zr[:, :units], zr[:, units:]
                h_in = h * keep if dropped else h
                a_h = g * (1.0 - z) * (1.0 - hh * hh)
                q = tf.matmul(a_h, u_h_t)
                a_zr = tf.concat([g * (h - hh), q * h_in], axis=-1) * zr * (1.0 - zr)
                d_in = r * q + tf.matmul(a_zr, u_zr_t)
                dh_prev += g * z + (d_in * keep if dropped else d_in)
                return i + 1, dh_prev, dout, d_zr_ta.write(t, a_zr), d_h_ta.write(t, a_h)

            _, dh0, _, d_zr_ta, d_h_ta = tf.while_loop(
                lambda i, *_: i < steps, back,
                (tf.constant(0), d_state, d_output, new_array(h0, 2 * units),
                 new_array(h0, units)),
                maximum_iterations=steps)
            d_proj_zr, d_proj_h = d_zr_ta.stack(), d_h_ta.stack()
            h_in_all = h_prev_all * keep if dropped else h_prev_all
            rh_all = zr_all[..., units:] * h_in_all
            d_u_zr = tf.matmul(tf.reshape(h_in_all, (-1, units)),
                               tf.reshape(d_proj_zr, (-1, 2 * units)), transpose_a=True)
            d_u_h = tf.matmul(tf.reshape(rh_all, (-1, units)),
                              tf.reshape(d_proj_h, (-1, units)), transpose_a=True)
            return (d_proj_zr, d_proj_h, dh0, d_u_zr, d_u_h) + (None,) * len(extras)

        if not masked:
            return (states, h_last), grad
        if collect_outputs:
            return (outputs_ta.stack(), last_output, h_last), grad
        return (last_output, h_last), grad

    results = run(proj_zr, proj_h, h0, u_zr, u_h, *extras)
    if not masked:
        states, h_last = results
        return (states if collect_outputs else None), h_last, h_last
    if collect_outputs:
        return tuple(results)
    return (None,) + tuple(results)


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
    time-major ``TensorArray`` s with a hand-written backward pass through time (see
    :func:`_fused_recurrence`: two products with ``Uᵀ`` per step and the gradients of ``U``
    as two products over the whole sequence); it compiles with XLA when the length is
    static; being a ``tf.custom_gradient``, it has no second derivatives. Otherwise the same
    equations in ``keras.ops`` run under ``tf.while_loop`` or ``keras.ops.scan`` and are
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
            :func:`time_major_loop`; ``"scan"`` on TensorFlow does not compile with XLA).
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
            m = ops.expand_dims(ops.transpose(ops.cast(mask, "bool"), (1, 0)), -1)  # [T, B, 1]
            if self.go_backwards:
                m = ops.flip(m, axis=0)

        if self._fused():
            outputs, last_output, h_last = _fused_recurrence(
                proj_zr, proj_h, h0, u_zr, u_h, m, recurrent_keep,
                zero_output_for_mask=self.zero_output_for_mask,
                collect_outputs=self.return_sequences)
        else:
            outputs, last_output, h_last = self._generic_recurrence(
                proj_zr, proj_h, h0, u_zr, u_h, m, recurrent_keep)

        output = ops.transpose(outputs, (1, 0, 2)) if self.return_sequences else last_output
        if self.return_state:
            return output, h_last
        return output

    def _fused(self) -> bool:
        """Whether the hand-written backward pass (:func:`_fused_recurrence`) applies."""
        applicable = (keras.backend.backend() == "tensorflow"
                      and self.activation is keras.activations.tanh
                      and self.recurrent_activation is keras.activations.sigmoid)
        if self.loop == "fused" and not applicable:
            raise ValueError("loop='fused' needs the TensorFlow backend, activation='tanh' and "
                             "recurrent_activation='sigmoid'")
        return self.loop == "fused" or (self.loop == "auto" and applicable)

    def _generic_recurrence(self, proj_zr, proj_h, h0, u_zr, u_h, m, recurrent_keep):
        """Equations 5-8 in ``keras.ops``, differentiated automatically."""
        units = self.units
        gate, candidate = self.recurrent_activation, self.activation

        def cell(h, x_zr, x_h):
            h_in = h if recurrent_keep is None else h * recurrent_keep
            zr = gate(x_zr + ops.matmul(h_in, u_zr))          # equations 5, 6
            z, r = zr[:, :units], zr[:, units:]
            hh = candidate(x_h + ops.matmul(r * h_in, u_h))  # equation 8
            return hh + z * (h - hh)                          # equation 7

        loop = "while_loop" if self.loop in ("auto", "fused") else self.loop
        if loop == "while_loop" and keras.backend.backend() != "tensorflow":
            loop = "scan"
        if m is None:
            def step(carry, xs):
                h = cell(carry[0], *xs)
                return (h,), h

            (h_last,), outputs = time_major_loop(
                step, (proj_zr, proj_h), (h0,), collect_outputs=self.return_sequences,
                loop=loop)
            return outputs, h_last, h_last

        zeros = ops.zeros_like(h0)

        def step(carry, xs):
            h, previous_output = carry
            x_zr, x_h, m_t = xs
            h_new = cell(h, x_zr, x_h)
            masked_output = zeros if self.zero_output_for_mask else previous_output
            output = ops.where(m_t, h_new, masked_output)
            return (ops.where(m_t, h_new, h), output), output

        (h_last, last_output), outputs = time_major_loop(
            step, (proj_zr, proj_h, m), (h0, zeros), collect_outputs=self.return_sequences,
            loop=loop)
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
