"""JPEG decoding and per-encoder preprocessing for image captioning (Flickr8k).

Images are decoded as RGB (``tf.io.decode_jpeg(channels=3)``, so grayscale JPEGs get 3 channels),
resized to ``size × size`` with bilinear interpolation (the aspect ratio is not kept, as in the
TensorFlow image-captioning tutorial that pairs Show-Attend-Tell with InceptionV3) and then scaled
by the encoder's preprocessing, named by ``preprocess``:

- ``"inception"`` (default, InceptionV3 at 299): ``x / 127.5 - 1``, in [-1, 1], exactly as
  ``keras.applications.inception_v3.preprocess_input``;
- ``"inception_2015"`` (Google's 2015 InceptionV3 graph at 299, :mod:`weights.inception_v3`):
  ``x / 128 - 1``, in [-1, 0.9921875], as that graph was trained and is used for FID;
- ``"caffe"`` (VGG19 at 224): RGB → BGR, then the ImageNet channel means are subtracted, no
  scaling, exactly as ``keras.applications.vgg19.preprocess_input``;
- ``"efficientnet_lite"`` (EfficientNet-Lite at 224): ``(x - 127) / 128``, the mean and standard
  deviation of the TensorFlow EfficientNet-Lite models ("inception-style" values chosen there for
  post-training quantization).

``preprocess`` may also be a function from float32 ``[..., 3]`` RGB pixels in [0, 255] to the
model's input.

A corrupt or truncated image raises :class:`~datasets.errors.DataFormatError` naming the file:
:func:`load_image` (JPEG, PNG, GIF or BMP; a large JPEG decoded at a reduced scale) checks
eagerly, and :func:`image_batches` (for feature extraction) finds the
offending file of a failing batch. Inside your own ``tf.data`` pipeline, :func:`decode_image`
fails with TensorFlow's error, which does not name the file.

Example:

```python
split = datasets.load("flickr8k", "test", data_dir)
for paths, images in image_batches(split.columns["image_path"], batch_size=32):
    features = encoder(images)          # images: float32 [32, 299, 299, 3] in [-1, 1]
for paths, images in image_batches(paths, 32, size=224, preprocess="caffe"):
    features = vgg_encoder(images)      # images: float32 [32, 224, 224, 3], BGR, mean-centred
```
"""

from __future__ import annotations

import re
from typing import Callable, Iterator, Sequence, Union

import tensorflow as tf

from datasets import files
from datasets.errors import DataFormatError

INCEPTION_SIZE = 299
#: ImageNet channel means in BGR order (``keras.applications.imagenet_utils``, mode "caffe").
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
#: EfficientNet-Lite's input normalization, ``(x - mean) / stddev`` on every channel.
EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STDDEV = 127.0, 128.0

Preprocess = Union[str, Callable[[tf.Tensor], tf.Tensor]]


def preprocess_inception(image: tf.Tensor) -> tf.Tensor:
    """Scales pixel values in [0, 255] to [-1, 1] (InceptionV3's ``preprocess_input``)."""
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def preprocess_inception_2015(image: tf.Tensor) -> tf.Tensor:
    """Scales pixel values in [0, 255] to ``x / 128 - 1`` (the 2015 InceptionV3 graph)."""
    return tf.cast(image, tf.float32) / 128.0 - 1.0


def preprocess_caffe(image: tf.Tensor) -> tf.Tensor:
    """RGB in [0, 255] → BGR minus the ImageNet means (VGG19's ``preprocess_input``)."""
    return tf.cast(image, tf.float32)[..., ::-1] - tf.constant(CAFFE_MEAN_BGR, tf.float32)


def preprocess_efficientnet_lite(image: tf.Tensor) -> tf.Tensor:
    """RGB in [0, 255] → ``(x - 127) / 128`` (EfficientNet-Lite's normalization)."""
    return (tf.cast(image, tf.float32) - EFFICIENTNET_LITE_MEAN) / EFFICIENTNET_LITE_STDDEV


PREPROCESSING = {"inception": preprocess_inception, "inception_2015": preprocess_inception_2015,
                 "caffe": preprocess_caffe,
                 "efficientnet_lite": preprocess_efficientnet_lite}


def get_preprocess(preprocess: Preprocess) -> Callable[[tf.Tensor], tf.Tensor]:
    """Returns the preprocessing function named ``preprocess`` (or ``preprocess`` if callable)."""
    if callable(preprocess):
        return preprocess
    if preprocess not in PREPROCESSING:
        raise ValueError(f"unknown image preprocessing {preprocess!r}: expected one of "
                         f"{sorted(PREPROCESSING)} or a function")
    return PREPROCESSING[preprocess]


def decode_jpeg(data: tf.Tensor, size: int = INCEPTION_SIZE,
                preprocess: Preprocess = "inception") -> tf.Tensor:
    """Decodes, resizes and scales the bytes of one JPEG; graph-compatible (a serving
    signature on encoded images uses it).

    Args:
        data: a scalar string tensor, the file's bytes.
        size: the output height and width.
        preprocess: the encoder's preprocessing, a name in ``PREPROCESSING`` or a function.

    Returns:
        float32 ``[size, size, 3]`` (in [-1, 1] for the default ``"inception"``).
    """
    scale = get_preprocess(preprocess)
    image = tf.io.decode_jpeg(data, channels=3)
    return scale(tf.image.resize(image, [size, size], method="bilinear"))


