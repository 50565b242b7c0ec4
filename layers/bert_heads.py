"""Sentence-level heads on a Transformer encoder (Devlin et al. 2019, §3.2 and §4.1).

BERT classifies a sentence (or a sentence pair) from one vector: the final hidden state of the
first token, ``[CLS]``, through the pre-trained "pooler" (a tanh dense layer, keras-hub's
``pooled_output``); fine-tuning adds a dropout and a softmax layer on top (§4.1). Sentence
encoders trained with mean pooling (Reimers & Gurevych 2019) use the average of the token states
instead; :class:`MaskedMeanPooling` computes it over real tokens only.

Example:

```python
outputs = backbone(features)
sentence = MaskedMeanPooling()(outputs["sequence_output"], features["padding_mask"])
logits = ClassificationHead(num_classes=2, dropout=0.1)(sentence)
```
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

from layers.tracking import track_layers


@keras.saving.register_keras_serializable(package="keras_papers")
class MaskedMeanPooling(keras.layers.Layer):
    """The mean of a sequence's vectors over its unmasked positions.

    ``mean_t x_t`` over the positions where ``mask`` is non-zero (or true). Padding never enters
    the sum or the count, so the output of an example does not depend on how far its batch is
    padded. An all-padding row gives zeros rather than NaN. The sum runs in float32 whatever the
    compute dtype, and the result is cast back to it.

    Call arguments:
        inputs: ``[batch, length, dim]``.
        mask: ``[batch, length]``, 1 (or true) on real tokens; ``None`` averages every position.

    Returns:
        ``[batch, dim]``.

    Example:

    ```python
    x = np.ones((1, 4, 3)); mask = np.array([[1, 1, 0, 0]])
    MaskedMeanPooling()(x, mask)          # [[1., 1., 1.]]
    ```
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        x = ops.cast(inputs, "float32")
        if mask is None:
            pooled = ops.mean(x, axis=1)
        else:
            weights = ops.expand_dims(ops.cast(mask, "float32"), -1)
            total = ops.sum(x * weights, axis=1)
            count = ops.maximum(ops.sum(weights, axis=1), 1.0)
            pooled = total / count
        return ops.cast(pooled, self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="keras_papers")
class ClassificationHead(keras.layers.Layer):
    """Dropout, optional hidden layers and a linear layer to class logits (§4.1).

    With no hidden layers this is BERT's fine-tuning head: ``W · dropout(c) + b`` with
    ``W ~ N(0, 0.02²)`` truncated and ``b = 0`` (google-research/bert ``run_classifier.py``).
    Each hidden layer adds ``dropout(activation(W_i h + b_i))``. The logits are float32 even
    under a mixed-precision policy; the softmax belongs to the loss (``from_logits=True``).

    Args:
        num_classes: the number of labels.
        hidden_dims: sizes of extra dense layers before the output layer (default none).
        activation: the hidden layers' activation.
        dropout: the dropout rate before every dense layer (Devlin et al. use 0.1).
        initializer_range: the standard deviation of the truncated-normal kernel initializer.
    """

    def __init__(self, num_classes: int, *, hidden_dims: Sequence[int] = (),
                 activation: str = "gelu", dropout: float = 0.1,
                 initializer_range: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.hidden_dims = tuple(int(d) for d in hidden_dims)
        self.activation = activation
        self.dropout = float(dropout)
        self.initializer_range = float(initializer_range)
        self._dropouts = [keras.layers.Dropout(self.dropout, name=f"dropout_{i}")
                          for i in range(len(self.hidden_dims) + 1)]
        self._hidden = [
            keras.layers.Dense(d, activation=activation, name=f"hidden_{i}",
                               kernel_initializer=keras.initializers.TruncatedNormal(
                                   stddev=self.initializer_range))
            for i, d in enumerate(self.hidden_dims)]
        track_layers(self, self._hidden)  # in the checkpoint as hidden_0, hidden_1, ...
        self._output = keras.layers.Dense(
            self.num_classes, name="logits", dtype="float32",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_range))

    def build(self, input_shape):
        shape = tuple(input_shape)
        for dense in self._hidden:
            dense.build(shape)
            shape = shape[:-1] + (dense.units,)
        self._output.build(shape)
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        for dropout, dense in zip(self._dropouts, self._hidden):
            x = dense(dropout(x, training=training))
        return self._output(self._dropouts[-1](x, training=training))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_classes,)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "hidden_dims": list(self.hidden_dims),
                       "activation": self.activation, "dropout": self.dropout,
                       "initializer_range": self.initializer_range})
        return config
