"""A plain progress line for training epochs.

On a terminal the line is redrawn in place; otherwise (a log file, a pipe, a notebook cell that
is not a TTY) a line is printed at most every ``interval`` seconds and at the end, without
colour codes or carriage returns, so logs stay readable.
"""

from __future__ import annotations

import sys
import time


class Progress:
    """``12/250 [====>      ] 4.8 step/s, ETA 49s - loss 0.5123``

    Args:
        total: the number of steps this line counts to.
        label: a prefix, e.g. ``"epoch 2/10"``.
        enabled: print nothing when False.
        interval: seconds between lines when the output is not a terminal.
        stream: where to write (default ``sys.stdout``).
    """

    def __init__(self, total: int, label: str = "", *, enabled: bool = True,
                 interval: float = 30.0, stream=None):
        self.total = max(1, int(total))
        self.label = label
        self.enabled = enabled
        self.interval = interval
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.time()
        self.first = None
        self.last_print = 0.0
        self.done = False

    def update(self, current: int, **values: float) -> None:
        if not self.enabled or self.done:
            return
        now = time.time()
        if self.first is None:
            self.first = (current, now)
            if not self.tty:  # a log gets its first line after `interval` seconds
                self.last_print = now
                return
        final = current >= self.total
        if not final and not self.tty and now - self.last_print < self.interval:
            return
        if not final and self.tty and now - self.last_print < 0.1:
            return
        self.last_print = now
        width = 24
        filled = int(width * min(current, self.total) / self.total)
        bar = "=" * filled + (">" if filled < width else "") + " " * (width - filled - 1)
        steps, seconds = current - self.first[0], now - self.first[1]
        rate = steps / seconds if seconds > 0 and steps > 0 else None
        parts = [f"{self.label} {current}/{self.total} [{bar}]".strip()]
        if rate:
            parts.append(f"{rate:.2f} step/s")
            if not final:
                parts.append(f"ETA {_duration((self.total - current) / rate)}")
        else:
            parts.append(f"{_duration(now - self.start)}")
        line = ", ".join(parts)
        if values:
            line += " - " + " ".join(f"{k} {v:.4f}" for k, v in values.items())
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K" + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.done = final

    def close(self) -> None:
        """Ends a line that stopped short of ``total`` (early stop, end of data)."""
        if self.enabled and self.tty and not self.done and self.first is not None:
            self.stream.write("\n")
            self.stream.flush()
        self.done = True


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if seconds >= 60:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds}s"
