"""JPEG decoding and InceptionV3 preprocessing for image captioning (Flickr8k).

Images are decoded as RGB (``tf.io.decode_jpeg(channels=3)``, so grayscale JPEGs get 3 channels),
resized to 299 × 299 with bilinear interpolation (the aspect ratio is not kept, as in the
TensorFlow image-captioning tutorial that pairs Show-Attend-Tell with InceptionV3), and scaled to
[-1, 1] exactly as ``keras.applications.inception_v3.preprocess_input`` does (``x / 127.5 - 1``).

A corrupt or truncated JPEG raises :class:`~datasets.errors.DataFormatError` naming the file:
:func:`load_image` checks eagerly, and :func:`image_batches` (for feature extraction) finds the
offending file of a failing batch. Inside your own ``tf.data`` pipeline, :func:`decode_image`
fails with TensorFlow's error, which does not name the file.

Example:

```python
split = datasets.load("flickr8k", "test", data_dir)
for paths, images in image_batches(split.columns["image_path"], batch_size=32):
    features = encoder(images)          # images: float32 [32, 299, 299, 3] in [-1, 1]
```
"""

from __future__ import annotations

import re
from typing import Iterator, Sequence

import tensorflow as tf

from datasets import files
from datasets.errors import DataFormatError

INCEPTION_SIZE = 299


def preprocess_inception(image: tf.Tensor) -> tf.Tensor:
    """Scales pixel values in [0, 255] to [-1, 1] (InceptionV3's ``preprocess_input``)."""
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def decode_image(path: tf.Tensor, size: int = INCEPTION_SIZE) -> tf.Tensor:
    """Reads, decodes, resizes and scales one JPEG; graph-compatible (for ``Dataset.map``).

    Args:
        path: a scalar string tensor.
        size: the output height and width.

    Returns:
        float32 ``[size, size, 3]`` in [-1, 1].
    """
    image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
    image = tf.image.resize(image, [size, size], method="bilinear")
    return preprocess_inception(image)


def load_image(path: str, size: int = INCEPTION_SIZE) -> tf.Tensor:
    """Eager :func:`decode_image` with clear errors.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: the file is not a decodable JPEG (corrupt or truncated).
    """
    data = files.read_bytes(path)
    if not tf.io.is_jpeg(data):
        raise DataFormatError("not a JPEG file", path=path, field="jpeg")
    try:
        image = tf.io.decode_jpeg(data, channels=3, try_recover_truncated=False)
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
        reason = re.sub(r"^\{\{.*?\}\}\s*|\s*\[Op:\w+\]$", "", e.message.strip())
        raise DataFormatError(f"corrupt JPEG ({reason})", path=path, field="jpeg") from None
    return preprocess_inception(tf.image.resize(image, [size, size], method="bilinear"))


def image_batches(paths: Sequence[str], batch_size: int, size: int = INCEPTION_SIZE
                  ) -> Iterator[tuple[tf.Tensor, tf.Tensor]]:
    """Yields ``(paths, images)`` batches, in order, decoding in parallel with ``tf.data``.

    Args:
        paths: JPEG files.
        batch_size: images per batch (the last batch may be smaller).
        size: the output height and width.

    Yields:
        ``(string [b], float32 [b, size, size, 3])``.

    Raises:
        DataFormatError: a file is missing or not a decodable JPEG; the message names it.
    """
    paths = list(paths)
    ds = (tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string))
          .map(lambda p: (p, decode_image(p, size)), num_parallel_calls=tf.data.AUTOTUNE,
               deterministic=True)
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
                load_image(path, size)  # raises naming the file
            raise DataFormatError(f"decoding failed in images {start}..{start + batch_size - 1}:"
                                  f" {e.message}") from None
        start += batch_size
        yield batch
