"""Time loops for recurrent cells: nested state, per-sequence constants, masks.

:func:`masked_recurrence` runs a cell over time, the way every recurrent model of the suite
needs it: the GRU of Cho et al. (``layers.ChoGRU``), the hypothesis LSTM of Rocktäschel et al.
whose state carries an attention read-out, the caption decoder of Xu et al. with ``(h, c)`` and
image features. A padded step (mask ``False``) keeps every part of the state, so padding never
changes a result; its output is the previous step's (or zeros). :func:`time_major_loop` is the
bare loop underneath.

Example:

```python
def cell(x_t, state, constants):
    h, c = state
    ...                                   # one LSTM step, reading constants["keys"]
    return (h, alpha), (h, c)             # (output_t, new_state)

outputs, last, (h, c) = masked_recurrence(cell, x, (h0, c0), mask=mask,
                                          constants={"keys": keys})
hs, alphas = outputs                      # time-major [T, B, k], [T, B, L]
```
"""

from __future__ import annotations

from typing import Any, Callable

import keras
from keras import ops
from keras import tree

LOOPS = ("auto", "while_loop", "scan", "unroll")


def time_major_loop(step: Callable, inputs: Any, carry: Any, *, collect_outputs: bool = True,
                    loop: str = "auto"):
    """Runs ``carry, y_t = step(carry, inputs_t)`` over the leading (time) axis.

    Args:
        step: ``step(carry, inputs_t) -> (new_carry, output_t)``; ``inputs_t`` has the
            structure of ``inputs``, ``output_t`` any nested structure of tensors.
        inputs: a nested structure of time-major tensors ``[T, ...]``, all with the same ``T``.
        carry: the initial carry, a nested structure of tensors.
        collect_outputs: stack the per-step outputs into ``[T, ...]``; otherwise return
            ``None`` for them.
        loop: ``"while_loop"`` (TensorFlow: a ``tf.while_loop`` over ``TensorArray`` s, the
            fastest on CPU and XLA-compatible with a static ``T``), ``"scan"``
            (``keras.ops.scan``, any backend; on TensorFlow it needs outputs shaped like the
            carry), ``"unroll"`` (a Python loop; needs a static ``T``) or ``"auto"``
            (``while_loop`` on TensorFlow, ``scan`` elsewhere).

    Returns:
        ``(final_carry, outputs)``.
    """
    if loop not in LOOPS:
        raise ValueError(f"loop must be one of {LOOPS}, got {loop!r}")
    if loop == "auto":
        loop = "while_loop" if keras.backend.backend() == "tensorflow" else "scan"
    first = tree.flatten(inputs)[0]

    if loop == "unroll":
        steps = first.shape[0]
        if steps is None:
            raise ValueError("loop='unroll' needs a static number of time steps")
        outputs = []
        for t in range(steps):
            carry, y = step(carry, tree.map_structure(lambda x: x[t], inputs))
            if collect_outputs:
                outputs.append(y)
        if not collect_outputs:
            return carry, None
        return carry, tree.map_structure(lambda *ys: ops.stack(ys), *outputs)

    if loop == "while_loop":
        if keras.backend.backend() != "tensorflow":
            raise ValueError("loop='while_loop' needs the TensorFlow backend")
        return _tf_while_loop(step, inputs, carry, collect_outputs)

    def scan_fn(c, xs):
        c, y = step(c, xs)
        return c, (y if collect_outputs else ())

    carry, outputs = ops.scan(scan_fn, carry, inputs)
    return carry, (outputs if collect_outputs else None)


class _StepOutput(keras.Operation):
    """``step``'s per-step output as a Keras operation, whose ``compute_output_spec`` traces
    it symbolically (in a scratch graph, without running it or changing any state)."""

    def __init__(self, step: Callable):
        super().__init__(name="step_output")
        self.step = step

    def call(self, carry, inputs_t):
        return self.step(carry, inputs_t)[1]


def _output_spec(step, carry, inputs):
    """The structure, dtypes and (static) shapes of ``step``'s per-step output."""
    def spec(x, drop_time=False):
        shape = tuple(x.shape[1:] if drop_time else x.shape)
        return keras.KerasTensor(shape, dtype=keras.backend.standardize_dtype(x.dtype))

    return _StepOutput(step).compute_output_spec(
        tree.map_structure(spec, carry),
        tree.map_structure(lambda x: spec(x, drop_time=True), inputs))


