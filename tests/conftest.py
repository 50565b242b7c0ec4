"""Shared fixtures. Tests that read real data fail (never skip) when the data is missing."""

import os
import pathlib

import pytest
import tensorflow as tf

from datasets.paths import ENV_VAR

# Two logical CPU devices, so MirroredStrategy runs real replicas on this machine. This must
# happen before TensorFlow initialises its devices, hence at import time.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

REPO = pathlib.Path(__file__).resolve().parents[1]


def _data_dir() -> pathlib.Path:
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        return pathlib.Path(explicit)
    return (REPO.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def data_dir() -> str:
    """The real data directory (``$KERAS_PAPERS_DATA_DIR`` or ``../shared/data``)."""
    path = _data_dir()
    if not path.is_dir():
        pytest.fail(f"real data directory {path} is missing: set {ENV_VAR}", pytrace=False)
    return str(path)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> str:
    """One cache of expensive preparation (image features) for the whole test session."""
    return os.environ.get("KERAS_PAPERS_CACHE_DIR") or str(tmp_path_factory.mktemp("cache"))
