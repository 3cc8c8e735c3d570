"""A round's status and its stored state, as typed values: shared by the server's state machine and the API."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from fraudops_bank.status import RoundStatus as RoundStatus  # the values the banks' client polls for


@dataclass(frozen=True)
class Participant:
    """One bank's update in a round: how many examples it reports, its metrics, where the update is stored."""

    examples: int
    metrics: dict[str, float]
    update: str
    received_at: float
    sha256: str | None = None  # of the update as counted
    norm: float | None = None  # L2 distance of the update from the round's global model (model rounds)


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
    max_weight_share: float
    trim_beta: float | None = None
    noise_multiplier: float | None = None
    dp_delta: float | None = None
    participants: dict[str, Participant] = field(default_factory=dict)
    why: str | None = None
    closed_at: float | None = None
    aggregate_metrics: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    clipped: list[str] = field(default_factory=list)  # banks whose step was clipped to the bound
    noise_std: float | None = None  # the Gaussian noise added to this round's average
    epsilon: float | None = None  # the privacy spent through this round (at dp_delta), by the RDP accountant
    noise_history: list[float | None] = field(default_factory=list)  # each model round's noise multiplier so far
    rounds_without_noise: list[int] = field(default_factory=list)  # model rounds released without noise
    published: bool | None = None  # False until the closed round's model is published (None: nothing to publish)
    lease_until: float | None = None  # while aggregating: when the aggregating caller's lease expires
    attempts: int = 0
    last_error: str | None = None

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> RoundState:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in doc.items() if k in known}
        values["status"] = RoundStatus(doc["status"])
        fields = set(Participant.__dataclass_fields__)
        values["participants"] = {
            b: Participant(**{k: v for k, v in p.items() if k in fields})
            for b, p in doc.get("participants", {}).items()
        }
        return cls(**values)

    def public(self) -> dict[str, Any]:
        """The state for the API: who took part, with how many examples and their metrics.

        Not shown: storage paths, error details (``last_error`` may name blobs; it is in the logs), and
        per-bank facts released without noise (each update's norm, who was clipped).
        """
        doc = dataclasses.asdict(self)
        doc["status"] = str(self.status)
        doc["participants"] = {b: {"examples": p.examples, "metrics": p.metrics} for b, p in self.participants.items()}
        for private in ("last_error", "clipped"):
            doc.pop(private)
        return {k: v for k, v in doc.items() if v is not None or k in ("clip_bound", "noise_multiplier")}
