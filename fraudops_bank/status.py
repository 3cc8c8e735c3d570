"""The status of a round as the API reports it (``GET /api/federated/rounds/{n}``), which the client polls."""

from __future__ import annotations

from enum import StrEnum


class RoundStatus(StrEnum):
    """Where a round is: taking updates, being aggregated by exactly one caller, or done."""

    OPEN = "open"
    AGGREGATING = "aggregating"
    CLOSED = "closed"
