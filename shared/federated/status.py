"""A round's status and its stored state, as typed values: shared by the server's state machine and the API."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RoundStatus(StrEnum):
    """Where a round is: taking updates, being aggregated by exactly one caller, or done."""

    OPEN = "open"
    AGGREGATING = "aggregating"
    CLOSED = "closed"


@dataclass(frozen=True)
class Participant:
    """One bank's update in a round: how many examples it reports, its metrics, where the update is stored."""

    examples: int
    metrics: dict[str, float]
    update: str
    received_at: float


@dataclass(frozen=True)
class RoundState:
    """A round as the state machine stored it (``state.json``), read into named fields."""

    round: int
    kind: str
    status: RoundStatus
    opened_at: float
    deadline: float
    min_clients: int
    aggregator: str
    clip_bound: float | None
    noise_std: float | None
    max_weight_share: float
    participants: dict[str, Participant] = field(default_factory=dict)
    why: str | None = None
    closed_at: float | None = None
    aggregate_metrics: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> RoundState:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in doc.items() if k in known}
        values["status"] = RoundStatus(doc["status"])
        values["participants"] = {b: Participant(**p) for b, p in doc.get("participants", {}).items()}
        return cls(**values)

    def public(self) -> dict[str, Any]:
        """The state for the API: who took part, with how many examples and their metrics (no storage paths)."""
        doc = dataclasses.asdict(self)
        doc["status"] = str(self.status)
        doc["participants"] = {b: {"examples": p.examples, "metrics": p.metrics} for b, p in self.participants.items()}
        return {k: v for k, v in doc.items() if v is not None or k in ("clip_bound", "noise_std")}