def decode_image(path: tf.Tensor, size: int = INCEPTION_SIZE,
                 preprocess: Preprocess = "inception") -> tf.Tensor:
    """Reads a JPEG file and :func:`decode_jpeg` s it; graph-compatible (``Dataset.map``)."""
    return decode_jpeg(tf.io.read_file(path), size, preprocess)


#: The largest image :func:`load_image` decodes, in pixels (about 100 megapixels): a JPEG is
#: decoded at 1/2, 1/4 or 1/8 of its size when that still covers the output, so only a larger
#: image of another format, or a JPEG over 8 × this, is refused before it is decoded.
MAX_PIXELS = 100_000_000
#: What :func:`load_image` reads (``tf.io.decode_image``); an animated GIF gives its first frame.
FORMATS = ("JPEG", "PNG", "GIF", "BMP")


def _jpeg_ratio(data: bytes, size: int) -> int:
    """The largest JPEG decoding scale (1, 2, 4 or 8) whose image still covers ``size``."""
    height, width = (int(v) for v in tf.io.extract_jpeg_shape(data)[:2])
    ratio = 1
    while ratio < 8 and min(height, width) // (ratio * 2) >= size:
        ratio *= 2
    return ratio


def _image_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) read from a PNG, GIF or BMP header without decoding; None otherwise."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[8:10], "little"), int.from_bytes(data[6:8], "little")
    if data[:2] == b"BM" and len(data) >= 26:
        return (abs(int.from_bytes(data[22:26], "little", signed=True)),
                int.from_bytes(data[18:22], "little", signed=True))
    return None


def load_image(path: str, size: int = INCEPTION_SIZE,
               preprocess: Preprocess = "inception") -> tf.Tensor:
    """Reads an image file (JPEG, PNG, GIF or BMP), resizes and scales it, with clear errors.

    A large JPEG is decoded at a reduced scale (libjpeg's 1/2, 1/4 or 1/8) that still covers
    ``size`` × ``size``, so an 8000 × 8000 photo costs about 16 MB, not 5 GB; an image of more
    than :data:`MAX_PIXELS` that cannot be decoded smaller is refused before decoding.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: the file is not an image of :data:`FORMATS`, is corrupt or truncated,
            or is too large; the message names the file.
    """
    scale = get_preprocess(preprocess)
    data = files.read_bytes(path)
    ratio = 1
    try:
        if tf.io.is_jpeg(data):
            ratio = _jpeg_ratio(data, size)
            height, width = (int(v) for v in tf.io.extract_jpeg_shape(data)[:2])
        else:
            height, width = _image_size(data) or (0, 0)
            if not height:
                raise DataFormatError(f"not an image of a known format ({', '.join(FORMATS)})",
                                      path=path, field="image")
        if height * width > MAX_PIXELS * ratio * ratio:
            raise DataFormatError(f"{width} × {height} pixels is more than the "
                                  f"{MAX_PIXELS:,} this reads", path=path, field="image")
        if tf.io.is_jpeg(data):
            image = tf.io.decode_jpeg(data, channels=3, ratio=ratio,
                                      try_recover_truncated=False)
        else:
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
        reason = re.sub(r"^\{\{.*?\}\}\s*|\s*\[Op:\w+\]$", "", e.message.strip())
        raise DataFormatError(f"corrupt image ({reason})", path=path, field="image") from None
    return scale(tf.image.resize(image, [size, size], method="bilinear"))


def image_batches(paths: Sequence[str], batch_size: int, size: int = INCEPTION_SIZE,
                  preprocess: Preprocess = "inception"
                  ) -> Iterator[tuple[tf.Tensor, tf.Tensor]]:
    """Yields ``(paths, images)`` batches, in order, decoding in parallel with ``tf.data``.

    Args:
        paths: JPEG files.
        batch_size: images per batch (the last batch may be smaller).
        size: the output height and width.
        preprocess: the encoder's preprocessing, a name in ``PREPROCESSING`` or a function.

    Yields:
        ``(string [b], float32 [b, size, size, 3])``.

    Raises:
        DataFormatError: a file is missing or not a decodable JPEG; the message names it.
    """
    get_preprocess(preprocess)  # an unknown name fails here, not inside tf.data
    paths = list(paths)
    ds = (tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string))
          .map(lambda p: (p, decode_image(p, size, preprocess)),
               num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
          .batch(batch_size).prefetch(2))
    iterator = iter(ds)
    start = 0
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError,
                tf.errors.DataLossError) as e:
            for path in paths[start:start + batch_size]:
                load_image(path, size, preprocess)  # raises naming the file
            raise DataFormatError(f"decoding failed in images {start}..{start + batch_size - 1}:"
                                  f" {e.message}") from None
        start += batch_size
        yield batch
