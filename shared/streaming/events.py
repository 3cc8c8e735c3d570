"""Stream events as the processor sees them (the Functions host's ``EventHubEvent`` is converted in ``functions/``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.domain import layout

UNKNOWN_PARTITION = "unknown"


@dataclass(frozen=True)
class StreamEvent:
    """One event: its body and where it sits in the hub."""

    body: bytes
    partition: str
    sequence_number: int
    enqueued_time: datetime
    offset: str | None = None


def stem(events: Sequence[StreamEvent]) -> tuple[str, str]:
    """Where a batch's outputs go: the hour folder of its first event, and ``<partition>-<first seq>-<last seq>``."""
    first = events[0]
    sequences = [e.sequence_number for e in events]
    return layout.stream_hour(first.enqueued_time), f"{first.partition}-{min(sequences)}-{max(sequences)}"
