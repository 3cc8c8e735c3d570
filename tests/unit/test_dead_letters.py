"""Dead letters hold no customer id in clear, whatever shape the body that could not be scored had."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.domain.pseudonym import Pseudonymiser
from shared.streaming.deadletter import dead_letter
from shared.streaming.events import StreamEvent

CLEAR = "Muller-0042"


def _event(body: bytes) -> StreamEvent:
    return StreamEvent(
        body=body, partition="0", sequence_number=1, enqueued_time=datetime(2026, 12, 1, tzinfo=UTC), offset="1"
    )


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        (json.dumps({"transaction_id": "t1", "customer_id": CLEAR, "V1": 1.0}).encode(), True),
        (b'{"transaction_id": "t1", "customer_id": "' + CLEAR.encode() + b'", "V1": NaN}', True),  # a NaN literal
        (json.dumps([{"customer_id": CLEAR}, {"customer_id": CLEAR}]).encode(), True),  # an array of events
        (json.dumps(CLEAR).encode(), False),  # a bare string
        (json.dumps(["x", CLEAR]).encode(), False),
        (b"customer_id=" + CLEAR.encode(), False),  # not JSON
        (CLEAR.encode("utf-16"), False),  # not UTF-8
    ],
)
def test_a_dead_letter_never_holds_the_clear_id(body, kept):
    """Issue 39, finding 1: an event that was not exactly one JSON object (a NaN literal, an array of events,
    bytes that are not UTF-8) was dead-lettered byte for byte, clear customer id included."""
    p = Pseudonymiser(b"k")
    letter = dead_letter(_event(body), "refused", p, personal=("customer_id",))
    stored = json.dumps(letter)
    assert CLEAR not in stored and CLEAR.encode("utf-16").hex() not in stored
    if kept:
        assert p(CLEAR) in letter["body"] and letter["body_encoding"] == "utf-8"
    else:
        assert letter["body"] is None and letter["body_encoding"].startswith("withheld")
        assert len(letter["body_sha256"]) == 64 and letter["body_bytes"] == len(body)
