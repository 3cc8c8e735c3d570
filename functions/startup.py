"""What a function app does while the worker imports it: the garbage collector paused, then its objects frozen.

Importing an app builds its libraries' modules, classes and FastAPI routes: tens of thousands of objects, every
one alive as long as the process. The collector's passes over them during the import find nothing to free and cost
about a tenth of the scoring app's cold start (``scripts/bench_cold_start.py``). At the end they are moved out of
its reach (``gc.freeze``, as the first request does again for what it builds: ``api.deps``), so re-enabling it
does not start with a pass over all of them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the garbage collector for the block, freeze what it built, and restore the collector as it was, even
    when the block raises."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