def _tf_while_loop(step, inputs, carry, collect_outputs):
    import tensorflow as tf

    flat_inputs = tree.flatten(inputs)
    steps = flat_inputs[0].shape[0]
    if steps is None:
        steps = tf.shape(flat_inputs[0])[0]
    input_tas = [tf.TensorArray(x.dtype, size=steps, element_shape=x.shape[1:]).unstack(x)
                 for x in flat_inputs]
    carry = tree.map_structure(tf.convert_to_tensor, carry)
    if collect_outputs:
        spec = _output_spec(step, carry, inputs)
        output_tas = [tf.TensorArray(s.dtype, size=steps, element_shape=s.shape)
                      for s in tree.flatten(spec)]
    else:
        output_tas = []

    def body(t, c, tas):
        c, y = step(c, tree.pack_sequence_as(inputs, [ta.read(t) for ta in input_tas]))
        if collect_outputs:
            tas = [ta.write(t, v) for ta, v in zip(tas, tree.flatten(y))]
        return t + 1, c, tas

    _, carry, output_tas = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), carry, output_tas),
        maximum_iterations=steps)
    if not collect_outputs:
        return carry, None
    return carry, tree.pack_sequence_as(spec, [ta.stack() for ta in output_tas])


def masked_recurrence(cell: Callable, inputs: Any, initial_state: Any, *, mask=None,
                      constants: Any = None, return_sequences: bool = True,
                      zero_output_for_mask: bool = False, loop: str = "auto"):
    """Runs ``output_t, state_t = cell(inputs_t, state_{t-1}, constants)`` over time.

    Args:
        cell: one step; ``inputs_t``, ``state`` and ``output_t`` are nested structures of
            ``[batch, ...]`` tensors; ``constants`` is passed through unchanged (per-sequence
            tensors such as a projected premise or image features).
        inputs: nested time-major tensors ``[T, batch, ...]``.
        initial_state: nested ``[batch, ...]`` tensors.
        mask: boolean ``[T, batch]`` (time-major), ``False`` at padded steps, or ``None``.
        constants: anything the cell reads at every step.
        return_sequences: also return the outputs of every step.
        zero_output_for_mask: a padded step outputs zeros; otherwise it repeats the output of
            the last real step before it (zeros if there is none), as Keras's RNNs do.
        loop: see :func:`time_major_loop`.

    Returns:
        ``(outputs, last_output, final_state)``: ``outputs`` nested ``[T, batch, ...]`` (or
        ``None``), ``last_output`` the output of the last step as just described (for a
        sequence padded at the end: its last real step's output, or zeros with
        ``zero_output_for_mask``), and the state after the last real step. At a padded step
        every state leaf keeps its value.
    """
    if mask is None:
        def step(state, x_t):
            y, new_state = cell(x_t, state, constants)
            return new_state, y

        final_state, outputs = time_major_loop(step, inputs, initial_state, loop=loop)
        last = tree.map_structure(lambda y: y[-1], outputs)
        return (outputs if return_sequences else None), last, final_state

    mask = ops.cast(mask, "bool")

    def step(state, xs):
        x_t, m_t = xs
        y, new_state = cell(x_t, state, constants)
        return tree.map_structure(lambda new, old: _where(m_t, new, old), new_state, state), y

    final_state, outputs = time_major_loop(step, (inputs, mask), initial_state, loop=loop)
    if zero_output_for_mask:
        outputs = tree.map_structure(lambda y: _where(mask, y, ops.zeros_like(y)), outputs)
    else:
        # Step t shows the output of the last real step s <= t: s + 1 = max over s <= t of
        # (s + 1) * mask_s, 0 where there is none yet.
        steps = ops.shape(mask)[0]
        positions = ops.arange(steps, dtype="int32")
        real = ops.where(mask, positions[:, None] + 1, 0)                       # [T, B]
        earlier = ops.cast(positions[None, :] <= positions[:, None], "int32")   # [t, s]
        last_real = ops.max(real[None, :, :] * earlier[:, :, None], axis=1)     # [T, B]
        index = ops.maximum(last_real - 1, 0)

        def fill(y):
            picked = ops.take_along_axis(
                y, ops.reshape(index, ops.shape(index) + (1,) * (len(y.shape) - 2)), axis=0)
            return _where(last_real > 0, picked, ops.zeros_like(y))

        outputs = tree.map_structure(fill, outputs)
    last = tree.map_structure(lambda y: y[-1], outputs)
    return (outputs if return_sequences else None), last, final_state


def _where(mask, new, old):
    """``new`` where ``mask`` (``[..., batch]`` leading axes), else ``old``; the mask is
    broadcast over the trailing axes of ``new``."""
    extra = len(new.shape) - len(mask.shape)
    return ops.where(ops.reshape(mask, ops.shape(mask) + (1,) * extra), new, old)
