"""Event Hubs trigger on the transaction stream (cardinality many): score, archive, alert, dead-letter."""

from __future__ import annotations

import logging
import typing

import azure.functions as func

log = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.function_name("score_stream")
@bp.event_hub_message_trigger(
    arg_name="events",
    event_hub_name="%EVENTHUB_NAME%",
    connection="EVENTHUB",
    consumer_group="%EVENTHUB_CONSUMER_GROUP%",
    cardinality=func.Cardinality.MANY,
)
# typing.List, not list[...]: the Python worker refuses PEP 585 generics on binding parameters and the
# app would then register zero functions (tests/worker/ indexes the app with the real worker logic).
def score_stream(events: typing.List[func.EventHubEvent]) -> None:  # noqa: UP006
    """Process one batch; bad events are dead-lettered, never raised (the checkpoint advances regardless)."""
    from functions.eventhub_events import from_function_event
    from shared.bootstrap import bootstrap

    summary = bootstrap().processor.process([from_function_event(e) for e in events])
    log.info(
        "stream batch: %d events, %d scored, %d alerts, %d dead-lettered (%s)",
        summary.events,
        summary.scored,
        summary.alerts,
        summary.deadlettered,
        summary.status,
    )
