"""Flickr8k (Hodosh, Young & Hockenmaier, JAIR 2013): 8,000 images with 5 captions each.

Formats parsed, as ``Flickr8k_text.zip`` and ``Flickr8k_Dataset.zip`` ship them:

- ``Flickr8k.token.txt``: one caption per line, ``<image>.jpg#<k><TAB><caption>`` with ``k`` in
  0-4. Quirk of the original file: the captions of ``2258277193_586949ec62.jpg`` are keyed
  ``2258277193_586949ec62.jpg.1#<k>``; such a ``.jpg.<n>`` suffix is mapped back to ``.jpg`` and
  reported in ``info["renamed_ids"]``. Every image must have exactly the captions 0-4.
- ``Flickr_8k.{train,dev,test}Images.txt``: the standard split lists (6,000 / 1,000 / 1,000
  image names, one per line; the Karpathy split of Flickr8k is the same).
- a folder of JPEGs named as in the lists.

The text files are looked for in ``flickr8k/text/``, ``flickr8k/`` or ``Flickr8k_text/`` under
``data_dir``; the images in ``flickr8k/images/``, ``flickr8k/Flicker8k_Dataset/`` (sic, the
zip's folder name), ``Flicker8k_Dataset/`` or ``Flickr8k_Dataset/``, or ``image_dir``.

A listed image whose JPEG is absent is never skipped silently: one line per split logs the count
(and one name), and the count and the first names are put in ``info["missing_images"]`` /
``info["missing_image_examples"]``. With
``require_images=True`` (default) its row is dropped and counted as ``dropped["missing_image"]``;
with ``require_images=False`` every listed image is kept (use this for caption-only work such as
building the vocabulary from all 6,000 train images).

Schema: ``{"image_id": tf.string ("<name>.jpg"), "image_path": tf.string,
"image_sha256": tf.string, "captions": tf.string [5]}`` (the raw captions, in the order ``#0``
... ``#4``). ``image_sha256`` is the hex SHA-256 of the image file's bytes, so an image replaced
under the same name changes the split's fingerprint (a run refuses to resume on it) and every
cache key built from it (``datasets.files.content_sha256``; about 2 s for 6,000 images, once
per process). Rows without an image file (``require_images=False``) have an empty digest. There
is no TFDS copy, so ``data_dir`` is required. Decoding and caption tokenization are in
:mod:`datasets.images` and :mod:`datasets.captions`.
"""

from __future__ import annotations

import logging
import os
import re

import tensorflow as tf

from datasets import files
from datasets.core import DatasetInfo, LoadedSplit
from datasets.errors import DataFormatError, MissingDataError
from datasets.paths import require_data_dir

CAPTIONS_PER_IMAGE = 5
TOKEN_FILE = "Flickr8k.token.txt"
SPLIT_FILES = {"train": "Flickr_8k.trainImages.txt", "dev": "Flickr_8k.devImages.txt",
               "test": "Flickr_8k.testImages.txt"}
_TEXT_DIRS = ("flickr8k/text", "flickr8k", "Flickr8k_text")
_IMAGE_DIRS = ("flickr8k/images", "flickr8k/Flicker8k_Dataset", "Flicker8k_Dataset",
               "Flickr8k_Dataset")
_KEY = re.compile(r"^(?P<image>[^#\s]+?\.jpg)(?P<suffix>\.\d+)?#(?P<k>\d+)$")
#: how many missing image names ``info`` and the log list.
MISSING_EXAMPLES = 10

logger = logging.getLogger(__name__)


def read_captions(path: str) -> tuple[dict[str, list[str]], list[str]]:
    """Parses ``Flickr8k.token.txt``.

    Returns:
        ``(captions, renamed)``: image name → its 5 captions in order ``#0..#4``, and the
        names whose ``.jpg.<n>`` suffix was mapped back to ``.jpg``.

    Raises:
        DataFormatError: a line without a TAB, a malformed ``<image>#<k>`` key, an empty
            caption, a repeated key, or an image without exactly the captions 0-4.
    """
    by_image: dict[str, dict[int, str]] = {}
    renamed = []
    for n, line in files.read_lines(path):
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataFormatError(f"expected '<image>#<k><TAB><caption>', found {len(parts)} "
                                  "tab-separated fields", path=path, line=n)
        key, caption = parts[0].strip(), parts[1].strip()
        match = _KEY.match(key)
        if not match or int(match["k"]) >= CAPTIONS_PER_IMAGE:
            raise DataFormatError(f"malformed key {key!r}: expected <image>.jpg#<0-4>",
                                  path=path, line=n, field="image#k")
        image, k = match["image"], int(match["k"])
        if match["suffix"] and image + match["suffix"] not in renamed:
            renamed.append(image + match["suffix"])
        if not caption:
            raise DataFormatError("empty caption", path=path, line=n, field="caption")
        slots = by_image.setdefault(image, {})
        if k in slots:
            raise DataFormatError(f"caption {image}#{k} appears twice", path=path, line=n,
                                  field="image#k")
        slots[k] = caption
    captions = {}
    for image, slots in by_image.items():
        if sorted(slots) != list(range(CAPTIONS_PER_IMAGE)):
            raise DataFormatError(f"image {image} has captions {sorted(slots)}, expected 0-4",
                                  path=path, field="image#k")
        captions[image] = [slots[k] for k in range(CAPTIONS_PER_IMAGE)]
    return captions, renamed


