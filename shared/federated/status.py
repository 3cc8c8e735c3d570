"""A round's status, shared by the server's state machine and the bank client (which needs nothing else)."""

from __future__ import annotations

from enum import StrEnum


class RoundStatus(StrEnum):
    """Where a round is: taking updates, being aggregated by exactly one caller, or done."""

    OPEN = "open"
    AGGREGATING = "aggregating"
    CLOSED = "closed"
