"""The GRU recurrence of Cho et al. (2014), equations 5-8, with a hand-written backward pass.

:func:`fused_recurrence` is what :class:`layers.ChoGRU` runs on TensorFlow with the paper's
tanh and sigmoid: a ``tf.while_loop`` over time whose gradient is written out by hand (two
products with ``Uᵀ`` per step, and the gradients of ``U`` as two products over the whole
sequence) instead of automatic differentiation of the loop (four products per step, every
intermediate pushed on a stack). It is tested against automatic differentiation of the same
equations (``tests/test_gru.py``); being a ``tf.custom_gradient``, it has no second
derivatives.
"""

from __future__ import annotations


def fused_recurrence(proj_zr, proj_h, h0, u_zr, u_h, mask=None, keep=None, *,
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