def read_split_list(path: str, captions: dict[str, list[str]]) -> list[str]:
    """Parses a ``Flickr_8k.*Images.txt`` list; every image must be unique and have captions."""
    images, seen = [], set()
    for n, line in files.read_lines(path):
        image = line.strip()
        if image in seen:
            raise DataFormatError(f"image {image} listed twice", path=path, line=n)
        if image not in captions:
            raise DataFormatError(f"image {image} has no captions in {TOKEN_FILE}", path=path,
                                  line=n)
        seen.add(image)
        images.append(image)
    return images


def _image_dir(data_dir: str, image_dir: str | None, require_images: bool) -> str | None:
    if image_dir is not None:
        candidates = [image_dir]
    else:
        candidates = [files.join(data_dir, d) for d in _IMAGE_DIRS]
    for folder in candidates:
        if tf.io.gfile.isdir(folder):
            return folder
    if require_images:
        raise MissingDataError("Flickr8k image folder not found; tried:\n  "
                               + "\n  ".join(candidates)
                               + "\n(pass require_images=False for captions only)")
    return None


def load_flickr8k(split: str, data_dir: str | None, *, require_images: bool = True,
                  image_dir: str | None = None) -> LoadedSplit:
    """Flickr8k: ``{"image_id", "image_path", "captions" [5]}``; see the module docstring."""
    data_dir = require_data_dir(data_dir, "flickr8k")
    token_path = files.find_file(data_dir, [f"{d}/{TOKEN_FILE}" for d in _TEXT_DIRS],
                                 "Flickr8k captions")
    text_dir = os.path.dirname(token_path)
    list_path = files.find_file(text_dir, [SPLIT_FILES[split]], f"Flickr8k {split} list")
    captions, renamed = read_captions(token_path)
    images = read_split_list(list_path, captions)
    listed = len(images)

    folder = _image_dir(data_dir, image_dir, require_images)
    present = set(tf.io.gfile.listdir(folder)) if folder else set()
    missing = [image for image in images if image not in present]
    folder = folder or files.join(data_dir, _IMAGE_DIRS[0])
    dropped = {}
    if missing:
        # one counted line per split; the names are in info["missing_image_examples"]
        logger.warning("Flickr8k %s: %d of %d listed images are not in %s (e.g. %s); %s",
                       split, len(missing), len(images), folder, missing[0],
                       "their rows are dropped" if require_images else "their rows are kept")
        if require_images:
            dropped["missing_image"] = len(missing)
            absent = set(missing)
            images = [image for image in images if image not in absent]
    paths = [files.join(folder, image) for image in images]
    absent = set(missing)
    return LoadedSplit(
        "flickr8k", split,
        {"image_id": images, "image_path": paths,
         "image_sha256": ["" if image in absent else files.content_sha256(path)
                          for image, path in zip(images, paths)],
         "captions": [captions[image] for image in images]},
        {"image_id": tf.TensorSpec([], tf.string), "image_path": tf.TensorSpec([], tf.string),
         "image_sha256": tf.TensorSpec([], tf.string),
         "captions": tf.TensorSpec([CAPTIONS_PER_IMAGE], tf.string)},
        label_names=(), dropped=dropped, source=[token_path, list_path, folder],
        info={"listed_images": listed,
              "missing_images": len(missing),
              "missing_image_examples": missing[:MISSING_EXAMPLES],
              "renamed_ids": renamed})


FLICKR8K = DatasetInfo("flickr8k", load_flickr8k, ("train", "dev", "test"), ("captions",), None,
                       "Flickr8k images with 5 captions each (standard 6k/1k/1k split)")
