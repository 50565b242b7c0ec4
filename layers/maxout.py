"""Maxout units (Goodfellow et al. 2013), as in the output layer of Cho et al. (2014)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_papers")
class Maxout(keras.layers.Layer):
    """Maximum over consecutive groups of ``pool_size`` features (a maxout nonlinearity).

    Goodfellow, Warde-Farley, Mirza, Courville and Bengio, "Maxout Networks", ICML 2013. The
    decoder of Cho et al. (2014), Appendix A.1.2, uses pool size 2 over the pre-activation
    ``s' = O_h h' + O_y y_{t-1} + O_c c``:

    ```
    s_i = max(s'_{2i-1}, s'_{2i})        (1-based indices, as in the paper)
    ```

    so the pooled units are pairs of *adjacent* features: output ``i`` (0-based) is the maximum
    of inputs ``pool_size * i ... pool_size * i + pool_size - 1``. The layer has no weights;
    the linear map that precedes it belongs to the caller.

    Args:
        pool_size: number of pieces per maxout unit (2 in the paper). The last axis must be a
            multiple of it.

    Call args:
        inputs: ``[..., pool_size * units]``.

    Returns:
        ``[..., units]``.

    Example:

    ```python
    s_prime = keras.layers.Dense(2 * 500)(features)
    s = Maxout(pool_size=2)(s_prime)     # [..., 500]
    ```
    """

    def __init__(self, pool_size: int = 2, **kwargs):
        super().__init__(**kwargs)
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")
        self.pool_size = int(pool_size)
        self.supports_masking = True

    def _units(self, features: int | None) -> int | None:
        if features is None:
            return None
        if features % self.pool_size:
            raise ValueError(
                f"the last axis ({features}) must be a multiple of pool_size={self.pool_size}")
        return features // self.pool_size

    def call(self, inputs):
        units = self._units(inputs.shape[-1])
        shape = ops.shape(inputs)
        pieces = ops.reshape(inputs, (*shape[:-1], units, self.pool_size))
        return ops.max(pieces, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self._units(input_shape[-1]))

    def get_config(self) -> dict:
        config = super().get_config()
        config["pool_size"] = self.pool_size
        return config
