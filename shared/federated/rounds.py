"""Federated rounds as a state machine in Blob: open -> aggregating -> closed, every change ETag-conditional.

The state is a typed ``RoundState`` (``shared.domain.documents.federated``) that the repository
(``shared.federated.repository``) reads and writes back conditionally; each transition is a function
over it (``shared.federated.transitions``), and closing computes the next model from the stored
updates (``shared.federated.aggregation``). This module puts them in order.

**Submit** is atomic from the bank's view: the update is stored under its own digest first (writing
the same bytes twice is harmless), and the bank becomes a participant only when the state write that
names it succeeds. Until then nothing counts; after it, sending the same update again answers as the
first time did, and a different one is refused. Bank ids are canonical (lower case).

**Closing**: when ``min_clients`` updates are in, one caller wins the conditional move to
``aggregating`` and holds it for ``lease_seconds``. Every step of the close is idempotent (the next
global model is create-only and a re-run keeps the one already written), so if the caller crashes or
fails, anyone may take the expired lease and re-run the close from the stored updates; a failure
also releases the lease at once. A closed round whose successor was never opened gets it opened by
the next call (``ensure_open``), so no crash between two writes leaves the experiment stuck.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from shared.adapters.storage import BlobStore
from shared.domain.documents.federated import Participant, RoundState, RoundStatus
from shared.domain.errors import ConcurrentUpdateError, FraudOpsError, RetryLaterError
from shared.federated import aggregate, secure, transitions
from shared.federated.aggregation import aggregated, repair_scaler
from shared.federated.banks import bank_id
from shared.federated.config import RoundConfig as RoundConfig
from shared.federated.headers import check_examples, check_metrics
from shared.federated.model import stats_template
from shared.federated.params import from_wire
from shared.federated.repository import MAX_ATTEMPTS, RoundRepository
from shared.federated.repository import RoundNotFoundError as RoundNotFoundError
from shared.federated.scaler import read_scaler
from shared.federated.secure import SecurePhases
from shared.federated.statistics import check_statistics
from shared.federated.transitions import RoundStateError as RoundStateError
from shared.federated.transitions import lease_expired, record_transition

log = logging.getLogger(__name__)

Params = dict[str, np.ndarray]
OnClose = Callable[[int, Params, Params, RoundState], Any]


class Rounds:
    """The rounds of one experiment."""

    def __init__(
        self,
        store: BlobStore,
        experiment: str,
        config: RoundConfig,
        clock: Callable[[], float] = time.time,
        on_close: OnClose | None = None,
    ) -> None:
        config.check()
        self.store, self.experiment, self.config, self.clock = store, experiment, config, clock
        self.on_close = on_close
        self.repository = RoundRepository(store, experiment)
        self.secure = SecurePhases(self.repository, phase_seconds=config.phase_seconds, clock=clock)

    # ---- reads ----------------------------------------------------------------------------------
    def state(self, n: int) -> RoundState:
        """Round ``n`` as stored."""
        return self.repository.read(n)[0]

    def global_model(self, n: int) -> Params:
        return self.repository.global_model(n)

    def current(self) -> int:
        """The newest round that exists (the open one, or the last closed)."""
        return self.repository.current()

    def scaler(self) -> Params | None:
        """The shared scaler; ``None`` before round 0 closes; ``RoundStateError`` if the stored one is unusable."""
        return read_scaler(self.store, self.experiment)

    def ensure_open(self) -> RoundState:
        """The round banks should train for now, repairing what a crash left: a closed newest round gets its
        successor opened, an aggregation whose lease expired is resumed, a round whose quorum is in is closed."""
        n = self.current()
        state = self.state(n)
        if state.mode == "secure" and state.status not in (RoundStatus.AGGREGATING, RoundStatus.CLOSED):
            state = self.progress(n)
        crashed_close = state.status == RoundStatus.AGGREGATING and lease_expired(state, self.clock())
        quorum_unclosed = state.status == RoundStatus.OPEN and state.has_quorum and state.mode != "secure"
        if crashed_close or quorum_unclosed:
            state = self.aggregate(n)
        if state.status == RoundStatus.CLOSED:
            return self._open(n + 1)
        return state

    # ---- opening --------------------------------------------------------------------------------
    def start(self, initial: Params, *, round_number: int = 1) -> RoundState:
        """Publish the initial global model and open the first round (create-only: starting twice fails)."""
        if not self.repository.create_global(round_number, initial):
            raise RoundStateError(f"experiment {self.experiment} has already started")
        return self._open(round_number)

    def start_with_statistics(self, n_features: int) -> RoundState:
        """Round 0: banks send sufficient statistics; its close derives the scaler and opens round 1."""
        return self.start(stats_template(n_features), round_number=0)

    def progress(self, n: int) -> RoundState:
        """A secure round moved on as far as it can: its complete (or late) phases advanced, a phase stalled below
        the threshold started over from the key phase, a finished unmasking closed."""
        state = self.secure.advance(n)
        stall = secure.stalled(state, self.clock())
        if stall is not None:
            log.warning("round %d: %s; it starts over from its key phase", n, stall)
            state = self.secure.commit(
                n, lambda s: transitions.restarted(s, stall) if secure.stalled(s, self.clock()) else None
            )
        if secure.ready_to_close(state, self.clock()):
            state = self.aggregate(n)
        return state

    def _open(self, n: int) -> RoundState:
        previous = self.repository.find(n - 1) if n > 0 and self.config.adaptive_clip else None
        adaptive = previous.next_clip_bound if previous is not None else None
        if self.repository.create(transitions.opened(n, self.config, self.clock(), adaptive_clip=adaptive)):
            record_transition(self.store, self.experiment, n, RoundStatus.OPEN)
        # else another caller opened it first: theirs stands
        self.repository.advance_latest(n)
        return self.state(n)

    # ---- submitting -----------------------------------------------------------------------------
    def _read_for_submit(self, n: int) -> RoundState:
        """Round ``n``'s state, opening it first if round ``n - 1`` closed and a crash left it unopened."""
        try:
            return self.state(n)
        except RoundNotFoundError:
            if n < 1 or self.repository.status(n - 1) != RoundStatus.CLOSED:
                raise
        return self._open(n)

    def submit(self, n: int, bank: str, data: bytes, examples: int, metrics: dict[str, float]) -> RoundState:
        """Store ``bank``'s update for round ``n``; aggregate when enough are in. Returns the round's state."""
        bank = bank_id(bank)
        examples = check_examples(examples, self.config.max_examples)
        metrics = check_metrics(metrics)
        digest = hashlib.sha256(data).hexdigest()
        state = self._read_for_submit(n)
        if state.status == RoundStatus.AGGREGATING and lease_expired(state, self.clock()):
            self.aggregate(n)  # a crashed close: finish it before answering
            state = self.state(n)
        if state.mode == "secure":
            raise RoundStateError(
                f"round {n} is a secure round: the server takes no update in clear; run a client that speaks secure "
                "aggregation (fraudops-bank 0.2 or later)"
            )
        mine = state.participants.get(bank)
        if mine is not None:
            if mine.sha256 == digest:  # a retry of an update that was counted: the same answer
                if state.status == RoundStatus.OPEN and state.has_quorum:
                    return self.aggregate(n)  # the first attempt crashed before it could close the round
                return state
            raise RoundStateError(f"bank {bank} already sent its update for round {n}")
        if state.status != RoundStatus.OPEN:
            raise RoundStateError(f"round {n} is {state.status}, not open for updates")
        reference = self.global_model(n)
        params = from_wire(data, expected={k: v.shape for k, v in reference.items()})
        names = sorted(reference)
        norm = None
        if n == 0:
            check_statistics(params, examples)
        else:
            norm = aggregate.update_norm([params[k] for k in names], [reference[k] for k in names])
        entry = Participant(
            examples=examples,
            metrics=metrics,
            update=self.repository.put_update(n, bank, digest, data),  # content-addressed: rewriting is harmless
            sha256=digest,
            norm=norm,
            received_at=self.clock(),
        )
        state = self._add_participant(n, bank, entry)
        log.info(
            "round %d: update from %s (%d examples), %d of %d in",
            n,
            bank,
            examples,
            len(state.participants),
            state.min_clients,
        )
        if state.has_quorum:
            return self.aggregate(n)
        return state

    def _add_participant(self, n: int, bank: str, entry: Participant) -> RoundState:
        """The commit point of a submit: one conditional write naming the bank, retried on conflict."""
        for _ in range(MAX_ATTEMPTS):
            state, etag = self.repository.read(n)
            admitted = transitions.admitted(state, n, bank, entry)
            if admitted is None:
                return state  # a concurrent retry of the same update got there first
            try:
                self.repository.write(n, admitted, etag)
            except ConcurrentUpdateError:
                continue
            return admitted
        raise RetryLaterError(
            f"round {n} is too busy ({MAX_ATTEMPTS} conflicting writes in a row); your update was not counted: "
            "send it again"
        )

    # ---- closing --------------------------------------------------------------------------------
    def aggregate(self, n: int, *, force: bool = False) -> RoundState:
        """Close round ``n`` if its quorum is in; exactly one caller aggregates. The state, with ``why`` if open.

        On a closed round it repairs what a crash left: the next round is opened, and with ``force``
        (the admin route) a publication that failed is retried and an unusable round-0 scaler re-derived.
        """
        state, etag = self.repository.read(n)
        if state.status == RoundStatus.CLOSED:
            if force and n == 0:
                repair_scaler(self.repository, state, self.config)
            if force and state.published is False:
                state = self._publish(n, state, etag)
            self._open(n + 1)  # idempotent: a crash between closing n and opening n + 1 is repaired here
            return state
        if state.status == RoundStatus.AGGREGATING and not lease_expired(state, self.clock()):
            return state  # someone holds the lease (or a failed close waits its backoff)
        if state.mode == "secure" and state.status != RoundStatus.AGGREGATING:
            if not secure.ready_to_close(state, self.clock()):
                return state.evolve(why=secure.why_not_yet(state, self.clock()))
        elif state.status == RoundStatus.OPEN:
            why = transitions.why_not_yet(state, self.clock())
            if why:
                return state.evolve(why=why)
        else:
            log.warning("round %d: the aggregation lease expired (attempt %d); resuming", n, state.attempts)
        state = transitions.leased(state, self.clock(), self.config.lease_seconds)
        try:  # the returned ETag guards the close below: no second read
            etag = self.repository.write(n, state, etag)
            record_transition(self.store, self.experiment, n, RoundStatus.AGGREGATING)
        except ConcurrentUpdateError:
            return self.state(n)  # someone else took the lease (or a late update changed it): theirs
        try:
            committed = self._close(n, state, etag)
        except Exception as exc:
            reason = exc.reason if isinstance(exc, FraudOpsError) else f"{type(exc).__name__}: {exc}"
            log.exception("round %d: aggregation failed (%s); releasing the lease", n, reason)
            retry_at = self._release(n, state, etag, reason)
            raise RetryLaterError(
                f"round {n} could not be aggregated ({reason}); every update is kept and the close is retried "
                f"by the first GET /api/federated/model or POST .../aggregate after {retry_at:.0f} (Unix seconds)"
            ) from exc
        if committed is None:
            return self.state(n)  # our lease had expired and another caller closed it: theirs stands
        return self._after_close(n, *committed)

    def _release(self, n: int, state: RoundState, etag: str, reason: str) -> float:
        """Give the lease back after a failed close; when the next attempt may run."""
        released = transitions.released(state, self.clock(), self.config.lease_seconds, reason)
        try:
            self.repository.write(n, released, etag)
        except Exception:  # the lease then simply expires
            log.exception("round %d: could not release the aggregation lease; it expires on its own", n)
            return float(state.lease_until or released.lease_until or 0.0)
        return float(released.lease_until or 0.0)

    def _close(self, n: int, state: RoundState, etag: str) -> tuple[RoundState, str] | None:
        """Compute and commit the close from the stored updates; the committed state and its ETag, or ``None``
        if another caller committed first. Every write before the commit is create-only or idempotent."""
        done = aggregated(
            self.repository, n, state, config=self.config, now=self.clock(), publishes=self.on_close is not None
        )
        try:
            etag = self.repository.write(n, done, etag)
            record_transition(
                self.store, self.experiment, n, RoundStatus.CLOSED, {"participants": sorted(done.participants)}
            )
        except ConcurrentUpdateError:
            log.warning("round %d: our lease expired and another caller took over the close; theirs stands", n)
            return None
        log.info("round %d closed: %d updates aggregated with %s", n, len(done.weights), done.aggregator)
        return done, etag

    def _after_close(self, n: int, state: RoundState, etag: str) -> RoundState:
        """What follows a committed close (the state after it); a failure here is logged and repaired later,
        never a failed close."""
        try:
            self._open(n + 1)
        except Exception:
            log.exception("round %d closed, but opening round %d failed; the next call opens it", n, n + 1)
        if state.published is False:
            return self._publish(n, state, etag)
        return state

    def _publish(self, n: int, state: RoundState, etag: str) -> RoundState:
        """Hand the closed round's model to ``on_close``; mark it published once that succeeds (the state after)."""
        if self.on_close is None:
            return state
        try:  # publishing is a consequence of the round, not part of it: a failure is logged, not raised
            scaler = self.scaler()
            if scaler is None:
                raise RoundStateError("there is no shared scaler yet")
            self.on_close(n, self.global_model(n + 1), scaler, state)
        except Exception:
            log.exception("round %d closed, but publishing its model failed; POST .../aggregate retries it", n)
            return state
        published = state.evolve(published=True)
        with contextlib.suppress(ConcurrentUpdateError):  # a concurrent retry marked it first
            self.repository.write(n, published, etag)
        return published
