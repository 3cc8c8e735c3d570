"""Federated rounds as a state machine in Blob: open -> aggregating -> closed, every change ETag-conditional.

Layout under the ``federated`` container::

    <experiment>/global/round-<n>.npz          the model round n starts from (written by closing round n-1)
    <experiment>/round-<n>/state.json           status, deadline, participants, aggregate metrics
    <experiment>/round-<n>/updates/<bank>.npz   each bank's parameters, written create-only

Submitting writes the bank's update create-only (a second one from the same bank is refused)
and then adds the bank to ``participants`` with a conditional write, retried on conflict, so
concurrent banks never lose each other's entry. The round closes when ``min_clients`` updates
are in: the status moves to ``aggregating`` with a conditional write, which exactly one caller
wins; that caller aggregates, writes the next global model create-only, closes the round and
opens the next one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.adapters.storage import BlobStore
from shared.domain.errors import BlobExistsError, BlobNotFoundError, ConcurrentUpdateError, FraudOpsError
from shared.federated import aggregate
from shared.federated.aggregators import Aggregator, aggregator_for
from shared.federated.params import BadParametersError, from_npz, to_npz
from shared.federated.status import RoundState, RoundStatus

log = logging.getLogger(__name__)

CONTAINER = "federated"
MAX_ATTEMPTS = 50


OnClose = Callable[[int, dict[str, np.ndarray], dict[str, np.ndarray], RoundState], Any]


class RoundStateError(FraudOpsError):
    """The round is not in a state that allows this (409 at the edge)."""


class RoundNotFoundError(FraudOpsError):
    """No such round (404 at the edge)."""


@dataclass(frozen=True)
class RoundConfig:
    min_clients: int = 3
    deadline_seconds: float = 3600.0
    aggregator: str = "fedavg"
    trim_beta: float = 0.2
    clip_bound: float | None = None
    noise_std: float | None = None
    max_weight_share: float = 0.5
    seed: int = 0


def capped_weights(counts: list[int], max_share: float) -> list[float]:
    """Example counts with no client above ``max_share`` of the total (iterated until it holds)."""
    weights = [float(c) for c in counts]
    if len(weights) * max_share < 1:  # the cap cannot hold for every client: equal weights
        return [1.0] * len(weights)
    for _ in range(len(weights)):
        total = sum(weights)
        over = [i for i, w in enumerate(weights) if w > max_share * total + 1e-9]
        if not over:
            break
        rest = total - sum(weights[i] for i in over)
        cap = max_share * rest / (1 - max_share * len(over))
        for i in over:
            weights[i] = cap
    return weights


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
        self.store, self.experiment, self.config, self.clock = store, experiment, config, clock
        self.on_close = on_close
        self.aggregator: Aggregator = aggregator_for(config.aggregator, trim_beta=config.trim_beta)  # refused early

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

    def global_model(self, n: int) -> dict[str, np.ndarray]:
        try:
            data, _ = self.store.get_bytes(CONTAINER, self._global_name(n))
        except BlobNotFoundError:
            raise RoundNotFoundError(f"there is no global model for round {n}") from None
        return from_npz(data)

    def current(self) -> int:
        """The newest round that exists (the open one, or the last closed)."""
        names = self.store.list_names(CONTAINER, f"{self.experiment}/round-")
        rounds = [int(n.split("/")[1].removeprefix("round-")) for n in names if n.endswith("/state.json")]
        if not rounds:
            raise RoundNotFoundError(f"experiment {self.experiment} has not started")
        return max(rounds)

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
        try:
            return from_npz(self.store.get_bytes(CONTAINER, f"{self.experiment}/scaler.npz")[0])
        except BlobNotFoundError:
            return None

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
            "clip_bound": self.config.clip_bound,
            "noise_std": self.config.noise_std,
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
        return self.state(n)

    def submit(self, n: int, bank: str, data: bytes, examples: int, metrics: dict[str, float]) -> RoundState:
        """Store ``bank``'s update for round ``n``; aggregate when enough are in. Returns the round's state."""
        state, _ = self._read(n)
        if state["status"] != RoundStatus.OPEN:
            raise RoundStateError(f"round {n} is {state['status']}, not open for updates")
        if bank in state["participants"]:
            raise RoundStateError(f"bank {bank} already sent its update for round {n}")
        if examples <= 0:
            raise BadParametersError("the example count must be positive")
        reference = self.global_model(n)
        params = from_npz(data, expected={k: v.shape for k, v in reference.items()})
        names = sorted(reference)
        if self.config.clip_bound is not None and n > 0:
            norm = aggregate.update_norm([params[k] for k in names], [reference[k] for k in names])
            if norm > self.config.clip_bound:
                raise BadParametersError(
                    f"update norm {norm:.4g} is over the clipping bound {self.config.clip_bound:g}"
                )
        blob = f"{self.experiment}/round-{n}/updates/{bank}.npz"
        try:
            self.store.put_bytes(CONTAINER, blob, data, overwrite=False)
        except BlobExistsError:
            raise RoundStateError(f"bank {bank} already sent its update for round {n}") from None
        entry = {"examples": int(examples), "metrics": metrics, "update": blob, "received_at": self.clock()}
        for _ in range(MAX_ATTEMPTS):
            state, etag = self._read(n)
            if state["status"] != RoundStatus.OPEN:
                self.store.delete(CONTAINER, blob)
                raise RoundStateError(f"round {n} closed while bank {bank}'s update arrived; send it to the next")
            state["participants"][bank] = entry
            try:
                self.store.put_bytes(
                    CONTAINER,
                    self._state_name(n),
                    json.dumps(state).encode(),
                    if_match=etag,
                    content_type="application/json",
                )
                break
            except ConcurrentUpdateError:
                continue
        else:
            raise FraudOpsError(f"round {n} is too busy; retry the update")
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

    def aggregate(self, n: int, *, force: bool = False) -> RoundState:
        """Close round ``n`` if it may close; exactly one caller aggregates. Returns the state, with ``why`` if open."""
        state, etag = self._read(n)
        if state["status"] != RoundStatus.OPEN:
            return RoundState.from_document(state)
        have, need = len(state["participants"]), state["min_clients"]
        if have < need:
            late = self.clock() >= state["deadline"]
            state["why"] = f"{have} of {need} updates are in" + (
                "; the deadline has passed, the round stays open until enough banks report" if late else ""
            )
            return RoundState.from_document(state)
        if force and self.clock() < state["deadline"]:
            state["why"] = "the deadline has not passed"
            return RoundState.from_document(state)
        state["status"] = RoundStatus.AGGREGATING
        try:  # the returned ETag guards the close below: no second read
            etag = self.store.put_bytes(
                CONTAINER,
                self._state_name(n),
                json.dumps(state).encode(),
                if_match=etag,
                content_type="application/json",
            )
        except ConcurrentUpdateError:
            return self.state(n)  # someone else is aggregating (or a late update changed it): theirs
        reference = self.global_model(n)
        names = sorted(reference)
        banks = sorted(state["participants"])
        results = []
        for bank in banks:
            params = from_npz(self.store.get_bytes(CONTAINER, state["participants"][bank]["update"])[0])
            results.append(([params[k] for k in names], state["participants"][bank]["examples"]))
        if n == 0:  # statistics add up; the scaler comes from their sums and round 1 starts from zero
            weights = [1.0] * len(results)
            self._close_statistics(
                {
                    name: np.asarray(np.sum([p[i] for p, _ in results], axis=0, dtype=np.float64))
                    for i, name in enumerate(names)
                }
            )
            merged: list[np.ndarray] = []
        else:
            weights = capped_weights([c for _, c in results], state["max_weight_share"])
            how = (
                self.aggregator
                if state["aggregator"] == self.aggregator.name
                else aggregator_for(state["aggregator"], trim_beta=self.config.trim_beta)
            )  # the strategy the round was opened with
            merged = how([(p, w) for (p, _), w in zip(results, weights, strict=True)])
        if merged and state.get("noise_std"):
            merged = aggregate.gaussian_noise(merged, state["noise_std"], np.random.default_rng(self.config.seed + n))
        if merged:
            try:
                self.store.put_bytes(
                    CONTAINER, self._global_name(n + 1), to_npz(dict(zip(names, merged, strict=True))), overwrite=False
                )
            except BlobExistsError:
                log.warning("round %d: the next global model already exists; keeping it", n)
        metrics = _weighted_metrics(state["participants"])
        state.update(
            status=RoundStatus.CLOSED,
            closed_at=self.clock(),
            aggregate_metrics=metrics,
            weights=dict(zip(banks, weights, strict=True)),
        )
        self.store.put_bytes(
            CONTAINER, self._state_name(n), json.dumps(state).encode(), if_match=etag, content_type="application/json"
        )
        self._open(n + 1)
        log.info("round %d closed: %d updates aggregated with %s", n, len(banks), state["aggregator"])
        closed = RoundState.from_document(state)
        scaler = self.scaler()
        if merged and self.on_close is not None and scaler is not None:
            try:  # publishing is a consequence of the round, not part of it: a failure is logged, not raised
                self.on_close(n, dict(zip(names, merged, strict=True)), scaler, closed)
            except Exception:
                log.exception("round %d closed, but publishing its model failed", n)
        return closed

    def _close_statistics(self, totals: dict[str, np.ndarray]) -> None:
        from shared.federated.model import initial, scaler_from

        for name, data in (
            ("scaler.npz", to_npz(scaler_from(totals))),
            ("global/round-1.npz", to_npz(initial(int(totals["sum"].size)))),
        ):
            with contextlib.suppress(BlobExistsError):
                self.store.put_bytes(CONTAINER, f"{self.experiment}/{name}", data, overwrite=False)


def _weighted_metrics(participants: dict[str, Any]) -> dict[str, float]:
    total = sum(p["examples"] for p in participants.values())
    keys = set().union(*(p["metrics"] for p in participants.values())) if participants else set()
    return {
        k: sum(p["metrics"].get(k, 0.0) * p["examples"] for p in participants.values()) / total for k in sorted(keys)
    }
