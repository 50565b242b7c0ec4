"""Shared fixtures. Tests that read real data fail (never skip) when the data is missing."""

import os
import pathlib
import subprocess
import sys

import pytest
import tensorflow as tf

from datasets.paths import ENV_VAR

# Two logical CPU devices, so MirroredStrategy runs real replicas on this machine. This must
# happen before TensorFlow initialises its devices, hence at import time.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

REPO = pathlib.Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    """The files that hold slow tests (``-m slow``: a minute or more each) run first, the rest
    in their usual order: with ``-n`` (one file per worker at a time), the longest files start
    first and the workers finish together instead of one waiting for a long file started
    last."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: same order within


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


#: The environment of a command-line run, without TF_CPP_MIN_LOG_LEVEL: the CLIs must quiet
#: TensorFlow themselves.
CLI_ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
BOW = "baselines/sst2_bow_logreg"


def run_cli(*args, data_dir=None, timeout=300, python_args=()) -> subprocess.CompletedProcess:
    """Runs ``python ARGS`` (``train.py ...``, ``evaluate.py ...``) from the repository root as a
    user would, output captured; ``data_dir`` sets ``$KERAS_PAPERS_DATA_DIR``."""
    env = dict(CLI_ENV)
    if data_dir:
        env[ENV_VAR] = data_dir
    return subprocess.run([sys.executable, *python_args, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def bow_run(data_dir, tmp_path_factory):
    """A short finished run through train.py, as a user starts it (output not a terminal):
    ``(model_dir, completed process)``. Tests read it and may re-run commands in it; any that
    change it put it back."""
    model_dir = tmp_path_factory.mktemp("cli") / "bow"
    out = run_cli("train.py", f"--experiment={BOW}", f"--model_dir={model_dir}",
                  "--train_steps=30", "--eval_every=30", data_dir=data_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    return model_dir, out
