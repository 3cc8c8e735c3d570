"""The status of a round as the API reports it (``GET /api/federated/rounds/{n}``), which the client polls."""

from __future__ import annotations

from enum import StrEnum


class RoundStatus(StrEnum):
    """Where a round is: taking updates (or, in a secure round, keys), in a secure round's later phases, being
    aggregated by exactly one caller, or done."""

    OPEN = "open"
    SHARING = "sharing"  # secure rounds: the members are fixed; each seals its shares for the others
    MASKING = "masking"  # secure rounds: each sends its masked vector
    UNMASKING = "unmasking"  # secure rounds: each sends back the shares that remove the masks
    AGGREGATING = "aggregating"
    CLOSED = "closed"


SECURE_PHASES = (RoundStatus.SHARING, RoundStatus.MASKING, RoundStatus.UNMASKING)
