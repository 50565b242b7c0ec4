"""Layers kept in a list, made visible to TensorFlow's checkpoints.

Keras 3 tracks the layers of a list attribute for ``model.weights``, but does not hand them to
``tf.train.Checkpoint``: a model that keeps layers only in a list would save none of their
weights (``training.checkpoints.check_checkpointed`` refuses such a model).
:func:`track_layers` also sets each layer as an attribute named after it, which the checkpoint
does see.

Example:

```python
self.hidden = [keras.layers.Dense(200, name=f"tanh_{i}") for i in range(3)]
track_layers(self, self.hidden)   # self.tanh_0, self.tanh_1, self.tanh_2
```
"""

from __future__ import annotations

from typing import Iterable

import keras


def track_layers(owner: keras.layers.Layer, layers: Iterable[keras.layers.Layer]) -> None:
    """Sets each of ``layers`` as an attribute of ``owner`` named ``layer.name``."""
    for layer in layers:
        if hasattr(owner, layer.name):
            raise ValueError(f"{type(owner).__name__} already has an attribute {layer.name!r}")
        setattr(owner, layer.name, layer)
