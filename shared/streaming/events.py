"""Stream events as the processor sees them (the Functions host's ``EventHubEvent`` is converted in ``functions/``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

UNKNOWN_PARTITION = "unknown"


@dataclass(frozen=True)
class StreamEvent:
    """One event: its body and where it sits in the hub."""

    body: bytes
    partition: str
    sequence_number: int
    enqueued_time: datetime
    offset: str | None = None
