"""The bank side of the protocol: pull the global model, train locally, sign and post the update. Rows never leave."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.domain.errors import FraudOpsError
from shared.federated import model as lr
from shared.federated.auth import sign
from shared.federated.headers import encode_metrics
from shared.federated.params import from_npz, to_npz
from shared.federated.status import RoundStatus

log = logging.getLogger(__name__)


class ProtocolError(FraudOpsError):
    """The server refused a request; ``status`` is its HTTP status."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


class RoundWaitTimeout(FraudOpsError):
    """A round did not close within the time the bank was willing to wait."""


@dataclass(frozen=True)
class Backoff:
    """Polling intervals: ``first`` s, times ``factor`` after each check, at most ``cap``; ``jitter`` spreads banks."""

    first: float = 1.0
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.1

    def delays(self, rng: random.Random) -> Any:
        delay = self.first
        while True:
            yield delay * (1 + rng.uniform(-self.jitter, self.jitter))
            delay = min(delay * self.factor, self.cap)


class BankClient:
    """One bank talking to the federated API at ``base_url`` (an ``httpx.Client`` passed in).

    The client must send the function app's key on every request (``function_keys.function_app_client``).
    """

    def __init__(
        self,
        http: Any,
        bank: str,
        key: bytes,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http, self.bank, self.key = http, bank, key
        self.sleep, self.clock = sleep, clock

    def round_status(self, round_number: int) -> dict[str, Any]:
        """The round's public state (``status``, ``participants``, ``min_clients``...)."""
        r = self.http.get(f"/api/federated/rounds/{round_number}")
        if r.status_code != 200:
            raise ProtocolError(r.json().get("detail", r.text), r.status_code)
        return dict(r.json())

    def wait_until_closed(
        self, round_number: int, *, timeout: float, backoff: Backoff = Backoff(), rng: random.Random | None = None
    ) -> dict[str, Any]:
        """Poll round ``round_number`` with backoff until it is closed; ``RoundWaitTimeout`` after ``timeout`` s."""
        deadline = self.clock() + timeout
        delays = backoff.delays(rng or random.Random())
        while True:
            state = self.round_status(round_number)
            if state["status"] == RoundStatus.CLOSED:
                return state
            left = deadline - self.clock()
            waiting_for = (
                f"{len(state.get('participants', []))} of {state.get('min_clients', '?')} updates are in"
                if state["status"] == RoundStatus.OPEN
                else "the server is aggregating it"
            )
            if left <= 0:
                raise RoundWaitTimeout(
                    f"round {round_number} did not close within {timeout:g} s ({waiting_for}); "
                    "the other banks have not all reported: run the client again later"
                )
            delay = min(next(delays), left)
            log.info(
                "bank %s: round %d is %s (%s); waiting for it to close, next check in %.1f s",
                self.bank,
                round_number,
                state["status"],
                waiting_for,
                delay,
            )
            self.sleep(delay)

    def take_rounds(
        self,
        x: np.ndarray,
        y: np.ndarray,
        rounds: int,
        *,
        wait_seconds: float,
        backoff: Backoff = Backoff(),
        steps: int = 50,
    ) -> list[dict[str, Any]]:
        """Take part in ``rounds`` consecutive rounds, waiting for each to close before training on the next."""
        done: list[dict[str, Any]] = []
        for i in range(rounds):
            if done:
                self.wait_until_closed(done[-1]["round"], timeout=wait_seconds, backoff=backoff)
            round_number, state = self.take_part(x, y, steps=steps)
            done.append({"round": round_number, "status": state["status"]})
            log.info("bank %s: sent its update for round %d (%d of %d)", self.bank, round_number, i + 1, rounds)
        return done

    def model(self) -> tuple[int, str, dict[str, np.ndarray]]:
        """The round being trained, its kind (``statistics`` or ``model``) and the arrays (scaler included)."""
        r = self.http.get("/api/federated/model")
        if r.status_code != 200:
            raise ProtocolError(r.json().get("detail", r.text), r.status_code)
        meta = json.loads(r.headers["x-fl-metadata"])
        return int(meta["round"]), str(meta["kind"]), from_npz(r.content)

    def send(
        self, round_number: int, params: dict[str, np.ndarray], examples: int, metrics: dict[str, float]
    ) -> dict[str, Any]:
        path = f"/api/federated/rounds/{round_number}/updates"
        body = to_npz(params)
        headers = sign(
            self.key,
            "POST",
            path,
            body,
            bank=self.bank,
            now=time.time(),
            extra={"x-fl-examples": str(examples), "x-fl-metrics": encode_metrics(metrics)},
        )
        r = self.http.post(path, content=body, headers=headers)
        if r.status_code != 202:
            raise ProtocolError(r.json().get("detail", r.text), r.status_code)
        return dict(r.json())

    def take_part(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        steps: int = 50,
        tamper: float | None = None,
        claim: int | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """One round: statistics in round 0, else a warm-started local fit.

        For attack simulations: ``tamper`` scales the step, ``claim`` is the example count sent instead of the
        true one (model rounds; round 0's count must match its statistics).
        """
        round_number, kind, arrays = self.model()
        if kind == "statistics":
            return round_number, self.send(round_number, lr.sufficient_statistics(x), len(x), {})
        scaler = {"mean": arrays["scaler_mean"], "scale": arrays["scaler_scale"]}
        start = {"coef": arrays["coef"], "intercept": arrays["intercept"]}
        local = lr.train_local(start, scaler, x, y, steps=steps)
        if tamper is not None:
            local = {k: (start[k] + tamper * (local[k] - start[k])).astype(np.float32) for k in local}
        metrics = {"local_loss": _log_loss(y, lr.predict_proba(local, scaler, x))}
        return round_number, self.send(round_number, local, claim or len(x), metrics)


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
