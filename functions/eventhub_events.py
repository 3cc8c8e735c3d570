"""The Functions host's ``EventHubEvent`` to and from the processor's ``StreamEvent``: the entry layer's conversion."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from shared.streaming.events import UNKNOWN_PARTITION, StreamEvent


def from_function_event(event: func.EventHubEvent) -> StreamEvent:
    """What the host hands over (cardinality many: the partition is in the trigger metadata)."""
    metadata: dict[str, Any] = {}
    try:
        metadata = dict(event.metadata or {})
    except (AttributeError, TypeError, ValueError):  # metadata the worker could not decode
        metadata = {}
    context = metadata.get("PartitionContext") or {}
    partition = str(context.get("PartitionId", UNKNOWN_PARTITION)) if isinstance(context, dict) else UNKNOWN_PARTITION
    enqueued = event.enqueued_time or datetime.now(UTC)
    if enqueued.tzinfo is None:
        enqueued = enqueued.replace(tzinfo=UTC)
    offset = None if event.offset is None else str(event.offset)  # the host's batches carry it as a number
    return StreamEvent(event.get_body(), partition, int(event.sequence_number or 0), enqueued, offset)


def to_function_events(
    bodies: list[bytes], *, partition: str, first_sequence: int, enqueued_time: datetime, hub: str = "transactions"
) -> list[func.EventHubEvent]:
    """Real ``EventHubEvent`` objects as the host builds them for a batch of one partition."""
    from azure.functions.meta import Datum

    metadata = {
        "PartitionContext": Datum(
            json.dumps(
                {
                    "PartitionId": partition,
                    "EventHubName": hub,
                    "ConsumerGroup": "$Default",
                }
            ),
            "json",
        )
    }
    return [
        func.EventHubEvent(
            body=body,
            trigger_metadata=metadata,
            enqueued_time=enqueued_time,
            sequence_number=first_sequence + i,
            offset=str(first_sequence + i),
        )
        for i, body in enumerate(bodies)
    ]
