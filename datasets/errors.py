"""The suite's user errors, and those raised while reading raw dataset files.

:class:`UserError` is the base of every mistake the user can fix (a bad setting, a model dir
that holds another run, a malformed data file, a run that diverged): ``train.py`` and
``evaluate.py`` print its message as one line (``training/cli.py``) instead of a traceback.
It lives here, in the lowest package, so that every package can derive from it; this module
imports nothing.

Every malformed input (a line with the wrong number of columns, an unknown label, empty text, bad
UTF-8, a truncated gzip stream, a corrupt JPEG) raises :class:`DataFormatError`, whose message names
the file, the 1-based line number and the field. A missing file raises :class:`MissingDataError`.
Rows that a dataset's own convention drops (SNLI pairs without a gold label, SST-2's neutral
sentences) are not errors: they are counted in ``LoadedSplit.dropped``.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user asked for; the message says what to do.

    ``train.py`` and ``evaluate.py`` end with ``<program>: <verb>: <message>`` on standard
    error and exit status :attr:`exit_status`.
    """

    #: how the command line reports it: ``error`` (a mistake) or ``stopped`` (the run stopped).
    verb = "error"
    exit_status = 2


class DataFormatError(UserError, ValueError):
    """A raw data file does not have the expected format.

    Args:
        message: what is wrong.
        path: the file.
        line: the 1-based line number, if the problem is on one line.
        field: the column or JSON field, if the problem is in one field.

    Example:

    ```python
    try:
        datasets.load("snli", "dev", data_dir)
    except datasets.DataFormatError as e:
        print(e.path, e.line, e.field)
    ```
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.path = path
        self.line = line
        self.field = field
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class MissingDataError(DataFormatError, FileNotFoundError):
    """A file or folder the dataset needs is not in ``data_dir``.

    The message lists every path that was tried. It is both a :class:`DataFormatError` and a
    :class:`FileNotFoundError`.
    """


class DataUnavailableError(UserError):
    """A dataset is not in ``data_dir`` (or none was given) and cannot be downloaded."""
