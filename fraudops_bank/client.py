"""The bank side of the protocol: pull the global model, compute locally, sign and post. Rows never leave."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from fraudops_bank import model as lr
from fraudops_bank.contract import Columns
from fraudops_bank.credentials import FUNCTION_KEY_ENV, FUNCTION_KEY_HEADER
from fraudops_bank.engines import Engine
from fraudops_bank.errors import ParametersError, ProtocolError, RoundWaitTimeout
from fraudops_bank.headers import encode_metrics
from fraudops_bank.signing import sign
from fraudops_bank.status import RoundStatus
from fraudops_bank.wire import from_npz, to_npz

log = logging.getLogger(__name__)

__all__ = ["Backoff", "BankClient", "ProtocolError", "RoundWaitTimeout", "connect"]


def connect(base_url: str, *, function_key: str, timeout: float = 120.0) -> httpx.Client:
    """An ``httpx.Client`` for the function app that sends ``function_key`` on every request."""
    if not function_key:
        raise ValueError(f"a function key is required: the host answers 401 without one (set {FUNCTION_KEY_ENV})")
    return httpx.Client(base_url=base_url, timeout=timeout, headers={FUNCTION_KEY_HEADER: function_key})


@dataclass(frozen=True)
class Backoff:
    """Polling intervals: ``first`` s, times ``factor`` after each check, at most ``cap``; ``jitter`` spreads banks."""

    first: float = 1.0
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.1

    def delays(self, rng: random.Random) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay * (1 + rng.uniform(-self.jitter, self.jitter))
            delay = min(delay * self.factor, self.cap)


def _refused(r: httpx.Response) -> ProtocolError:
    try:
        detail = r.json().get("detail", r.text)
    except ValueError:
        detail = r.text[:500] or f"HTTP {r.status_code}"
    return ProtocolError(str(detail), r.status_code)


class BankClient:
    """One bank talking to the federated API through ``http`` (an ``httpx.Client`` from ``connect``)."""

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
            raise _refused(r)
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
        engine: Engine,
        rounds: int,
        *,
        wait_seconds: float,
        backoff: Backoff = Backoff(),
        steps: int = lr.STEPS,
    ) -> list[dict[str, Any]]:
        """Take part in ``rounds`` consecutive rounds, waiting for each to close before training on the next."""
        done: list[dict[str, Any]] = []
        for i in range(rounds):
            if done:
                self.wait_until_closed(done[-1]["round"], timeout=wait_seconds, backoff=backoff)
            round_number, state = self.take_part(engine, steps=steps)
            done.append(
                {
                    "round": round_number,
                    "status": state["status"],
                    **({"already_sent": True} if state.get("already_sent") else {}),
                }
            )
            log.info("bank %s: sent its update for round %d (%d of %d)", self.bank, round_number, i + 1, rounds)
        return done

    def model(self) -> tuple[int, str, dict[str, np.ndarray]]:
        """The round being trained, its kind (``statistics`` or ``model``) and the arrays (scaler included)."""
        round_number, kind, arrays, _ = self._pull()
        return round_number, kind, arrays

    def columns(self) -> Columns:
        """The experiment's columns (its dataset contract's features and label), as the server names them."""
        return Columns.from_metadata(self._pull()[3])

    def _pull(self) -> tuple[int, str, dict[str, np.ndarray], dict[str, Any]]:
        r = self.http.get("/api/federated/model")
        if r.status_code != 200:
            raise _refused(r)
        try:
            meta = json.loads(r.headers["x-fl-metadata"])
            return int(meta["round"]), str(meta["kind"]), from_npz(r.content), meta
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ParametersError(f"the server's X-FL-Metadata header is missing or malformed ({exc})") from None

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
            raise _refused(r)
        return dict(r.json())

    def take_part(
        self,
        engine: Engine,
        *,
        steps: int = lr.STEPS,
        tamper: float | None = None,
        claim: int | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """One round: statistics in round 0, else a warm-started local fit, computed by ``engine``.

        For attack simulations: ``tamper`` scales the step, ``claim`` is the example count sent instead of the
        true one (model rounds; round 0's count must match its statistics).
        """
        round_number, kind, arrays, meta = self._pull()
        if engine.columns is not None and Columns.from_metadata(meta) != engine.columns:
            raise ParametersError(
                f"round {round_number} names other columns than this bank's table was opened with "
                f"({Columns.from_metadata(meta).describe()}); the experiment changed: run the client again"
            )
        state = self.round_status(round_number)
        if self.bank in state.get("participants", {}):  # a rerun of the job while the round is open: nothing to add
            log.info("bank %s: its update for round %d is already in; nothing sent", self.bank, round_number)
            return round_number, {"status": state["status"], "already_sent": True}
        if kind == "statistics":
            return round_number, self.send(round_number, engine.statistics(), engine.rows, {})
        scaler = {"mean": arrays["scaler_mean"], "scale": arrays["scaler_scale"]}
        start = {"coef": arrays["coef"], "intercept": arrays["intercept"]}
        local = engine.train(start, scaler, steps=steps)
        if tamper is not None:
            local = {k: (start[k] + tamper * (local[k] - start[k])).astype(np.float32) for k in local}
        metrics = {"local_loss": engine.log_loss(local, scaler)}
        return round_number, self.send(round_number, local, claim or engine.rows, metrics)
