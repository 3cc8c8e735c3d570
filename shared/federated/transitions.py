"""A round's transitions over its typed state: open -> aggregating -> closed, as pure functions.

Each function takes a ``RoundState`` and returns the next one (or refuses with ``RoundStateError``);
the caller writes it conditionally on the ETag it read (``shared.federated.repository``) and, once
written, records the transition (``record_transition``: a span, a count, a line of the audit chain).
"""

from __future__ import annotations

import logging
from typing import Any

from shared.adapters.storage import BlobStore
from shared.domain.documents.federated import Participant, RoundState, RoundStatus
from shared.domain.errors import FraudOpsError
from shared.domain.telemetry import instruments, span
from shared.federated import privacy
from shared.federated.config import INITIAL_CLIP, RoundConfig

log = logging.getLogger(__name__)


class RoundStateError(FraudOpsError):
    """The round is not in a state that allows this (409 at the edge)."""


def opened(n: int, config: RoundConfig, now: float, *, adaptive_clip: float | None = None) -> RoundState:
    """Round ``n`` as it opens: no participant yet, the configuration it will be closed with (an adaptive clip
    bound is the one the previous round chose, ``adaptive_clip``)."""
    clip = (adaptive_clip or INITIAL_CLIP) if config.adaptive_clip else config.clip_bound
    return RoundState(
        round=n,
        kind="statistics" if n == 0 else "model",
        status=RoundStatus.OPEN,
        opened_at=now,
        deadline=now + config.deadline_seconds,
        min_clients=config.min_clients,
        aggregator=config.aggregator,
        trim_beta=config.beta if config.aggregator == "trimmed_mean" else None,
        clip_bound=clip,
        clip_adaptive=config.adaptive_clip,
        mode=config.mode,
        noise_multiplier=config.noise_multiplier,
        dp_delta=config.dp_delta if config.noise_multiplier else None,
        max_weight_share=config.max_weight_share,
    )


def restarted(state: RoundState, reason: str) -> RoundState:
    """A secure round whose phase stalled below the threshold, back in its key phase with fresh keys to come."""
    return state.evolve(
        status=RoundStatus.OPEN,
        members=[],
        adverts={},
        shared={},
        masked={},
        unmasked={},
        threshold=None,
        phase_deadline=None,
        restarts=state.restarts + 1,
        last_error=reason[:500],
    )


def lease_expired(state: RoundState, now: float) -> bool:
    return state.lease_until is None or now >= state.lease_until


def why_not_yet(state: RoundState, now: float) -> str | None:
    """Why an open round cannot close yet (its quorum is not in), ``None`` when it can."""
    have, need = len(state.participants), state.min_clients
    if have < need:
        late = now >= state.deadline
        return f"{have} of {need} updates are in" + (
            "; the deadline has passed, the round stays open until enough banks report" if late else ""
        )
    return None


def admitted(state: RoundState, n: int, bank: str, entry: Participant) -> RoundState | None:
    """The state with ``bank``'s update counted; ``None`` when this very update already is (a retry)."""
    mine = state.participants.get(bank)
    if mine is not None and mine.sha256 == entry.sha256:
        return None
    if mine is not None:
        raise RoundStateError(f"bank {bank} already sent its update for round {n}")
    if state.status != RoundStatus.OPEN:
        raise RoundStateError(f"round {n} closed while bank {bank}'s update arrived; send it to the next")
    return state.evolve(participants={**state.participants, bank: entry})


def leased(state: RoundState, now: float, lease_seconds: float) -> RoundState:
    """The round taken for aggregation by one caller until its lease expires."""
    return state.evolve(status=RoundStatus.AGGREGATING, lease_until=now + lease_seconds, attempts=state.attempts + 1)


def released(state: RoundState, now: float, lease_seconds: float, reason: str) -> RoundState:
    """The lease given back after a failed close: the next attempt waits a backoff that doubles per attempt."""
    retry_at = now + min(lease_seconds, 5.0 * 2**state.attempts)
    return state.evolve(lease_until=retry_at, last_error=reason[:500])


def closed(state: RoundState, now: float, weights: dict[str, float], **outcome: Any) -> RoundState:
    """The round closed: when, the participants' weighted metrics, each bank's weight, and ``outcome``."""
    return state.evolve(
        **outcome,
        status=RoundStatus.CLOSED,
        closed_at=now,
        aggregate_metrics=weighted_metrics(state.participants),
        weights=weights,
        lease_until=None,
    )


def weighted_metrics(participants: dict[str, Participant]) -> dict[str, float]:
    """Each metric a bank reported, averaged over the banks by their examples (a missing one counts 0)."""
    total = sum(p.examples for p in participants.values())
    keys = set().union(*(p.metrics for p in participants.values())) if participants else set()
    return {k: sum(p.metrics.get(k, 0.0) * p.examples for p in participants.values()) / total for k in sorted(keys)}


def privacy_spent(n: int, noise_std: float, state: RoundState, previous: RoundState | None) -> dict[str, Any]:
    """The noise multiplier of every model round so far, and the epsilon they compose to (``None`` if any
    round released its model without noise: then no finite epsilon holds)."""
    known = previous is not None and "noise_history" in previous.model_fields_set
    before = previous.noise_history if previous is not None and known else [None] * max(n - 1, 0)
    z = state.noise_multiplier
    if z:  # an adaptive bound releases the noised count of clipped steps too: accounted at the composed multiplier
        from fraudops_bank.privacy import accounted_multiplier

        z = accounted_multiplier(z, adaptive=state.clip_adaptive, min_clients=state.min_clients)
    history = [*before, z]
    noised = [z for z in history if z]
    epsilon = None
    if noise_std and len(noised) == len(history) and state.dp_delta is not None:
        epsilon = privacy.epsilon_of(noised, state.dp_delta)
    unprotected = [i + 1 for i, z in enumerate(history) if not z]
    return {
        "noise_std": noise_std or None,
        "noise_history": history,
        "epsilon": epsilon,
        "rounds_without_noise": unprotected,
    }


def record_transition(
    store: BlobStore, experiment: str, n: int, status: RoundStatus, details: dict[str, Any] | None = None
) -> None:
    """A round changed state: one span (its own trace), the transitions counter and a line of the audit chain
    (a failure to write it is logged: the round's own state is already written and stands)."""
    from shared.adapters.audit import AuditLog, service_actor
    from shared.domain.audit import Act

    with span("federated.transition", experiment=experiment, round=n, status=str(status)):
        instruments().rounds.add(1, {"experiment": experiment, "status": str(status)})
        act = Act(
            "round_transition",
            service_actor("federated rounds"),
            f"round {n} of {experiment} is {status}",
            {"experiment": experiment, "round": n, "status": str(status), **(details or {})},
        )
        try:
            AuditLog(store).record(act)
        except Exception:
            log.exception("could not write round %d's transition to %s to the audit chain", n, status)
