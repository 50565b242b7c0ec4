r"""Generated captions on disk: ``MODEL_DIR/captions_<split>.jsonl``.

The final evaluation of every caption run writes one JSON object per image, in the split's
order::

    {"image": "1056338697_4f7d7ce270.jpg", "caption": "a man in a red shirt",
     "tokens": [4, 11, 5, 6, 21, 25, 3], "log_probability": -7.31,
     "references": ["A man ...", "...", "...", "...", "..."]}

``tokens`` are the decoded ids up to and including ``<end>`` (in the run's ``vocab.txt``),
``log_probability`` is ``log p(tokens | image)`` under the model, ``references`` the image's raw
reference captions, so a file can be rescored alone (:mod:`papers.xu2015.rescore`).
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from datasets import files
from datasets.errors import DataFormatError
from training import io

FIELDS = {"image": str, "caption": str, "tokens": list, "log_probability": float,
          "references": list}


def write_captions(path: str, records: Sequence[dict[str, Any]]) -> None:
    """Writes the records, one JSON object a line, atomically."""
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    io.atomic_write_bytes(path, text.encode("utf-8"))


def read_captions(path: str) -> list[dict[str, Any]]:
    """Reads a captions file.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: a line is not a JSON object with the fields of :data:`FIELDS`, or an
            image appears twice; the message names the file, line and field.
    """
    records, seen = [], set()
    for n, line in files.read_lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataFormatError(f"not JSON ({e.msg})", path=path, line=n) from None
        if not isinstance(record, dict):
            raise DataFormatError("not a JSON object", path=path, line=n)
        for field, kind in FIELDS.items():
            value = record.get(field)
            if kind is float and isinstance(value, int):
                value = float(value)
            if not isinstance(value, kind):
                raise DataFormatError(f"expected {kind.__name__}, found {type(value).__name__}",
                                      path=path, line=n, field=field)
        if not record["references"] or not all(isinstance(r, str) and r.strip()
                                                for r in record["references"]):
            raise DataFormatError("references must be non-empty captions", path=path, line=n,
                                  field="references")
        if record["image"] in seen:
            raise DataFormatError(f"image {record['image']} appears twice", path=path, line=n,
                                  field="image")
        seen.add(record["image"])
        records.append(record)
    if not records:
        raise DataFormatError("no captions", path=path)
    return records
