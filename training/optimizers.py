"""BERT's fine-tuning optimiser: AdamW with warm-up and linear decay (Devlin et al. 2019, §A.2).

google-research/bert ``optimization.py`` trains with Adam, β1 = 0.9, β2 = 0.999, ε = 1e-6, an
L2 weight decay of 0.01 *decoupled* from the gradient (Loshchilov & Hutter 2019) that skips
LayerNorm parameters and biases, a learning rate warmed up linearly over the first 10% of the
steps and then decayed linearly to 0, and gradients clipped to global norm 1.0.

Here the optimiser is :class:`BertAdamW`, a ``keras.optimizers.AdamW`` whose update is
``optimization.py``'s, and the schedule is :class:`WarmupLinearDecay`. Gradient clipping
belongs to the shared loop, which clips the global-batch gradient (``clip_norm``; see
``training.task.apply_gradients``), so :func:`bert_adamw` does not set Keras's per-replica
``clipnorm``.

Where ε goes matters. ``optimization.py`` applies no bias correction to the moments
(``m / (√v + ε)``); ``torch.optim.AdamW`` and Hugging Face follow the Adam paper's Algorithm 1
(``m̂ / (√v̂ + ε)``, ``bias_correction=True`` here). Keras's own Adam computes
``lr·√(1-β2^t)/(1-β1^t) · m / (√v + ε)``, the "ε-hat" form of the Adam paper's §2, whose
effective ε is ``ε / √(1-β2^t)``: 32 times larger at the first step and still 7 times larger
at step 20. Fine-tuning gradients are small per element (around 1e-5), so that larger ε damps
the early updates: fine-tuning MiniLM on 1,920 SST-2 sentences reached 60% dev accuracy with
Keras's Adam where ``torch.optim.AdamW`` on the same batches reached 79%
(``results/bert_benchmark.md``). Hence this subclass.

Which variables are decayed is decided on the last component of a variable's path: keras-hub's
LayerNorm parameters are ``gamma``/``beta`` and biases ``bias`` (e.g. the ``gamma`` of
``transformer_layer_0/self_attention_layer_norm/gamma``), matched by :data:`NO_DECAY_NAMES`.
Keras itself matches the patterns against ``variable.name``, which is that last component for a
Keras variable but the whole path (``…/self_attention_layer_norm/gamma:0``) for the
``tf.Variable`` the TensorFlow backend decays, so the same pattern could decay a variable that
:func:`uses_weight_decay` reports as excluded; :class:`BertAdamW` matches the last component in
both cases.

Example:

```python
optimizer = bert_adamw(learning_rate=2e-5, total_steps=6315, warmup_proportion=0.1)
optimizer.build(model.trainable_variables)
decayed = [v.path for v in model.trainable_variables if uses_weight_decay(optimizer, v)]
```
"""

from __future__ import annotations

import re

import keras
from keras import ops

#: Name patterns (regular expressions searched in the last component of a variable's path)
#: excluded from weight decay: LayerNorm scale and offset, and every bias.
NO_DECAY_NAMES = ("^gamma$", "^beta$", "^bias$")


