"""Where the raw datasets live.

The data directory is chosen, in order, by the ``--data_dir`` flag, the ``KERAS_PAPERS_DATA_DIR``
environment variable, or ``None`` (the online source: TFDS). Paths may be local or ``gs://``;
every read goes through ``tf.io.gfile``.
"""

from __future__ import annotations

import os

from datasets.errors import MissingDataError

ENV_VAR = "KERAS_PAPERS_DATA_DIR"


def resolve_data_dir(data_dir: str | None = None) -> str | None:
    """Returns ``data_dir``, else ``$KERAS_PAPERS_DATA_DIR``, else ``None``."""
    return data_dir or os.environ.get(ENV_VAR) or None


def require_data_dir(data_dir: str | None, dataset: str) -> str:
    """Like :func:`resolve_data_dir` but raises a clear error when there is none."""
    resolved = resolve_data_dir(data_dir)
    if not resolved:
        raise MissingDataError(
            f"dataset {dataset!r} needs a local copy here: pass --data_dir=DIR or set "
            f"{ENV_VAR} (see the README's data layout)")
    return resolved
