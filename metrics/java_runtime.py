"""The Java runtime that coco-caption's two jars need, and what their wrappers share.

The MS COCO caption evaluation code (Chen et al. 2015, ``pycocoevalcap==1.2``) runs two Java
programs: the Stanford PTBTokenizer (:mod:`metrics.ptb_tokenizer`) and METEOR 1.5
(:mod:`metrics.meteor`). :func:`find_java` finds a ``java`` executable that actually runs
(``JAVA_HOME`` first, then ``PATH``). Both wrappers feed their jar one item a line and report a
failed process with the end of its stderr: :data:`LINE_BREAKS` and :func:`stderr_tail` are
those two shared pieces.

Example:

```python
java = find_java()                               # '/usr/bin/java', or None
LINE_BREAKS.sub(" ", "a dog\\r\\nin the water")     # 'a dog in the water'
```
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess

logger = logging.getLogger(__name__)

# Characters that PTBTokenizer treats as line breaks. The jars read one caption (or one METEOR
# request) a line: a line break inside a caption would shift every later line of their output
# onto the wrong caption. coco-caption replaces only "\n".
LINE_BREAKS = re.compile("\r\n|[\r\n\x0b\x0c\x85\u2028\u2029]")


def find_java() -> str | None:
    """Path of a working ``java`` executable, or ``None``.

    ``$JAVA_HOME/bin/java`` is preferred when ``JAVA_HOME`` is set, then ``java`` on ``PATH``.
    The candidate must answer ``java -version``; the answer is cached per (``JAVA_HOME``,
    ``PATH``).

    Returns:
        The executable's path, or ``None`` when no working Java runtime is found.

    Example:

    >>> find_java()  # doctest: +SKIP
    '/usr/bin/java'
    """
    return _probe_java(os.environ.get("JAVA_HOME", ""), os.environ.get("PATH", ""))


@functools.lru_cache(maxsize=8)
def _probe_java(java_home: str, path: str) -> str | None:
    candidates = []
    if java_home:
        candidates.append(os.path.join(java_home, "bin", "java"))
    found = shutil.which("java", path=path or None)
    if found:
        candidates.append(found)
    for candidate in candidates:
        if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            continue
        try:
            subprocess.run([candidate, "-version"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=60, check=True)
        except (OSError, subprocess.SubprocessError) as error:
            logger.warning("%s does not run (%s); ignoring it", candidate, error)
            continue
        return candidate
    return None


def stderr_tail(text: bytes | str, limit: int = 400) -> str:
    """The last ``limit`` characters of a process's stderr, whitespace collapsed, for a message."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = " ".join(text.split())
    return text[-limit:] if text else "(nothing on stderr)"