@keras.saving.register_keras_serializable(package="keras_papers")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak_learning_rate``, then linear decay to 0 at ``total_steps``.

    This is google-research/bert's schedule exactly: the decay line is
    ``peak · (1 - step / total_steps)`` from step 0 (``polynomial_decay`` with power 1), and
    during the first ``warmup_steps`` steps it is replaced by ``peak · step / warmup_steps``:

    - ``step < warmup_steps``: ``peak · step / warmup_steps``
    - ``step ≥ warmup_steps``: ``peak · max(0, 1 - step / total_steps)``

    (so at the end of the warm-up the rate is ``peak · (1 - warmup_steps / total_steps)``, 90% of
    the peak with a 10% warm-up). With ``decay_from_peak=True`` the decay instead starts at the
    peak and reaches 0 at ``total_steps`` (Hugging Face's ``get_linear_schedule_with_warmup``).
    ``step`` is the optimiser's ``iterations``: the first update uses step 0.

    Args:
        peak_learning_rate: the rate the warm-up climbs to (Devlin et al.: 5e-5, 3e-5, 2e-5).
        total_steps: the number of training steps.
        warmup_steps: the length of the warm-up (10% of ``total_steps`` in BERT).
        decay_from_peak: see above.
    """

    def __init__(self, peak_learning_rate: float, total_steps: int, warmup_steps: int,
                 decay_from_peak: bool = False, name: str = "warmup_linear_decay"):
        if total_steps <= 0:
            raise ValueError(f"total_steps must be positive, got {total_steps}")
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"warmup_steps={warmup_steps} must lie in [0, total_steps="
                             f"{total_steps}]")
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay_from_peak = bool(decay_from_peak)
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = ops.cast(self.peak_learning_rate, "float32")
        total = float(self.total_steps)
        warmup = float(self.warmup_steps)
        if self.decay_from_peak:
            decay = peak * (total - step) / max(total - warmup, 1.0)
        else:
            decay = peak * (1.0 - step / total)
        decay = ops.maximum(decay, 0.0)
        if self.warmup_steps == 0:
            return decay
        warm = peak * step / warmup
        return ops.where(step < warmup, warm, decay)

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "decay_from_peak": self.decay_from_peak,
                "name": self.name}


@keras.saving.register_keras_serializable(package="keras_papers")
class BertAdamW(keras.optimizers.AdamW):
    """AdamW with BERT's update rule (google-research/bert ``AdamWeightDecayOptimizer``).

    For a gradient ``g`` of a variable ``w`` at step ``t`` (from 1), learning rate ``lr`` and
    weight decay ``λ`` (0 for the variables excluded with ``exclude_from_weight_decay``):

    ```
    m ← β1 m + (1 - β1) g
    v ← β2 v + (1 - β2) g²
    w ← w - lr · (m / (√v + ε) + λ w)                          bias_correction=False (BERT)
    w ← w - lr · (m̂ / (√v̂ + ε) + λ w),  m̂ = m / (1 - β1^t),   bias_correction=True
                                        v̂ = v / (1 - β2^t)     (torch.optim.AdamW)
    ```

    The decay is decoupled from the moments (Loshchilov & Hutter 2019) and uses ``w`` before
    the step, as both references do. Keras's ``AdamW`` differs in where ``ε`` enters (see the
    module docstring). ``amsgrad`` is not supported.

    Args:
        bias_correction: divide the moments by ``1 - β^t`` (Adam's Algorithm 1); ``False``,
            the default, is BERT's code.
        fused: on the TensorFlow backend, update each variable with TensorFlow's fused
            in-place kernels instead of separate element-wise operations; the same rule,
            tested equal; ``fused=False`` is the readable reference. It cuts BERT's update
            from 2,222 operations a step to 197; end to end, with the single evaluation, it
            measured 1.35× (``results/performance.md``, C5, E1b, E1c).
        **kwargs: ``keras.optimizers.AdamW``'s arguments.

    Example:

    ```python
    optimizer = BertAdamW(learning_rate=2e-5, weight_decay=0.01, epsilon=1e-6)
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_NAMES))
    ```
    """

    def __init__(self, *args, bias_correction: bool = False, fused: bool = True, **kwargs):
        if kwargs.get("amsgrad"):
            raise ValueError("BertAdamW does not implement amsgrad")
        super().__init__(*args, **kwargs)
        self.bias_correction = bool(bias_correction)
        self.fused = bool(fused) and keras.backend.backend() == "tensorflow"

    # The two protected hooks below are Keras's own places for a subclass to decide which
    # variables decay and how; Keras has no public hook for either.
    def _apply_weight_decay(self, variables):
        if not self.fused:  # fused: the decay is part of each variable's update_step
            super()._apply_weight_decay(variables)

    def _use_weight_decay(self, variable):
        """Excluded if a pattern matches the last path component (see the module docstring)."""
        name = variable.name.split(":")[0].rsplit("/", 1)[-1]
        pattern = getattr(self, "_exclude_from_weight_decay_pattern", None)
        if pattern is not None and re.search(pattern, name):
            return False
        return super()._use_weight_decay(variable)

    def update_step(self, gradient, variable, learning_rate):
        if self.fused:
            return self._fused_update_step(gradient, variable, learning_rate)
        # Keras applies the decoupled weight decay (w ← w - lr·λ·w) before this step.
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        m_hat, v_hat = m, v
        if self.bias_correction:
            step = ops.cast(self.iterations + 1, variable.dtype)
            m_hat = ops.divide(m, 1 - ops.power(ops.cast(self.beta_1, variable.dtype), step))
            v_hat = ops.divide(v, 1 - ops.power(ops.cast(self.beta_2, variable.dtype), step))
        self.assign_sub(variable, ops.multiply(
            lr, ops.divide(m_hat, ops.add(ops.sqrt(v_hat), self.epsilon))))

    def _fused_update_step(self, gradient, variable, learning_rate):
        """The same rule through TensorFlow's fused, in-place kernels.

        Unfused, the update is about twenty element-wise passes over each variable (and the
        schedule is evaluated again for every decayed variable). ``ResourceApplyAdam`` does
        ``m``, ``v`` and ``w`` in one multi-threaded pass: it computes
        ``w ← w - lr·√(1-p2)/(1-p1) · m / (√v + ε')``, which is BERT's rule with ``p1 = p2 = 0``,
        ``ε' = ε``, and Adam's Algorithm 1 (``bias_correction``) with ``p = β^t`` and
        ``ε' = ε·√(1-β2^t)``. The decay ``w ← w - lr·λ·w`` comes first, from ``w`` before the
        step, as Keras's own order. The kernel forms ``1 - β`` in float32 (``1 - β2`` is then
        1.3e-5 away from 0.001, relatively), the element-wise rule in float64; the tests bound
        the difference. XLA compiles both kernels when the step is compiled.
        """
        import tensorflow as tf

        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype)
        handle = _handle(variable)
        if self.weight_decay and self._use_weight_decay(variable):
            tf.raw_ops.ResourceApplyGradientDescent(
                var=handle, alpha=lr * tf.cast(self.weight_decay, dtype),
                delta=tf.convert_to_tensor(variable))
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        epsilon = tf.cast(self.epsilon, dtype)
        if self.bias_correction:
            step = tf.cast(self.iterations + 1, dtype)
            power_1, power_2 = tf.pow(beta_1, step), tf.pow(beta_2, step)
            epsilon = epsilon * tf.sqrt(1 - power_2)
        else:
            power_1 = power_2 = tf.zeros([], dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=handle, m=_handle(m), v=_handle(v), beta1_power=power_1, beta2_power=power_2,
            lr=lr, beta1=beta_1, beta2=beta_2, epsilon=epsilon,
            grad=tf.cast(tf.convert_to_tensor(gradient), dtype))

    def get_config(self):
        config = super().get_config()
        config["bias_correction"] = self.bias_correction
        config["fused"] = self.fused
        return config


def _handle(variable):
    """The resource handle of a Keras or TensorFlow variable (this replica's, when mirrored)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle


def bert_adamw(learning_rate: float, total_steps: int, *, warmup_proportion: float = 0.1,
               weight_decay: float = 0.01, beta_1: float = 0.9, beta_2: float = 0.999,
               epsilon: float = 1e-6, no_decay_names: tuple[str, ...] = NO_DECAY_NAMES,
               decay_from_peak: bool = False, bias_correction: bool = False,
               fused: bool = True) -> BertAdamW:
    """:class:`BertAdamW` configured as BERT's fine-tuning optimiser (§A.2, §A.3).

    Args:
        learning_rate: the peak learning rate.
        total_steps: training steps; the schedule reaches 0 there.
        warmup_proportion: the fraction of ``total_steps`` spent warming up (0.1).
        weight_decay: the decoupled decay rate (0.01); the decay of a variable per step is
            ``lr_t · weight_decay · w``.
        beta_1, beta_2, epsilon: Adam's constants (0.9, 0.999, 1e-6).
        no_decay_names: variables whose name matches one of these are not decayed.
        decay_from_peak: see :class:`WarmupLinearDecay`.
        bias_correction: see :class:`BertAdamW` (``False``: BERT's code).
        fused: see :class:`BertAdamW`.

    Returns:
        An unbuilt optimiser; call ``optimizer.build(variables)`` (inside the strategy scope).
    """
    warmup_steps = int(warmup_proportion * total_steps)
    schedule = WarmupLinearDecay(learning_rate, total_steps, warmup_steps,
                                 decay_from_peak=decay_from_peak)
    optimizer = BertAdamW(learning_rate=schedule, weight_decay=weight_decay, beta_1=beta_1,
                          beta_2=beta_2, epsilon=epsilon, bias_correction=bias_correction,
                          fused=fused)
    optimizer.exclude_from_weight_decay(var_names=list(no_decay_names))
    return optimizer


def uses_weight_decay(optimizer: keras.optimizers.Optimizer, variable) -> bool:
    """Whether ``optimizer`` decays ``variable`` (reads through a ``LossScaleOptimizer``)."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if not inner.weight_decay:
        return False
    return inner._use_weight_decay(variable)
