"""The LSTM recurrence with a hand-written backward pass through time (TensorFlow).

:func:`fused_lstm_recurrence` runs, for ``t = 0 ... T-1``, from input projections ``x_t W + b``
computed beforehand for all steps::

    (i, f, o, g) = (σ, σ, σ, tanh)(x_t W + b + h_{t-1} U)
    c_t = f ⊙ c_{t-1} + i ⊙ g
    h_t = o ⊙ tanh(c_t)

as a ``tf.while_loop`` whose gradient is written out by hand. Backward through time, with
``dh`` and ``dc`` the gradients reaching ``h_t`` and ``c_t`` (``σ' = σ(1 - σ)``,
``tanh' = 1 - tanh²``)::

    dc ← dc + dh ⊙ o ⊙ (1 - tanh²(c_t))
    a  = [dc ⊙ g ⊙ σ'(i), dc ⊙ c_{t-1} ⊙ σ'(f), dh ⊙ tanh(c_t) ⊙ σ'(o), dc ⊙ i ⊙ (1 - g²)]
    ∂L/∂h_{t-1} = a Uᵀ,    ∂L/∂c_{t-1} = dc ⊙ f,    ∂L/∂(x_t W + b) = a

so each step does one product (with ``Uᵀ``), and ``∂L/∂U = Σ_t h_{t-1}ᵀ a_t`` is one product over
all steps at the end. Automatic differentiation of the loop instead does two products per step
(``∂L/∂U`` accumulated step by step) and pushes every intermediate on a stack. Tested against
automatic differentiation of the same equations (``tests/test_zaremba2014.py``); being a
``tf.custom_gradient``, it has no second derivatives. No masking: every step is real.
"""

from __future__ import annotations


def fused_lstm_recurrence(projected, h0, c0, recurrent_kernel):
    """The LSTM over time with a hand-written backward pass (see the module docstring).

    Args:
        projected: time-major ``x_t W + b`` ``[T, B, 4n]``, gate order ``(i, f, o, g)``.
        h0, c0: ``[B, n]``.
        recurrent_kernel: ``U`` ``[n, 4n]``.

    Returns:
        ``(outputs [T, B, n], h_T, c_T)``.
    """
    import tensorflow as tf

    units = h0.shape[-1]
    steps = projected.shape[0]
    if steps is None:
        steps = tf.shape(projected)[0]

    def unstack(x):
        return tf.TensorArray(x.dtype, size=steps, element_shape=x.shape[1:]).unstack(x)

    def new_array(like, width):
        return tf.TensorArray(like.dtype, size=steps, element_shape=(like.shape[0], width))

    @tf.custom_gradient
    def run(projected, h0, c0, u):
        projected_ta = unstack(projected)

        def body(t, h, c, states_ta, cells_ta, gates_ta):
            z = projected_ta.read(t) + tf.matmul(h, u)
            sig = tf.sigmoid(z[:, :3 * units])
            g = tf.tanh(z[:, 3 * units:])
            i, f, o = sig[:, :units], sig[:, units:2 * units], sig[:, 2 * units:]
            c = f * c + i * g
            h = o * tf.tanh(c)
            return (t + 1, h, c, states_ta.write(t, h), cells_ta.write(t, c),
                    gates_ta.write(t, tf.concat([sig, g], axis=-1)))

        _, h_last, c_last, states_ta, cells_ta, gates_ta = tf.while_loop(
            lambda t, *_: t < steps, body,
            (tf.constant(0), h0, c0, new_array(h0, units), new_array(h0, units),
             new_array(h0, 4 * units)), maximum_iterations=steps)
        states, cells, gates = states_ta.stack(), cells_ta.stack(), gates_ta.stack()

        def grad(d_states, d_h, d_c):
            d_h = tf.zeros_like(h0) if d_h is None else d_h
            d_c = tf.zeros_like(c0) if d_c is None else d_c
            c_prev_ta = unstack(tf.concat([c0[None], cells[:-1]], axis=0))
            cells_back, gates_back = unstack(cells), unstack(gates)
            d_states_ta = unstack(d_states) if d_states is not None else None
            u_t = tf.transpose(u)

            def back(n, dh, dc, d_projected_ta):
                t = steps - 1 - n
                if d_states_ta is not None:
                    dh = dh + d_states_ta.read(t)
                gate = gates_back.read(t)
                i, f = gate[:, :units], gate[:, units:2 * units]
                o, g = gate[:, 2 * units:3 * units], gate[:, 3 * units:]
                tanh_c = tf.tanh(cells_back.read(t))
                dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
                sig = gate[:, :3 * units]
                a = tf.concat([tf.concat([dc * g, dc * c_prev_ta.read(t), dh * tanh_c], axis=-1)
                               * sig * (1.0 - sig), dc * i * (1.0 - g * g)], axis=-1)
                return n + 1, tf.matmul(a, u_t), dc * f, d_projected_ta.write(t, a)

            _, dh0, dc0, d_projected_ta = tf.while_loop(
                lambda n, *_: n < steps, back,
                (tf.constant(0), d_h, d_c, new_array(h0, 4 * units)), maximum_iterations=steps)
            d_projected = d_projected_ta.stack()
            h_prev = tf.concat([h0[None], states[:-1]], axis=0)
            d_u = tf.matmul(tf.reshape(h_prev, (-1, units)),
                            tf.reshape(d_projected, (-1, 4 * units)), transpose_a=True)
            return d_projected, dh0, dc0, d_u

        return (states, h_last, c_last), grad

    # a tensor, not the variable: custom_gradient must not see a variable read inside ``run``
    # (the read outside it carries the gradient to the variable)
    return run(projected, h0, c0, tf.convert_to_tensor(recurrent_kernel))
