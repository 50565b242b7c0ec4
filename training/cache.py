"""Expensive preparation shared by runs: computed once, stored by content, read by everyone.

A frozen CNN's features of the Flickr8k images do not depend on the run that needs them, only
on the encoder, its weights and the images. :func:`cached_array` stores such an array under
``CACHE_DIR/<name>/<sha256 of the key>.npy`` (with the key beside it as JSON, for a reader), so
every run with the same key reads the same file and a different encoder or image list gets
its own. The chief process computes a missing entry and writes it atomically (a temporary file
renamed into place: a killed process never leaves half a file); every other worker waits at
the barrier until it is there. The cache folder is ``--cache_dir`` (default
``$KERAS_PAPERS_CACHE_DIR`` or ``~/.cache/keras_papers``), outside any model dir.

Example:

```python
features = cached_array(env, "flickr8k_features",
                        {"encoder": "efficientnet_lite0", "weights": "sha256:…", "images": ids},
                        build=lambda: extract_features(...))
```
"""

from __future__ import annotations

import hashlib
import io as bytes_io
import json
import os
from typing import Any, Callable

import numpy as np

from training import io


def key_digest(key: Any) -> str:
    """The SHA-256 of a JSON-able key (keys sorted)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def cache_path(cache_dir: str, name: str, key: Any) -> str:
    return os.path.join(cache_dir, name, key_digest(key) + ".npy")


def cached_array(env, name: str, key: Any, build: Callable[[], np.ndarray], *,
                 log: Callable[[str], None] = print) -> np.ndarray:
    """The array stored for ``(name, key)``, computed by ``build`` on the chief if missing.

    Args:
        env: the :class:`training.task.RunEnv` of the run (cache dir, chief, barrier).
        name: a folder name for this kind of entry, e.g. ``"flickr8k_features"``.
        key: everything the array depends on (JSON-able).
        build: computes the array (called on the chief only, and only when missing).
        log: where to say what happens.

    Returns:
        The array (memory-mapped from the cache file).
    """
    path = cache_path(env.cache_dir, name, key)
    if env.is_chief and not io.exists(path):
        log(f"computing {name} once into the cache {path}")
        array = np.asarray(build())
        buffer = bytes_io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        io.atomic_write_json(path[:-len(".npy")] + ".json", key)
        io.atomic_write_bytes(path, buffer.getvalue())
    env.barrier()
    if not io.exists(path):
        raise FileNotFoundError(f"{path} is missing after the chief prepared it: the workers "
                                "must share --cache_dir")
    if io.is_remote(path):
        return np.load(bytes_io.BytesIO(io.read_bytes(path)), allow_pickle=False)
    return np.load(path, mmap_mode="r", allow_pickle=False)
