"""A plain progress line for every long phase: training epochs, evaluations, decoding, export.

On a terminal the line is redrawn in place; otherwise (a log file, a pipe, a notebook cell that
is not a TTY) a line is printed at most every ``interval`` seconds and at the end, without
colour codes or carriage returns, so logs stay readable.
"""

from __future__ import annotations

import sys
import time


class Progress:
    """``training, epoch 2/10: step 12/250 [====>      ] 4.8 step/s, ETA 49s - loss 0.5123``

    Args:
        total: the number of steps this line counts to (``None``: unknown; the line then
            shows the count and the rate, and so does a count that passes ``total``).
        label: a prefix, e.g. ``"training, epoch 2/10: step"``.
        unit: what one count is, for the rate (``step/s``, ``batch/s``).
        announce: when the output is not a terminal, print the first line at once (a phase
            that would otherwise be silent until it ends), not after ``interval``.
        brief: when the output is not a terminal, print nothing for a count that ends within
            ``interval`` (a short evaluation between training lines).
        enabled: print nothing when False.
        interval: seconds between lines when the output is not a terminal.
        stream: where to write (default ``sys.stdout``).
    """

    def __init__(self, total: int | None, label: str = "", *, enabled: bool = True,
                 interval: float = 30.0, stream=None, unit: str = "step",
                 announce: bool = False, brief: bool = False):
        self.total = None if total is None else max(1, int(total))
        self.label = label
        self.unit = unit
        self.announce = announce
        self.brief = brief
        self.printed = False
        self.enabled = enabled
        self.interval = interval
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.time()
        self.first = None
        self.last_print = 0.0
        self.done = False
        self.current = 0

    def update(self, current: int, **values: float) -> None:
        if not self.enabled or self.done:
            return
        now = time.time()
        self.current = current
        if self.first is None:
            self.first = (current, now)
            if not self.tty and not self.announce:  # a log's first line: after `interval`
                self.last_print = now
                return
        final = self.total is not None and current >= self.total
        if not final and not self.tty and now - self.last_print < self.interval:
            return
        if not final and self.tty and now - self.last_print < 0.1:
            return
        if final and not self.tty and self.brief and not self.printed:
            self.done = True
            return
        self.printed = True
        self.last_print = now
        steps, seconds = current - self.first[0], now - self.first[1]
        rate = steps / seconds if seconds > 0 and steps > 0 else None
        parts = [f"{self.label} {self._count(current)}".strip()]
        if rate:
            parts.append(f"{rate:.2f} {self.unit}/s")
            if not final and self.total is not None and current < self.total:
                parts.append(f"ETA {duration((self.total - current) / rate)}")
        else:
            parts.append(f"{duration(now - self.start)}")
        line = ", ".join(parts)
        if values:
            line += " - " + " ".join(f"{k} {v:.4f}" for k, v in values.items())
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K" + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.done = final

    def _count(self, current: int) -> str:
        """``12/250 [====>    ]``, or ``12`` when the total is unknown or passed."""
        if self.total is None or current > self.total:
            return str(current)
        width = 24
        filled = int(width * current / self.total)
        bar = "=" * filled + (">" if filled < width else "") + " " * (width - filled - 1)
        return f"{current}/{self.total} [{bar}]"

    def close(self) -> None:
        """Ends a line that stopped short of ``total`` (early stop, end of data); a count
        whose total was unknown (or passed) gets its last line, with the count and the rate."""
        if (self.enabled and not self.done and self.first is not None
                and (self.total is None or self.current > self.total)):
            self.total = max(1, self.current)
            self.update(self.current)
            return
        if self.enabled and self.tty and not self.done and self.first is not None:
            self.stream.write("\n")
            self.stream.flush()
        self.done = True


def duration(seconds: float) -> str:
    """``42s``, ``3:05`` or ``1:02:03``."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if seconds >= 60:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds}s"
