"""A run's files and metadata: the file functions runs use, and what a results file records
about the machine and the code (hardware, package versions, git commit).

The file functions (atomic writes, JSON, local or ``gs://``) are :mod:`datasets.files`'s, the
one implementation the suite has; they are named here for the code that writes runs. Nothing
here imports TensorFlow until a ``gs://`` path or the hardware is asked for.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Any

from datasets.files import (atomic_write_bytes, atomic_write_json, atomic_write_text, exists,
                            is_remote, isdir, makedirs, read_bytes, read_json, remove,
                            save_figure, to_json, walk)

__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_write_text", "cpu_name",
           "exists", "git_commit", "hardware", "is_remote", "isdir", "makedirs",
           "package_versions", "read_bytes", "read_json", "remove", "save_figure", "to_json",
           "walk"]

PACKAGES = ("tensorflow", "tensorflow-text", "keras", "keras-hub", "tensorflow-datasets",
            "keras-tuner", "numpy")


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
