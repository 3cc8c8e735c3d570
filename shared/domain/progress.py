"""Progress of long work (ETL parts, training steps and trials, erasure steps), for whoever watches.

Like a log line or a span, progress is an observation, not a dependency: the search's trials run five
calls below the command that started them, so a service calls :func:`report` where it stands and the
watcher installed by :func:`watched` (the CLI's stderr line) hears it. With no watcher (the function
apps, the tests) a report costs one list check. Watchers may be called from worker threads (the ETL's
part uploads): they must be thread-safe.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

type OnProgress = Callable[[str, int, int | None], None]
"""``(step, done, total)``: ``step`` names the work ("etl parts"), ``total`` is None when not known."""

_watchers: list[OnProgress] = []


def report(step: str, done: int, total: int | None = None) -> None:
    """``done`` of ``total`` units of ``step`` are finished (a no-op when nobody watches)."""
    for watcher in tuple(_watchers):
        watcher(step, done, total)


@contextlib.contextmanager
def watched(watcher: OnProgress) -> Iterator[None]:
    """Send every :func:`report` made inside the block to ``watcher``."""
    _watchers.append(watcher)
    try:
        yield
    finally:
        _watchers.remove(watcher)
