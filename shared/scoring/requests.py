"""HTTP answers counted by UTC day and status class: the monitoring run's error share.

The recorder (``shared.scoring.recorder``) holds one ``RequestTally``, takes its counts with each flush
and writes them beside the recorded predictions (``layout.request_counts``).
"""

from __future__ import annotations

import threading
from collections import Counter


class RequestTally:
    """HTTP answers counted by UTC day and status class (2xx, 4xx, 5xx): the monitoring run's error share.

    Counting is a dictionary increment under a lock; the recorder writes the counts with each flush, one
    small JSON per day and instance, and gives them back if the write fails.
    """

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def add(self, status_class: str, day: str) -> None:
        with self._lock:
            self._counts[(day, status_class)] += 1

    def take(self) -> dict[str, dict[str, int]]:
        with self._lock:
            counts, self._counts = self._counts, Counter()
        by_day: dict[str, dict[str, int]] = {}
        for (day, status_class), n in counts.items():
            by_day.setdefault(day, {})[status_class] = n
        return by_day

    def give_back(self, by_day: dict[str, dict[str, int]]) -> None:
        with self._lock:
            for day, counts in by_day.items():
                for status_class, n in counts.items():
                    self._counts[(day, status_class)] += n
