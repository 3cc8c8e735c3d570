"""The bank side of the protocol: pull the global model, compute locally, sign and post. Rows never leave."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from fraudops_bank import model as lr
from fraudops_bank import secure_round, served
from fraudops_bank.contract import Columns
from fraudops_bank.credentials import FUNCTION_KEY_ENV, FUNCTION_KEY_HEADER
from fraudops_bank.engines import Engine
from fraudops_bank.errors import BankError, ParametersError, ProtocolError, RoundWaitTimeout, ServedModelRefusedError
from fraudops_bank.headers import encode_metrics
from fraudops_bank.privacy import Ledger, accounted_multiplier, add_noise, bank_noise_std, count_noise_std
from fraudops_bank.roster import Roster
from fraudops_bank.secure import SecureParticipant, check_served_signature, model_vector, statistics_vector
from fraudops_bank.served import ServedPolicy
from fraudops_bank.signing import sign
from fraudops_bank.status import RoundStatus
from fraudops_bank.wire import WIRE_HEADER, WIRE_VERSION, from_wire, to_wire

log = logging.getLogger(__name__)

__all__ = ["Backoff", "BankClient", "ProtocolError", "RoundWaitTimeout", "Safeguards", "connect"]


def connect(base_url: str, *, function_key: str, timeout: float = 120.0, allow_http: bool = False) -> httpx.Client:
    """An ``httpx.Client`` for the function app that sends ``function_key`` on every request.

    ``BankError`` for a URL that is not https, unless ``allow_http`` (a local test server).
    """
    if not function_key:
        raise ValueError(f"a function key is required: the host answers 401 without one (set {FUNCTION_KEY_ENV})")
    url = urlsplit(base_url)
    if url.scheme.lower() != "https" and not allow_http:
        shown = f"{url.scheme}://{url.hostname}" if url.scheme and url.hostname else "a URL without https://"
        raise BankError(
            f"{shown} would send the function key and the bank's signatures in clear: use https:// "
            "(or --allow-http for a local test server)"
        )
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


def _maybe(value: float | None) -> str:
    return "n/a (one class only)" if value is None else f"{value:.4f}"


def _recorder(ledger: Ledger | None, experiment: str, n: int, z: float | None) -> Callable[[], None] | None:
    return None if ledger is None else (lambda: ledger.record(experiment, n, z))


@dataclass(frozen=True)
class Safeguards:
    """What this bank requires before it takes part: the roster that pins the banks' and the server's keys,
    its own identity key, its limits on what it is served, and its privacy budget."""

    roster: Roster | None = None
    identity_key: bytes | None = None
    policy: ServedPolicy = ServedPolicy()  # noqa: RUF009 (frozen: one shared default is safe)
    allow_visible: bool = False  # take part in rounds where the server sees each update
    epsilon_ceiling: float | None = None
    ledger: Ledger | None = None


class BankClient:
    """One bank talking to the federated API through ``http`` (an ``httpx.Client`` from ``connect``)."""

    def __init__(
        self,
        http: Any,
        bank: str,
        key: bytes,
        *,
        safeguards: Safeguards | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http, self.bank, self.key = http, bank, key
        self.safeguards = safeguards or Safeguards()
        self.sleep, self.clock = sleep, clock
        self._alone: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None  # own-data model, scaler

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
                    **({"secure": state["secure"]} if "secure" in state else {}),
                    **({"evaluation": state["evaluation"]} if "evaluation" in state else {}),
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
        r = self.http.get("/api/federated/model", headers={WIRE_HEADER: str(WIRE_VERSION)})
        if r.status_code != 200:
            raise _refused(r)
        try:
            meta = json.loads(r.headers["x-fl-metadata"])
            return int(meta["round"]), str(meta["kind"]), from_wire(r.content), meta
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ParametersError(f"the server's X-FL-Metadata header is missing or malformed ({exc})") from None

    def send(
        self, round_number: int, params: dict[str, np.ndarray], examples: int, metrics: dict[str, float]
    ) -> dict[str, Any]:
        path = f"/api/federated/rounds/{round_number}/updates"
        body = to_wire(params)
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

    # ---- signed requests and reads, for secure rounds' phases (fraudops_bank.secure.Transport) ---------
    def post_signed(self, path: str, body: bytes) -> dict[str, Any]:
        headers = sign(self.key, "POST", path, body, bank=self.bank, now=time.time())
        r = self.http.post(path, content=body, headers=headers)
        if r.status_code != 202:
            raise _refused(r)
        return dict(r.json())

    def get_json(self, path: str) -> dict[str, Any]:
        r = self.http.get(path)
        if r.status_code != 200:
            raise _refused(r)
        return dict(r.json())

    # ---- one round ----------------------------------------------------------------------------------
    def take_part(
        self,
        engine: Engine,
        *,
        steps: int = lr.STEPS,
        tamper: float | None = None,
        claim: int | None = None,
        wait_seconds: float = 3600.0,
        backoff: Backoff = Backoff(first=0.2, factor=1.5, cap=5.0),
    ) -> tuple[int, dict[str, Any]]:
        """One round: statistics in round 0, else a warm-started local fit, computed by ``engine``; in a secure
        round, every phase of it until it closes.

        For attack simulations: ``tamper`` scales the step, ``claim`` is the example count sent instead of the
        true one (visible model rounds; round 0's count must match its statistics).
        """
        prepared = self.prepare(engine, steps=steps, tamper=tamper, claim=claim)
        if not isinstance(prepared, SecureParticipant):
            return prepared
        self.drive(prepared, timeout=wait_seconds, backoff=backoff)
        out: dict[str, Any] = {"status": RoundStatus.CLOSED, "secure": prepared.outcome}
        if prepared.evaluation:
            out["evaluation"] = prepared.evaluation
        return prepared.round, out

    def prepare(
        self, engine: Engine, *, steps: int = lr.STEPS, tamper: float | None = None, claim: int | None = None
    ) -> SecureParticipant | tuple[int, dict[str, Any]]:
        """Check what the round serves, then compute this bank's part: a ``SecureParticipant`` ready to step
        through a secure round, or, in a visible round, the update sent and the server's answer."""
        round_number, kind, arrays, meta = self._pull()
        if engine.columns is not None and Columns.from_metadata(meta) != engine.columns:
            raise ParametersError(
                f"round {round_number} names other columns than this bank's table was opened with "
                f"({Columns.from_metadata(meta).describe()}); the experiment changed: run the client again"
            )
        guard = self.safeguards
        served.check_arrays(arrays, kind=kind, n_features=len(Columns.from_metadata(meta).features))
        digest = secure_round.model_digest(arrays, meta)
        if guard.roster is not None and guard.roster.server is not None:
            check_served_signature(meta, guard.roster, digest)
        secure = meta.get("mode") == "secure"
        if not secure and not guard.allow_visible:
            raise ServedModelRefusedError(
                f"round {round_number} is not a secure round: the server would see this bank's update in clear; "
                "take part only with --allow-visible, where the federation chose visibility"
            )
        served.check_window(engine.rows, engine.frauds, guard.policy)
        if kind == "model":
            served.check_model(arrays, engine.statistics(), guard.policy)
        state = self.round_status(round_number)
        already = state.get("adverts", []) if secure else state.get("participants", {})
        if self.bank in already and state["status"] != RoundStatus.CLOSED:  # a rerun of the job mid-round
            log.info("bank %s: its part in round %d is already in; nothing sent", self.bank, round_number)
            return round_number, {"status": state["status"], "already_sent": True}
        scaler = {"mean": arrays.get("scaler_mean"), "scale": arrays.get("scaler_scale")}
        start = {"coef": arrays.get("coef"), "intercept": arrays.get("intercept")}
        if not secure:
            if kind == "statistics":
                return round_number, self.send(round_number, engine.statistics(), engine.rows, {})
            evaluation = self.evaluation(engine, start, scaler, round_number, steps=steps)
            local = engine.train(start, scaler, steps=steps)  # type: ignore[arg-type]
            if tamper is not None:
                local = {k: (start[k] + tamper * (local[k] - start[k])).astype(np.float32) for k in local}
            metrics = {"local_loss": engine.log_loss(local, scaler), **evaluation}  # type: ignore[arg-type]
            answer = self.send(round_number, local, claim or engine.rows, metrics)
            return round_number, {**answer, **({"evaluation": evaluation} if evaluation else {})}
        return self._secure_part(engine, round_number, kind, start, scaler, meta, digest, steps, tamper)

    def _secure_part(
        self,
        engine: Engine,
        n: int,
        kind: str,
        start: dict[str, Any],
        scaler: dict[str, Any],
        meta: dict[str, Any],
        digest: str,
        steps: int,
        tamper: float | None,
    ) -> SecureParticipant:
        guard = self.safeguards
        if guard.identity_key is None or guard.roster is None:
            raise BankError(
                "a secure round needs this bank's identity key and the federation's roster (--identity-key, --roster)"
            )
        experiment = str(meta["experiment"])
        clip, z, delta = meta.get("clip_bound"), meta.get("noise_multiplier"), meta.get("dp_delta") or 1e-5
        evaluation: dict[str, float] = {}
        accounted: float | None = None
        if kind == "statistics":
            vector = statistics_vector(engine.statistics())
        elif clip is None:
            raise ParametersError(f"secure round {n} serves no clip bound; every bank clips its step to the round's")
        else:
            adaptive, quorum = bool(meta.get("clip_adaptive")), int(meta.get("min_clients") or 3)
            accounted = accounted_multiplier(float(z), adaptive=adaptive, min_clients=quorum) if z else None
            if guard.ledger is not None:
                spent = guard.ledger.check(experiment, n, accounted, float(delta), guard.epsilon_ceiling)
                log.info("bank %s: epsilon after round %d would be %.3g (delta %g)", self.bank, n, spent, delta)
            evaluation = self.evaluation(engine, start, scaler, n, steps=steps)
            local = engine.train(start, scaler, steps=steps)
            if tamper is not None:
                local = {k: (start[k] + tamper * (local[k] - start[k])).astype(np.float32) for k in local}
            t_min = secure_round.threshold(quorum)
            noise = bank_noise_std(float(z), float(clip), t_min) if z else 0.0
            count_noise = count_noise_std(quorum) / t_min**0.5 if z and adaptive else 0.0
            step = model_vector(
                start,
                local,
                clip_bound=float(clip),
                noise_std=noise,
                examples=engine.rows,
                served_loss=engine.log_loss(start, scaler),
                local_loss=engine.log_loss(local, scaler),
                add_noise=add_noise,
                evaluation=evaluation,
                count_noise_std=count_noise,
            )
            log.info(
                "bank %s: round %d step norm %.3g%s, noise std %.3g per coordinate",
                self.bank,
                n,
                step.norm,
                f" clipped to {clip:g}" if step.clipped else "",
                noise,
            )
            vector = step.vector
        return SecureParticipant(
            transport=self,
            bank=self.bank.lower(),
            experiment=experiment,
            round=n,
            kind=kind,
            vector=vector,
            model_sha256=digest,
            identity_key=guard.identity_key,
            roster=guard.roster,
            clip_bound=clip,
            noise_multiplier=z,
            on_masked=_recorder(guard.ledger, experiment, n, accounted) if kind == "model" else None,
            evaluation=evaluation if kind == "model" else {},
        )

    def evaluation(
        self, engine: Engine, start: dict[str, Any], scaler: dict[str, Any], n: int, *, steps: int
    ) -> dict[str, float]:
        """The served model and a model of this bank's own rows alone (fitted once per run, from its own scaler,
        with the steps of one round), judged on the bank's held-out most recent rows; logged, and returned for the
        bank's summary (and, summed with the other banks', for the round's totals). Empty without held-out rows."""
        if not engine.holdout_rows:
            return {}
        served = engine.evaluate(start, scaler)
        if self._alone is None:
            own = lr.scaler_from(engine.statistics())
            self._alone = (engine.train(lr.initial(len(start["coef"])), own, steps=steps), own)
        alone = engine.evaluate(*self._alone)
        out = {"holdout_rows": float(engine.holdout_rows)}
        out.update({f"served_holdout_{k}": v for k, v in served.items()})
        out.update({f"alone_holdout_{k}": v for k, v in alone.items()})
        log.info(
            "bank %s: round %d on its %d most recent rows: the federation's model has AUC %s (loss %.4f); a model of "
            "its own rows alone has AUC %s (loss %.4f)",
            self.bank,
            n,
            engine.holdout_rows,
            _maybe(served.get("auc")),
            served["loss"],
            _maybe(alone.get("auc")),
            alone["loss"],
        )
        return out

    def drive(self, participant: SecureParticipant, *, timeout: float, backoff: Backoff) -> None:
        """Poll the round and step ``participant`` until it is done; ``RoundWaitTimeout`` after ``timeout`` s."""
        deadline = self.clock() + timeout
        rng = random.Random()
        delays, phase = backoff.delays(rng), participant.phase
        while not participant.step(self.round_status(participant.round)):
            if participant.phase != phase:  # the round moved on: the next phase is usually quick, poll soon again
                delays, phase = backoff.delays(rng), participant.phase
            left = deadline - self.clock()
            if left <= 0:
                raise RoundWaitTimeout(
                    f"secure round {participant.round} did not close within {timeout:g} s (this bank reached its "
                    f"{participant.phase!r} step); the other banks have not all answered: run the client again later"
                )
            self.sleep(min(next(delays), left))
