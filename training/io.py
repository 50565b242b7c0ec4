"""Files of a run: atomic writes, JSON, and run metadata (hardware, package versions, commit).

Every results, config, history and plot file is written to a temporary name beside its target
and then renamed over it, so a run killed mid-write leaves the previous complete file, never
half of one. Local paths use the operating system directly (the data is flushed to disk before
the rename); paths with a scheme (``gs://``…) go through ``tf.io.gfile``, imported only then,
so reading results (``evaluate.py --table``) needs no TensorFlow.
"""

from __future__ import annotations

import io
import json
import os
import platform
import subprocess
import uuid
from importlib import metadata
from typing import Any, Iterator

PACKAGES = ("tensorflow", "tensorflow-text", "keras", "keras-hub", "tensorflow-datasets",
            "keras-tuner", "numpy")


def is_remote(path: str) -> bool:
    """Whether ``path`` names a file system other than the local one (``gs://``…)."""
    return "://" in str(path)


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def isdir(path: str) -> bool:
    return _gfile().isdir(path) if is_remote(path) else os.path.isdir(path)


def makedirs(path: str) -> None:
    if is_remote(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def remove(path: str) -> None:
    if is_remote(path):
        _gfile().remove(path)
    else:
        os.remove(path)


def walk(top: str) -> Iterator[tuple[str, list[str], list[str]]]:
    return _gfile().walk(top) if is_remote(top) else os.walk(top)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Writes ``data`` to a temporary file beside ``path`` and renames it over ``path``."""
    directory = os.path.dirname(path)
    if directory:
        makedirs(directory)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    if is_remote(path):
        gfile = _gfile()
        with gfile.GFile(tmp, "wb") as f:
            f.write(data)
        gfile.rename(tmp, path, overwrite=True)
        return
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_bytes(path: str) -> bytes:
    if is_remote(path):
        with _gfile().GFile(path, "rb") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def read_json(path: str) -> Any:
    """Parses a JSON file; a malformed one is a ``ValueError`` naming the file."""
    try:
        return json.loads(read_bytes(path).decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def save_figure(fig, path: str) -> None:
    """Saves a matplotlib figure as PNG, atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def to_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, numpy scalars numbers)."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def hardware(strategy=None) -> dict[str, Any]:
    import tensorflow as tf

    info = {"platform": platform.platform(), "processor": platform.processor() or
            platform.machine(), "cpu_count": os.cpu_count(),
            "gpus": [d.name for d in tf.config.list_logical_devices("GPU")],
            "tpus": [d.name for d in tf.config.list_logical_devices("TPU")]}
    if strategy is not None:
        info["strategy"] = type(strategy).__name__
        info["replicas"] = strategy.num_replicas_in_sync
    info["cpu_model"] = cpu_name()
    return info


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    if dirty.returncode != 0:  # e.g. the index was locked: say so rather than claim "clean"
        return out.stdout.strip() + "-status-unknown"
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
