"""Atomic writes and run metadata (hardware, package versions, git commit).

Every results, history and plot file is written to a temporary name beside its target and then
renamed over it, so a run killed mid-write leaves the previous complete file, never half of one.
Paths may be local or ``gs://`` (``tf.io.gfile``).
"""

from __future__ import annotations

import io
import json
import os
import platform
import subprocess
import uuid
from importlib import metadata
from typing import Any

import tensorflow as tf

PACKAGES = ("tensorflow", "tensorflow-text", "keras", "keras-hub", "tensorflow-datasets",
            "keras-tuner", "numpy")


def atomic_write_bytes(path: str, data: bytes) -> None:
    directory = os.path.dirname(path)
    if directory:
        tf.io.gfile.makedirs(directory)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with tf.io.gfile.GFile(tmp, "wb") as f:
        f.write(data)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str) -> Any:
    with tf.io.gfile.GFile(path, "r") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None


def save_figure(fig, path: str) -> None:
    """Saves a matplotlib figure as PNG, atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


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


def hardware(strategy: tf.distribute.Strategy | None = None) -> dict[str, Any]:
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
