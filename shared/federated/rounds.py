"""Federated rounds as a state machine in Blob: open -> aggregating -> closed, every change ETag-conditional.

Layout under the ``federated`` container::

    <experiment>/global/round-<n>.npz                   the model round n starts from (written by closing n-1)
    <experiment>/round-<n>/state.json                    status, deadline, participants, aggregate metrics
    <experiment>/round-<n>/updates/<bank>-<sha256>.npz   each bank's parameters, named by their digest
    <experiment>/scaler.npz                              the shared scaler (closing round 0 derives it)

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
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.adapters.storage import BlobStore
from shared.domain.errors import (
    BlobExistsError,
    BlobNotFoundError,
    ConcurrentUpdateError,
    ConfigurationError,
    FraudOpsError,
    RetryLaterError,
)
from shared.domain.telemetry import instruments, span
from shared.federated import aggregate, privacy
from shared.federated.aggregators import Aggregator, aggregator_for
from shared.federated.banks import bank_id
from shared.federated.headers import MAX_EXAMPLES, check_examples, check_metrics
from shared.federated.merge import capped_weights, merge
from shared.federated.params import BadParametersError, from_npz, to_npz
from shared.federated.statistics import check_scaler, check_statistics, combine
from shared.federated.status import RoundState, RoundStatus

log = logging.getLogger(__name__)

CONTAINER = "federated"
MAX_ATTEMPTS = 50


OnClose = Callable[[int, dict[str, np.ndarray], dict[str, np.ndarray], RoundState], Any]


class RoundStateError(FraudOpsError):
    """The round is not in a state that allows this (409 at the edge)."""


class RoundNotFoundError(FraudOpsError):
    """No such round (404 at the edge)."""


def default_trim_beta(quorum: int) -> float:
    """The share a trimmed mean drops at each end: 20%, and never less than one update at the quorum."""
    return max(0.2, math.ceil(1000 / quorum) / 1000)


@dataclass(frozen=True)
class RoundConfig:
    """How rounds are opened and closed; ``check`` refuses a configuration that would disarm a defence."""

    min_clients: int = 3
    deadline_seconds: float = 3600.0
    aggregator: str = "fedavg"
    trim_beta: float | None = None  # None: default_trim_beta(min_clients)
    clip_bound: float | None = None
    noise_multiplier: float | None = None
    dp_delta: float = 1e-5
    max_weight_share: float = 0.5
    max_examples: int = MAX_EXAMPLES
    lease_seconds: float = 300.0

    @property
    def beta(self) -> float:
        return self.trim_beta if self.trim_beta is not None else default_trim_beta(self.min_clients)

    def check(self) -> None:
        """``ConfigurationError`` with the reason for settings under which one bank could set the model."""
        try:
            aggregator_for(self.aggregator, trim_beta=self.beta)
        except ValueError as exc:
            raise ConfigurationError(f"FL_AGGREGATOR: {exc}") from None
        robust = self.aggregator in ("median", "trimmed_mean")
        if robust and self.min_clients < 3:
            raise ConfigurationError(
                f"{self.aggregator} over a quorum of FL_MIN_CLIENTS={self.min_clients} is no more robust than a "
                "mean (one bank of two sets it): set FL_MIN_CLIENTS to 3 or more"
            )
        if self.aggregator == "trimmed_mean" and int(self.beta * self.min_clients) < 1:
            least = math.ceil(1000 / self.min_clients) / 1000
            raise ConfigurationError(
                f"trimmed_mean with FL_TRIM_BETA={self.beta:g} drops int({self.beta:g} x {self.min_clients}) = 0 "
                f"updates at each end at the quorum of FL_MIN_CLIENTS={self.min_clients}, so one bank can set the "
                f"model: set FL_TRIM_BETA to at least {least:g} (or leave it unset), or use median"
            )
        if self.noise_multiplier is not None and self.clip_bound is None:
            raise ConfigurationError("FL_NOISE_MULTIPLIER needs FL_CLIP_BOUND: noise is calibrated to the clip bound")
        if self.noise_multiplier is not None and self.aggregator != "fedavg":
            raise ConfigurationError(
                f"differential privacy is accounted for the clipped mean only; FL_AGGREGATOR={self.aggregator} "
                "has no stated epsilon: use fedavg with FL_CLIP_BOUND and FL_NOISE_MULTIPLIER"
            )


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

    # ---- names and reads --------------------------------------------------------------------
    def _state_name(self, n: int) -> str:
        return f"{self.experiment}/round-{n}/state.json"

    def _global_name(self, n: int) -> str:
        return f"{self.experiment}/global/round-{n}.npz"

    def state(self, n: int) -> RoundState:
        """Round ``n`` as stored, read into named fields."""
        return RoundState.from_document(self._read(n)[0])

    def _read(self, n: int) -> tuple[dict[str, Any], str]:
        try:
            data, etag = self.store.get_bytes(CONTAINER, self._state_name(n))
        except BlobNotFoundError:
            raise RoundNotFoundError(f"round {n} of {self.experiment} does not exist") from None
        return json.loads(data), etag

    def _write(self, n: int, state: dict[str, Any], etag: str) -> str:
        return self.store.put_bytes(
            CONTAINER, self._state_name(n), json.dumps(state).encode(), if_match=etag, content_type="application/json"
        )

    def global_model(self, n: int) -> dict[str, np.ndarray]:
        try:
            data, _ = self.store.get_bytes(CONTAINER, self._global_name(n))
        except BlobNotFoundError:
            raise RoundNotFoundError(f"there is no global model for round {n}") from None
        return from_npz(data)

    def current(self) -> int:
        """The newest round that exists (the open one, or the last closed).

        Read from the ``latest.json`` pointer each opening advances, then confirmed by probing the next
        round's state (a crash may leave the pointer one behind): two small reads, whatever the number of
        rounds and updates. Without a pointer (an experiment from before it) the states are listed once.
        """
        try:
            n = int(json.loads(self.store.get_bytes(CONTAINER, self._latest_name())[0])["round"])
        except BlobNotFoundError:
            names = self.store.list_names(CONTAINER, f"{self.experiment}/round-")
            rounds = [int(n.split("/")[1].removeprefix("round-")) for n in names if n.endswith("/state.json")]
            if not rounds:
                raise RoundNotFoundError(f"experiment {self.experiment} has not started") from None
            return max(rounds)
        while n > 0 and self._status(n) is None:  # never expected (states are not deleted), but never trusted
            n -= 1
        while self._status(n + 1) is not None:
            n += 1
        return n

    def _latest_name(self) -> str:
        return f"{self.experiment}/latest.json"

    def _advance_latest(self, n: int) -> None:
        """Move the pointer to round ``n`` unless it is already there or beyond (conditional, so never back)."""
        name = self._latest_name()
        for _ in range(MAX_ATTEMPTS):
            try:
                data, etag = self.store.get_bytes(CONTAINER, name)
            except BlobNotFoundError:
                with contextlib.suppress(BlobExistsError):
                    self.store.put_bytes(CONTAINER, name, json.dumps({"round": n}).encode(), overwrite=False)
                    return
                continue
            if int(json.loads(data)["round"]) >= n:
                return
            with contextlib.suppress(ConcurrentUpdateError):
                self.store.put_bytes(CONTAINER, name, json.dumps({"round": n}).encode(), if_match=etag)
                return

    def ensure_open(self) -> RoundState:
        """The round banks should train for now, repairing what a crash left: a closed newest round gets its
        successor opened, an aggregation whose lease expired is resumed, a round whose quorum is in is closed."""
        n = self.current()
        state = self.state(n)
        crashed_close = state.status == RoundStatus.AGGREGATING and self._lease_expired(state.lease_until)
        quorum_unclosed = state.status == RoundStatus.OPEN and len(state.participants) >= state.min_clients
        if crashed_close or quorum_unclosed:
            state = self.aggregate(n)
        if state.status == RoundStatus.CLOSED:
            return self._open(n + 1)
        return state

    def _lease_expired(self, lease_until: float | None) -> bool:
        return lease_until is None or self.clock() >= lease_until

    # ---- transitions -------------------------------------------------------------------------
    def start(self, initial: dict[str, np.ndarray], *, round_number: int = 1) -> RoundState:
        """Publish the initial global model and open the first round (create-only: starting twice fails)."""
        try:
            self.store.put_bytes(CONTAINER, self._global_name(round_number), to_npz(initial), overwrite=False)
        except BlobExistsError:
            raise RoundStateError(f"experiment {self.experiment} has already started") from None
        return self._open(round_number)

    def start_with_statistics(self, n_features: int) -> RoundState:
        """Round 0: banks send sufficient statistics; its close derives the scaler and opens round 1."""
        from shared.federated.model import stats_template

        return self.start(stats_template(n_features), round_number=0)

    def scaler(self) -> dict[str, np.ndarray] | None:
        """The shared scaler; ``None`` before round 0 closes; ``RoundStateError`` if the stored one is unusable."""
        try:
            scaler = from_npz(self.store.get_bytes(CONTAINER, f"{self.experiment}/scaler.npz")[0])
            check_scaler(scaler)
        except BlobNotFoundError:
            return None
        except BadParametersError as exc:
            raise RoundStateError(
                f"the shared scaler is unusable ({exc.reason}); an admin re-derives it from round 0's checked "
                "statistics with POST /api/federated/rounds/0/aggregate"
            ) from None
        return scaler

    def _open(self, n: int) -> RoundState:
        now = self.clock()
        state: dict[str, Any] = {
            "round": n,
            "kind": "statistics" if n == 0 else "model",
            "status": RoundStatus.OPEN,
            "opened_at": now,
            "deadline": now + self.config.deadline_seconds,
            "min_clients": self.config.min_clients,
            "aggregator": self.config.aggregator,
            "trim_beta": self.config.beta if self.config.aggregator == "trimmed_mean" else None,
            "clip_bound": self.config.clip_bound,
            "noise_multiplier": self.config.noise_multiplier,
            "dp_delta": self.config.dp_delta if self.config.noise_multiplier else None,
            "max_weight_share": self.config.max_weight_share,
            "participants": {},
        }
        with contextlib.suppress(BlobExistsError):  # another caller opened it first: theirs stands
            self.store.put_bytes(
                CONTAINER,
                self._state_name(n),
                json.dumps(state).encode(),
                overwrite=False,
                content_type="application/json",
            )
            _transitioned(self.store, self.experiment, n, RoundStatus.OPEN)
        self._advance_latest(n)
        return self.state(n)

    def _read_for_submit(self, n: int) -> tuple[dict[str, Any], str]:
        """Round ``n``'s state, opening it first if round ``n - 1`` closed and a crash left it unopened."""
        try:
            return self._read(n)
        except RoundNotFoundError:
            if n < 1 or self._status(n - 1) != RoundStatus.CLOSED:
                raise
        self._open(n)
        return self._read(n)

    def _status(self, n: int) -> RoundStatus | None:
        doc = self._status_doc(n)
        return RoundStatus(doc["status"]) if doc else None

    def submit(self, n: int, bank: str, data: bytes, examples: int, metrics: dict[str, float]) -> RoundState:
        """Store ``bank``'s update for round ``n``; aggregate when enough are in. Returns the round's state."""
        bank = bank_id(bank)
        examples = check_examples(examples, self.config.max_examples)
        metrics = check_metrics(metrics)
        digest = hashlib.sha256(data).hexdigest()
        state, _ = self._read_for_submit(n)
        if state["status"] == RoundStatus.AGGREGATING and self._lease_expired(state.get("lease_until")):
            self.aggregate(n)  # a crashed close: finish it before answering
            state, _ = self._read(n)
        mine = state["participants"].get(bank)
        if mine is not None:
            if mine.get("sha256") == digest:  # a retry of an update that was counted: the same answer
                if state["status"] == RoundStatus.OPEN and len(state["participants"]) >= state["min_clients"]:
                    return self.aggregate(n)  # the first attempt crashed before it could close the round
                return RoundState.from_document(state)
            raise RoundStateError(f"bank {bank} already sent its update for round {n}")
        if state["status"] != RoundStatus.OPEN:
            raise RoundStateError(f"round {n} is {state['status']}, not open for updates")
        reference = self.global_model(n)
        params = from_npz(data, expected={k: v.shape for k, v in reference.items()})
        names = sorted(reference)
        norm = None
        if n == 0:
            check_statistics(params, examples)
        else:
            norm = aggregate.update_norm([params[k] for k in names], [reference[k] for k in names])
        blob = f"{self.experiment}/round-{n}/updates/{bank}-{digest[:32]}.npz"
        self.store.put_bytes(CONTAINER, blob, data, overwrite=True)  # content-addressed: rewriting is harmless
        entry = {
            "examples": examples,
            "metrics": metrics,
            "update": blob,
            "sha256": digest,
            "norm": norm,
            "received_at": self.clock(),
        }
        state = self._add_participant(n, bank, entry)
        log.info(
            "round %d: update from %s (%d examples), %d of %d in",
            n,
            bank,
            examples,
            len(state["participants"]),
            state["min_clients"],
        )
        if len(state["participants"]) >= state["min_clients"]:
            return self.aggregate(n)
        return RoundState.from_document(state)

    def _add_participant(self, n: int, bank: str, entry: dict[str, Any]) -> dict[str, Any]:
        """The commit point of a submit: one conditional write naming the bank, retried on conflict."""
        for _ in range(MAX_ATTEMPTS):
            state, etag = self._read(n)
            mine = state["participants"].get(bank)
            if mine is not None and mine.get("sha256") == entry["sha256"]:
                return state  # a concurrent retry of the same update got there first
            if mine is not None:
                raise RoundStateError(f"bank {bank} already sent its update for round {n}")
            if state["status"] != RoundStatus.OPEN:
                raise RoundStateError(f"round {n} closed while bank {bank}'s update arrived; send it to the next")
            state["participants"][bank] = entry
            try:
                self._write(n, state, etag)
            except ConcurrentUpdateError:
                continue
            return state
        raise RetryLaterError(
            f"round {n} is too busy ({MAX_ATTEMPTS} conflicting writes in a row); your update was not counted: "
            "send it again"
        )

    def aggregate(self, n: int, *, force: bool = False) -> RoundState:
        """Close round ``n`` if its quorum is in; exactly one caller aggregates. The state, with ``why`` if open.

        On a closed round it repairs what a crash left: the next round is opened, and with ``force``
        (the admin route) a publication that failed is retried and an unusable round-0 scaler re-derived.
        """
        state, etag = self._read(n)
        status = state["status"]
        if status == RoundStatus.CLOSED:
            if force and n == 0:
                self._repair_scaler(state)
            if force and state.get("published") is False:
                self._publish(n, state, etag)
            self._open(n + 1)  # idempotent: a crash between closing n and opening n + 1 is repaired here
            return RoundState.from_document(state)
        if status == RoundStatus.AGGREGATING and not self._lease_expired(state.get("lease_until")):
            return RoundState.from_document(state)  # someone holds the lease (or a failed close waits its backoff)
        if status == RoundStatus.OPEN:
            why = self._why_not_yet(state)
            if why:
                state["why"] = why
                return RoundState.from_document(state)
        else:
            log.warning("round %d: the aggregation lease expired (attempt %d); resuming", n, state.get("attempts", 0))
        state.update(
            status=RoundStatus.AGGREGATING,
            lease_until=self.clock() + self.config.lease_seconds,
            attempts=int(state.get("attempts", 0)) + 1,
        )
        try:  # the returned ETag guards the close below: no second read
            etag = self._write(n, state, etag)
            _transitioned(self.store, self.experiment, n, RoundStatus.AGGREGATING)
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
        self._after_close(n, state, committed)
        return RoundState.from_document(state)

    def _why_not_yet(self, state: dict[str, Any]) -> str | None:
        have, need = len(state["participants"]), state["min_clients"]
        if have < need:
            late = self.clock() >= state["deadline"]
            return f"{have} of {need} updates are in" + (
                "; the deadline has passed, the round stays open until enough banks report" if late else ""
            )
        return None

    def _release(self, n: int, state: dict[str, Any], etag: str, reason: str) -> float:
        """Give the lease back after a failed close; the next attempt waits a backoff that doubles per attempt."""
        retry_at: float = self.clock() + min(self.config.lease_seconds, 5.0 * 2 ** int(state.get("attempts", 1)))
        previous = float(state.get("lease_until") or retry_at)
        state.update(lease_until=retry_at, last_error=reason[:500])
        try:
            self._write(n, state, etag)
        except Exception:  # the lease then simply expires
            log.exception("round %d: could not release the aggregation lease; it expires on its own", n)
            return previous
        return retry_at

    def _after_close(self, n: int, state: dict[str, Any], etag: str) -> None:
        """What follows a committed close; a failure here is logged and repaired later, never a failed close."""
        try:
            self._open(n + 1)
        except Exception:
            log.exception("round %d closed, but opening round %d failed; the next call opens it", n, n + 1)
        if state.get("published") is False:
            self._publish(n, state, etag)

    def _publish(self, n: int, state: dict[str, Any], etag: str) -> None:
        """Hand the closed round's model to ``on_close``; mark it published once that succeeds."""
        if self.on_close is None:
            return
        try:  # publishing is a consequence of the round, not part of it: a failure is logged, not raised
            scaler = self.scaler()
            if scaler is None:
                raise RoundStateError("there is no shared scaler yet")
            self.on_close(n, self.global_model(n + 1), scaler, RoundState.from_document(state))
        except Exception:
            log.exception("round %d closed, but publishing its model failed; POST .../aggregate retries it", n)
            return
        state["published"] = True
        with contextlib.suppress(ConcurrentUpdateError):  # a concurrent retry marked it first
            self._write(n, state, etag)

    def _updates(self, state: dict[str, Any], reference: dict[str, np.ndarray]) -> list[tuple[str, Any, int]]:
        """Each participant's stored update, checked against the digest recorded when it was counted."""
        shapes = {k: v.shape for k, v in reference.items()}
        out = []
        for bank in sorted(state["participants"]):
            entry = state["participants"][bank]
            data = self.store.get_bytes(CONTAINER, entry["update"])[0]
            if entry.get("sha256") not in (None, hashlib.sha256(data).hexdigest()):
                raise FraudOpsError(f"bank {bank}'s stored update does not match the digest recorded for it")
            out.append((bank, from_npz(data, expected=shapes), int(entry["examples"])))
        return out

    def _close(self, n: int, state: dict[str, Any], etag: str) -> str | None:
        """Compute and commit the close from the stored updates; the committed state's ETag, or ``None`` if
        another caller committed first. Every write before the commit is create-only or idempotent."""
        reference = self.global_model(n)
        names = sorted(reference)
        updates = self._updates(state, reference)
        banks = [b for b, _, _ in updates]
        how = self._aggregator(state)
        if n == 0:  # the scaler from each bank's moments; round 1 starts from zero
            weights = capped_weights([c for _, _, c in updates], state["max_weight_share"])
            self._write_scaler(combine([p for _, p, _ in updates], weights, how))
            from shared.federated.model import initial

            with contextlib.suppress(BlobExistsError):
                self.store.put_bytes(
                    CONTAINER, self._global_name(1), to_npz(initial(reference["sum"].size)), overwrite=False
                )
        else:
            result = merge(
                [reference[k] for k in names],
                [([p[k] for k in names], c) for _, p, c in updates],
                aggregator=how,
                max_weight_share=state["max_weight_share"],
                clip_bound=state.get("clip_bound"),
                noise_multiplier=state.get("noise_multiplier"),
            )
            weights = result.weights
            self._write_global(n + 1, dict(zip(names, result.params, strict=True)))
            state["clipped"] = [b for b, c in zip(banks, result.clipped, strict=True) if c]
            state.update(self._privacy_spent(n, result.noise_std, state))
            state["published"] = False if self.on_close is not None else None
        state.update(
            status=RoundStatus.CLOSED,
            closed_at=self.clock(),
            aggregate_metrics=_weighted_metrics(state["participants"]),
            weights=dict(zip(banks, weights, strict=True)),
            lease_until=None,
        )
        try:
            etag = self._write(n, state, etag)
            _transitioned(
                self.store, self.experiment, n, RoundStatus.CLOSED, {"participants": sorted(state["participants"])}
            )
        except ConcurrentUpdateError:
            log.warning("round %d: our lease expired and another caller took over the close; theirs stands", n)
            return None
        log.info("round %d closed: %d updates aggregated with %s", n, len(banks), state["aggregator"])
        return etag

    def _privacy_spent(self, n: int, noise_std: float, state: dict[str, Any]) -> dict[str, Any]:
        """The noise multiplier of every model round so far, and the epsilon they compose to (``None`` if any
        round released its model without noise: then no finite epsilon holds)."""
        previous = self._status_doc(n - 1) if n > 1 else None
        history = [*(previous or {}).get("noise_history", [None] * max(n - 1, 0)), state.get("noise_multiplier")]
        noised = [z for z in history if z]
        epsilon = None
        if noise_std and len(noised) == len(history):
            epsilon = privacy.epsilon_of(noised, state["dp_delta"])
        unprotected = [i + 1 for i, z in enumerate(history) if not z]
        return {
            "noise_std": noise_std or None,
            "noise_history": history,
            "epsilon": epsilon,
            "rounds_without_noise": unprotected,
        }

    def _status_doc(self, n: int) -> dict[str, Any] | None:
        try:
            return self._read(n)[0]
        except RoundNotFoundError:
            return None

    def _aggregator(self, state: dict[str, Any], count: int | None = None) -> Aggregator:
        """The strategy the round was opened with (its own trim share), refused if it would trim nothing."""
        name, beta = state["aggregator"], state.get("trim_beta") or self.config.beta
        if name == "trimmed_mean" and int(beta * (count or len(state["participants"]))) < 1:
            raise ConfigurationError(f"trimmed_mean with beta {beta:g} would trim nothing of this round's updates")
        return aggregator_for(name, trim_beta=beta)

    def _write_global(self, n: int, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Write round ``n``'s global model create-only; a resumed close keeps (and returns) the one written first."""
        try:
            self.store.put_bytes(CONTAINER, self._global_name(n), to_npz(params), overwrite=False)
        except BlobExistsError:
            log.warning("round %d's global model was already written by an earlier attempt; keeping it", n)
            return self.global_model(n)
        return params

    def _write_scaler(self, scaler: dict[str, np.ndarray]) -> None:
        """Create the scaler, or replace a stored one that is unusable (conditional on what was read)."""
        name = f"{self.experiment}/scaler.npz"
        try:
            self.store.put_bytes(CONTAINER, name, to_npz(scaler), overwrite=False)
            return
        except BlobExistsError:
            pass
        data, etag = self.store.get_bytes(CONTAINER, name)
        try:
            check_scaler(from_npz(data))
            return  # a usable scaler from an earlier attempt stands
        except BadParametersError:
            log.warning("the stored scaler is unusable; replacing it with one derived from checked statistics")
        self.store.put_bytes(CONTAINER, name, to_npz(scaler), if_match=etag)

    def _repair_scaler(self, state: dict[str, Any]) -> None:
        """Re-derive the scaler from round 0's stored statistics, leaving out any bank whose numbers fail the check."""
        reference = self.global_model(0)
        kept = []
        for bank, params, count in self._updates(state, reference):
            try:
                check_statistics(params, count)
            except BadParametersError as exc:
                log.warning("round 0: leaving bank %s out of the scaler: %s", bank, exc.reason)
                continue
            kept.append((params, count))
        if not kept:
            raise RoundStateError("no bank's round-0 statistics pass the checks; start a new experiment")
        weights = capped_weights([c for _, c in kept], state["max_weight_share"])
        self._write_scaler(combine([p for p, _ in kept], weights, self._aggregator(state, len(kept))))


def _weighted_metrics(participants: dict[str, Any]) -> dict[str, float]:
    total = sum(p["examples"] for p in participants.values())
    keys = set().union(*(p["metrics"] for p in participants.values())) if participants else set()
    return {
        k: sum(p["metrics"].get(k, 0.0) * p["examples"] for p in participants.values()) / total for k in sorted(keys)
    }


def _transitioned(
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
