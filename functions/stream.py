"""Event Hubs trigger on the transaction stream (cardinality many).

For now it logs what it receives; the streaming issue makes it score, alert and dead-letter.
"""

from __future__ import annotations

import logging

import azure.functions as func

log = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.function_name("score_stream")
@bp.event_hub_message_trigger(
    arg_name="events", event_hub_name="%EVENTHUB_NAME%", connection="EVENTHUB",
    consumer_group="%EVENTHUB_CONSUMER_GROUP%", cardinality=func.Cardinality.MANY,
)
def score_stream(events: list[func.EventHubEvent]) -> None:
    """Receive a batch of transaction events."""
    first = events[0].sequence_number if events else None
    log.info("received %d events (first sequence number %s); scoring arrives with the streaming issue",
             len(events), first)
