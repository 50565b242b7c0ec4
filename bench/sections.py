"""Named sections of a Markdown results file, so that several benchmarks fill one file.

A section is the text between ``<!-- interleave:NAME begin -->`` and ``<!-- interleave:NAME
end -->``. :func:`write_section` replaces the named section of a file (or appends it, and
creates the file, when it is absent) and leaves the rest as it is; the file is written
atomically (:func:`training.io.atomic_write_text`).
"""

from __future__ import annotations

import os
import re

from training import io

_BEGIN = "<!-- interleave:{} begin -->"
_END = "<!-- interleave:{} end -->"


def check_name(name: str) -> str:
    """``name`` if it can name a section (a word: letters, digits, ``_ . -``)."""
    if not re.fullmatch(r"[\w.-]+", name):
        raise ValueError(f"a section name must be a word, got {name!r}")
    return name


def replace_section(existing: str, name: str, body: str) -> str:
    """``existing`` with the named section replaced by ``body`` (appended when absent)."""
    begin, end = _BEGIN.format(check_name(name)), _END.format(name)
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    if pattern.search(existing):
        return pattern.sub(lambda _: block, existing, count=1)
    return existing.rstrip() + ("\n\n" if existing.strip() else "") + block


def write_section(path: str, name: str, body: str) -> None:
    """Writes ``body`` as the named section of the Markdown file ``path``."""
    existing = io.read_bytes(path).decode("utf-8") if os.path.exists(path) else ""
    io.atomic_write_text(path, replace_section(existing, name, body))
