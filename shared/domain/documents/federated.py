"""The federated rounds' stored documents (``federated`` container) and the report of a published round.

``RoundState`` is a round's ``state.json``: what the state machine (``shared.federated.rounds``)
reads, changes and writes back conditionally on its ETag, and what the monitor reads for its
panel. ``LatestRound`` is the pointer to an experiment's newest round. ``FederatedReport`` is
what publishing a closed round's model leaves in ``reports``. Documents written before a field
existed read with its default.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fraudops_bank.status import RoundStatus as RoundStatus  # the values the banks' client polls for
from shared.domain.documents import StoredDocument

PUBLIC_NONE = ("clip_bound", "noise_multiplier")  # shown in the API even when None
PRIVATE = ("last_error", "clipped")  # never shown in the API


class Participant(BaseModel):
    """One bank's update in a round: how many examples it reports, its metrics, where the update is stored."""

    model_config = ConfigDict(extra="allow", frozen=True)

    examples: int
    metrics: dict[str, float]
    update: str
    received_at: float
    sha256: str | None = None  # of the update as counted
    norm: float | None = None  # L2 distance of the update from the round's global model (model rounds)


class Advert(BaseModel):
    """A bank's keys for one secure round, as it signed them with its identity key (``fraudops_bank.secure_round``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    c_pk: str
    s_pk: str
    model_sha256: str
    clip_bound: float | None
    noise_multiplier: float | None
    signature: str
    received_at: float


class RoundState(StoredDocument):
    """A round as the state machine stored it (``<experiment>/round-<n>/state.json``)."""

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
    participants: dict[str, Participant] = Field(default_factory=dict)
    why: str | None = None  # why an open round is not closed yet (answered, never stored)
    closed_at: float | None = None
    aggregate_metrics: dict[str, float] = Field(default_factory=dict)
    weights: dict[str, float] = Field(default_factory=dict)
    clipped: list[str] = Field(default_factory=list)  # banks whose step was clipped to the bound
    noise_std: float | None = None  # the Gaussian noise added to this round's average
    epsilon: float | None = None  # the privacy spent through this round (at dp_delta), by the RDP accountant
    noise_history: list[float | None] = Field(default_factory=list)  # each model round's noise multiplier so far
    rounds_without_noise: list[int] = Field(default_factory=list)  # model rounds released without noise
    published: bool | None = None  # False until the closed round's model is published (None: nothing to publish)
    lease_until: float | None = None  # while aggregating: when the aggregating caller's lease expires
    # ---- secure rounds (mode "secure"): the phases' records; never a bank's vector in clear -------------
    mode: str = "visible"  # "secure": the server sees only the sum (shared.federated.secure)
    threshold: int | None = None  # shares that rebuild a secret: more than half the members
    phase_deadline: float | None = None  # when the current phase may move on without the silent banks
    members: list[str] = Field(default_factory=list)  # fixed when the key phase fills
    adverts: dict[str, Advert] = Field(default_factory=dict)
    shared: dict[str, str] = Field(default_factory=dict)  # bank -> blob of its sealed shares and commitments
    masked: dict[str, str] = Field(default_factory=dict)  # bank -> blob of its masked vector
    unmasked: dict[str, str] = Field(default_factory=dict)  # bank -> blob of the shares it sent back
    summed: list[str] = Field(default_factory=list)  # banks whose vectors are in the closed round's sum
    clip_adaptive: bool = False  # the clip bound follows the median of the banks' step norms
    next_clip_bound: float | None = None  # the adaptive bound the next round opens with
    restarts: int = 0  # times a secure round started over from its key phase (a phase stalled below threshold)
    outcome: str | None = None  # why a closed secure round kept the model unchanged
    attempts: int = 0
    last_error: str | None = None

    def evolve(self, **changes: Any) -> RoundState:
        """The state with ``changes`` applied, validated like a stored one (NumPy numbers become plain ones)."""
        return type(self).model_validate({**self.model_dump(), **changes})

    @property
    def answered(self) -> int:
        """Banks in so far: updates of a visible round; in a secure round, those that answered its current phase
        (the summed banks once it is closed)."""
        if self.mode != "secure":
            return len(self.participants)
        by_phase: dict[RoundStatus, Sized] = {
            RoundStatus.OPEN: self.adverts,
            RoundStatus.SHARING: self.shared,
            RoundStatus.MASKING: self.masked,
            RoundStatus.UNMASKING: self.unmasked,
        }
        return len(by_phase.get(self.status, self.summed))

    @property
    def has_quorum(self) -> bool:
        return len(self.participants) >= self.min_clients

    def public(self) -> dict[str, Any]:
        """The state for every function-key holder: who took part, and the banks' totals.

        Not shown: storage paths, error details (``last_error`` may name blobs; it is in the logs), and
        per-bank facts (each bank's example count, metrics, norm, whether it was clipped): those are for
        that bank, which knows them, and the admin (``for_admin``).
        """
        shown = set(type(self).model_fields) - {"schema_version", *PRIVATE}
        doc = self.model_dump(mode="json", include=shown)
        doc["participants"] = sorted(self.participants)
        for phase in ("shared", "masked", "unmasked"):  # who is in each phase, never where its blob is
            doc[phase] = sorted(getattr(self, phase))
        doc["adverts"] = sorted(self.adverts)
        return {k: v for k, v in doc.items() if v is not None or k in PUBLIC_NONE}

    def for_admin(self) -> dict[str, Any]:
        """The public state and each bank's own facts (visible rounds): examples, metrics, norm, clipped."""
        doc = self.public()
        doc["participants"] = {
            b: {"examples": p.examples, "metrics": p.metrics, "norm": p.norm, "clipped": b in self.clipped}
            for b, p in sorted(self.participants.items())
        }
        return doc


class LatestRound(StoredDocument):
    """The pointer to an experiment's newest round (``<experiment>/latest.json``); it only moves forward."""

    round: int


class FederatedReport(StoredDocument):
    """What publishing a closed round's model left (``reports/federated/<version>.json``): the version, whether
    the gate promoted it and why, and the gate's record (its keys are kept as they are, beside these)."""

    model_version: str
    promoted: bool
    promotion_reason: str
