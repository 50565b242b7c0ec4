"""Reading raw text files: local or ``gs://``, plain or gzip, strict UTF-8.

Every read goes through ``tf.io.gfile``; a ``.gz`` file is decompressed with
``gzip.GzipFile(fileobj=tf.io.gfile.GFile(path, "rb"))``. Text is decoded as strict UTF-8 (a
leading byte-order mark is removed, ``\\r\\n`` line ends are accepted), so a bad byte raises
:class:`~datasets.errors.DataFormatError` with the line it is on rather than turning into a
replacement character. Blank lines are ignored by the line, TSV and JSON-lines readers.

The TSV reader uses ``csv`` with ``QUOTE_NONE``: a ``"`` is an ordinary character (GLUE's MRPC and
SST-2 files and SNLI contain unbalanced quotes), and every line is one row.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import zlib
from typing import Any, Iterator, Sequence

import tensorflow as tf

from datasets.errors import DataFormatError, MissingDataError


def join(*parts: str) -> str:
    """``os.path.join`` that also works for ``gs://`` prefixes."""
    return os.path.join(*parts)


def exists(path: str) -> bool:
    return tf.io.gfile.exists(path)


def find_file(directory: str, candidates: Sequence[str], what: str) -> str:
    """Returns the first of ``candidates`` (relative to ``directory``) that exists.

    Each candidate not ending in ``.gz`` is also tried with ``.gz`` appended.

    Args:
        directory: the folder to look in.
        candidates: relative paths in order of preference.
        what: a description for the error message, e.g. ``"SST trees (train)"``.

    Returns:
        The full path of the first existing candidate.

    Raises:
        MissingDataError: none exists; the message lists every path tried.
    """
    tried = []
    for name in candidates:
        names = [name] if name.endswith(".gz") else [name, name + ".gz"]
        for option in names:
            path = join(directory, option)
            tried.append(path)
            if exists(path):
                return path
    raise MissingDataError(
        f"{what} not found; tried:\n  " + "\n  ".join(tried) + "\n(see datasets/README.md for "
        "the expected layout under --data_dir)")


def read_bytes(path: str) -> bytes:
    """The file's bytes, decompressed if the name ends in ``.gz``.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: the gzip stream is truncated or corrupt.
    """
    if not exists(path):
        raise MissingDataError("file not found", path=path)
    if not path.endswith(".gz"):
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read()
    try:
        with tf.io.gfile.GFile(path, "rb") as raw, gzip.GzipFile(fileobj=raw) as f:
            return f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataFormatError(f"truncated or corrupt gzip stream ({e})", path=path) from None


_DIGESTS: dict[tuple[str, int, int], str] = {}


def content_sha256(path: str) -> str:
    """The hex SHA-256 of a file's bytes (local or ``gs://``), remembered per process by path,
    size and modification time, so a file read twice is hashed once and a changed file again.

    Raises:
        MissingDataError: the file does not exist.
    """
    try:
        stat = tf.io.gfile.stat(path)
    except tf.errors.NotFoundError:
        raise MissingDataError("file not found", path=path) from None
    key = (path, int(stat.length), int(stat.mtime_nsec))
    if key not in _DIGESTS:
        _DIGESTS[key] = hashlib.sha256(read_bytes(path)).hexdigest()
    return _DIGESTS[key]


def read_text(path: str) -> str:
    """The file decoded as strict UTF-8, without a leading byte-order mark.

    Raises:
        DataFormatError: a byte sequence is not UTF-8; the message gives its line.
    """
    data = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataFormatError(f"invalid UTF-8 ({e.reason}, byte {data[e.start:e.start + 1]!r})",
                              path=path, line=line) from None
    return text[1:] if text.startswith("\ufeff") else text


def read_lines(path: str) -> Iterator[tuple[int, str]]:
    """Yields ``(line_number, line)`` for each non-blank line, 1-based, without the line end."""
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        line = line[:-1] if line.endswith("\r") else line
        if line.strip():
            yield number, line


def read_tsv(path: str, *, required: Sequence[str] = (), columns: Sequence[str] | None = None
             ) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Reads a tab-separated file into ``(line_number, {column: value})`` rows.

    Args:
        path: the file (``.gz`` allowed).
        required: column names the header must contain.
        columns: the column names of a file without a header line; ``None`` means the first
            line is the header.

    Returns:
        ``(header, rows)``.

    Raises:
        DataFormatError: a required column is missing from the header, or a row does not have
            exactly as many columns as the header.

    Example:

    ```python
    header, rows = read_tsv("glue_sst2/dev.tsv", required=("sentence", "label"))
    for line, row in rows:
        print(line, row["sentence"], row["label"])
    ```
    """
    lines = read_lines(path)
    if columns is None:
        first = next(lines, None)
        if first is None:
            raise DataFormatError("empty file: expected a header line", path=path)
        header = first[1].split("\t")
        for name in required:
            if name not in header:
                raise DataFormatError(f"header {header} lacks column {name!r}", path=path,
                                      line=first[0], field=name)
    else:
        header = list(columns)
    rows = []
    for number, line in lines:
        try:
            fields = next(csv.reader([line], delimiter="\t", quoting=csv.QUOTE_NONE))
        except csv.Error as e:
            raise DataFormatError(f"unreadable TSV line ({e})", path=path, line=number) from None
        if len(fields) != len(header):
            raise DataFormatError(
                f"expected {len(header)} tab-separated columns {header}, found {len(fields)}",
                path=path, line=number)
        rows.append((number, dict(zip(header, fields))))
    return header, rows


def read_jsonl(path: str) -> list[tuple[int, dict[str, Any]]]:
    """Reads a JSON-lines file (one JSON object per line) into ``(line_number, object)`` rows.

    Raises:
        DataFormatError: a line is not valid JSON or not a JSON object.
    """
    rows = []
    for number, line in read_lines(path):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataFormatError(f"invalid JSON ({e.msg} at column {e.colno})", path=path,
                                  line=number) from None
        if not isinstance(obj, dict):
            raise DataFormatError(f"expected a JSON object, found {type(obj).__name__}",
                                  path=path, line=number)
        rows.append((number, obj))
    return rows


def field(row: dict[str, Any], name: str, path: str, line: int) -> Any:
    """``row[name]``, or a :class:`DataFormatError` naming the file, line and field."""
    if name not in row:
        raise DataFormatError("missing field", path=path, line=line, field=name)
    return row[name]


def text_field(row: dict[str, Any], name: str, path: str, line: int) -> str:
    """A non-empty string field with surrounding whitespace removed.

    Raises:
        DataFormatError: the field is missing, not a string, or empty after stripping.
    """
    value = field(row, name, path, line)
    if not isinstance(value, str):
        raise DataFormatError(f"expected a string, found {type(value).__name__}", path=path,
                              line=line, field=name)
    value = value.strip()
    if not value:
        raise DataFormatError("empty text", path=path, line=line, field=name)
    return value


def label_field(row: dict[str, Any], name: str, mapping: dict[Any, int], path: str,
                line: int) -> int:
    """Maps ``row[name]`` through ``mapping`` to a label id.

    Raises:
        DataFormatError: the field is missing or its value is not a key of ``mapping``.
    """
    value = field(row, name, path, line)
    key = value.strip() if isinstance(value, str) else value
    if key not in mapping:
        valid = ", ".join(repr(k) for k in mapping)
        raise DataFormatError(f"unknown label {value!r}; expected one of {valid}", path=path,
                              line=line, field=name)
    return mapping[key]
