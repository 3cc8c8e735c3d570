"""The progress line of long work on stderr: shown on a terminal, silent otherwise (a pipe, a file, CI's log).

One line, rewritten in place (``\\r``), at most a few times a second: ``etl parts: 12``, ``upload: 1.2 of
4.0 GB (30%)``, ``search trials: 7/20``. A new step starts a new line. It never touches stdout, where the
command's summary goes.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

BYTES_STEPS = ("upload",)  # steps counted in bytes, shown in KB/MB/GB


class ProgressLine:
    """An ``OnProgress`` watcher (``shared.domain.progress``) that draws one line on ``stream`` when it is a TTY."""

    def __init__(self, stream: TextIO | None = None, *, every: float = 0.2) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._on = _is_tty(self._stream)
        self._every = every
        self._lock = threading.Lock()
        self._step: str | None = None
        self._last = 0.0

    @property
    def shown(self) -> bool:
        """Whether anything is drawn at all (stderr is a terminal)."""
        return self._on

    def __call__(self, step: str, done: int, total: int | None = None) -> None:
        if not self._on:
            return
        with self._lock:
            now = time.monotonic()
            finished = total is not None and done >= total
            if step == self._step and not finished and now - self._last < self._every:
                return
            if self._step is not None and step != self._step:
                self._stream.write("\n")
            self._step, self._last = step, now
            self._stream.write(f"\r{step}: {_amount(step, done, total)}\x1b[K")
            self._stream.flush()

    def close(self) -> None:
        """End the line (the next output starts on a line of its own)."""
        with self._lock:
            if self._on and self._step is not None:
                self._stream.write("\n")
                self._stream.flush()
            self._step = None


def _amount(step: str, done: int, total: int | None) -> str:
    if step in BYTES_STEPS:
        return _bytes(done) if total is None else f"{_bytes(done)} of {_bytes(total)} ({done * 100 // max(total, 1)}%)"
    return str(done) if total is None else f"{done}/{total}"


def _bytes(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or a fake stream
        return False
