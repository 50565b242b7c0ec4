"""Files, local or ``gs://``: raw data read strictly, results written atomically, JSON.

Every file the suite reads or writes goes through here. A path with a scheme (``gs://``…) goes
through ``tf.io.gfile``, imported only then; a local path uses the operating system, so reading
results (``evaluate.py --table``) needs no TensorFlow.

**Reading raw data.** A ``.gz`` file is decompressed; text is decoded as strict UTF-8 (a leading
byte-order mark is removed, ``\\r\\n`` line ends are accepted), so a bad byte raises
:class:`~datasets.errors.DataFormatError` with the line it is on rather than turning into a
replacement character. Blank lines are ignored by the line, TSV and JSON-lines readers. The TSV
reader uses ``csv`` with ``QUOTE_NONE``: a ``"`` is an ordinary character (GLUE's MRPC and SST-2
files and SNLI contain unbalanced quotes), and every line is one row.

**Writing.** Every results, config, history, vocabulary and plot file is written to a temporary
name beside its target and then renamed over it, so a run killed mid-write leaves the previous
complete file, never half of one (a local file is flushed to disk before the rename).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import uuid
import zlib
from typing import Any, Iterator, Sequence

from datasets.errors import DataFormatError, MissingDataError


def is_remote(path: str) -> bool:
    """Whether ``path`` names a file system other than the local one (``gs://``…)."""
    return "://" in str(path)


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def join(*parts: str) -> str:
    """``os.path.join`` that also works for ``gs://`` prefixes."""
    return os.path.join(*parts)


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


def _read(path: str) -> bytes:
    if is_remote(path):
        with _gfile().GFile(path, "rb") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def read_bytes(path: str) -> bytes:
    """The file's bytes, decompressed if the name ends in ``.gz``.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: the gzip stream is truncated or corrupt.
    """
    if not exists(path):
        raise MissingDataError("file not found", path=path)
    if not path.endswith(".gz"):
        return _read(path)
    try:
        return gzip.decompress(_read(path))
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataFormatError(f"truncated or corrupt gzip stream ({e})", path=path) from None


_DIGESTS: dict[tuple[str, int, int], str] = {}


def content_sha256(path: str) -> str:
    """The hex SHA-256 of a file's bytes (local or ``gs://``), remembered per process by path,
    size and modification time, so a file read twice is hashed once and a changed file again.

    Raises:
        MissingDataError: the file does not exist.
    """
    if not exists(path):
        raise MissingDataError("file not found", path=path)
    if is_remote(path):
        stat = _gfile().stat(path)
        key = (path, int(stat.length), int(stat.mtime_nsec))
    else:
        stat = os.stat(path)
        key = (path, int(stat.st_size), int(stat.st_mtime_ns))
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


# ------------------------------------------------------------------------------- writing
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


def read_json(path: str) -> Any:
    """Parses a JSON file; a malformed one is a ``ValueError`` naming the file."""
    try:
        return json.loads(read_bytes(path).decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def to_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, numpy scalars numbers)."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def save_figure(fig, path: str) -> None:
    """Saves a matplotlib figure as PNG, atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
