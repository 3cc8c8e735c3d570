"""Behavioural features at scoring: each entity's state read from the online store, the transactions of a
request or a stream batch placed in it in their order, and written back, with the features each one was
scored with.

One read and one write round trip per batch, whatever its size (both pipelined). Entities are independent:
each is computed from the version it read and written back only if nobody wrote it since; one that lost is
read and computed again, alone (its transactions already placed elsewhere are not placed twice: a state holds
the ids of its tail). When the store cannot be reached, ``on_unavailable`` decides: ``"missing"`` scores with
every behavioural feature missing and says so per transaction (``unavailable``); ``"refuse"`` raises
``OnlineStoreUnavailableError`` (503).
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from shared.adapters.online_store import EntityStore, StoreUnreachableError, Write, record_key
from shared.domain.entity_state import EntityPlan, EntityState, Event, Online, decode, encode
from shared.domain.errors import OnlineStoreUnavailableError, RetryLaterError
from shared.domain.history import key_text, read_columns
from shared.domain.telemetry import instruments

if TYPE_CHECKING:
    from shared.domain.config import OnlineStoreConfig
    from shared.domain.contract import DatasetContract

log = logging.getLogger(__name__)

OK, LATE, UNAVAILABLE, FUTURE = "ok", "late", "unavailable", "future"
MAX_FUTURE_SECONDS = 86400.0  # an event time further ahead of this instance's clock is not placed (``future``)
ATTEMPTS = 8  # how often an entity is computed again after losing its write to another instance


@dataclass(frozen=True)
class Label:
    """A verdict on a scored transaction: its id, event time and entity keys (from its record), and when it
    became known (``labelled_at``)."""

    tx: str
    time: float
    keys: Mapping[str, str | None]
    fraud: bool
    known: float


@dataclass
class Served:
    """The behavioural features of each transaction (``names`` order, NaN when missing) and what happened."""

    vectors: np.ndarray
    status: list[str]  # per transaction: ok, late (beyond the lateness bound), future (dated ahead), unavailable
    placed: Counter[str] = field(default_factory=Counter)  # placed / duplicate / late, over every entity


class OnlineFeatures:
    """The online half of ``shared.domain.entity_state`` over an ``EntityStore``, for one dataset."""

    def __init__(
        self,
        store: EntityStore,
        online: Online,
        dataset: str,
        *,
        on_unavailable: Literal["missing", "refuse"] = "missing",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.online, self.dataset = store, online, dataset
        self.clock = clock  # the wall clock: an event time far ahead of it is refused, not placed
        self.on_unavailable = on_unavailable
        self.names = online.names
        self._column = {name: j for j, name in enumerate(self.names)}
        self.counts: Counter[str] = Counter()  # for the metrics: late, unavailable, duplicate, conflict

    def ttl(self, plan: EntityPlan) -> float:
        """How long a record outlives its last write: past its history's span and the lateness bound."""
        return plan.reach + plan.lateness

    def serve(self, events: Sequence[Event]) -> Served:
        """Features for ``events`` (in the order given, which is the order they are placed in) and their
        placement; ``OnlineStoreUnavailableError`` when the store is down and the dataset refuses."""
        n = len(events)
        vectors = np.full((n, len(self.names)), np.nan)
        for i, cal in enumerate(self.online.calendar([e.time for e in events])):
            for name, value in cal.items():
                vectors[i, self._column[name]] = value
        served = Served(vectors, [OK] * n)
        work: dict[tuple[str, str], list[int]] = {}
        for i, e in enumerate(events):
            for column in self.online.plans:
                key = e.keys.get(column)
                if key is not None:
                    work.setdefault((column, key), []).append(i)
                else:  # no key: no history, the builder's empty window
                    self._put(served, i, self.online.plans[column].features(None, e))
        try:
            pending = list(work)
            for attempt in range(ATTEMPTS):
                if not pending:
                    break
                if attempt:  # lost to another instance: step aside a moment, a random one, then read again
                    time.sleep(random.uniform(0.0, 0.002 * 2**attempt))
                pending = self._round(events, work, pending, served)
            if pending:
                self.counts["conflict"] += len(pending)
                raise RetryLaterError(
                    f"{len(pending)} entities were updated by other instances {ATTEMPTS} times in a row; retry"
                )
        except StoreUnreachableError as exc:
            served = self._unavailable(served, str(exc))
        _count(served.status)
        return served

    def _round(
        self,
        events: Sequence[Event],
        work: dict[tuple[str, str], list[int]],
        keys: list[tuple[str, str]],
        served: Served,
    ) -> list[tuple[str, str]]:
        """Read ``keys``, place their transactions, write back; the keys that lost their write (only the writes
        that landed count their transactions' outcomes)."""
        records = self.store.read([record_key(self.dataset, c, k) for c, k in keys])
        horizon = self.clock() + MAX_FUTURE_SECONDS  # an event beyond it would make every real one late
        writes: list[Write] = []
        outcomes: list[list[tuple[int, str]]] = []
        for (column, key), record in zip(keys, records, strict=True):
            plan = self.online.plans[column]
            state = self._state(record.state, column, key)
            unreadable = state is None
            state = state if state is not None else EntityState()  # unreadable: a fresh start, its history gone
            mine: list[tuple[int, str]] = []
            for i in work[(column, key)]:
                e = events[i]
                if e.time > horizon:
                    self._put(served, i, dict.fromkeys(plan.names(), np.nan))
                    mine.append((i, FUTURE))
                    continue
                features = plan.features(state, e)
                self._put(served, i, dict.fromkeys(plan.names(), np.nan) if unreadable else features)
                outcome = plan.apply(state, e)
                mine.append((i, UNAVAILABLE if unreadable else outcome))
            outcomes.append(mine)
            writes.append(Write(record_key(self.dataset, column, key), encode(state), record.version, self.ttl(plan)))
        done = self.store.write(writes)
        for ok, mine in zip(done, outcomes, strict=True):
            if not ok:
                continue
            for i, outcome in mine:
                served.placed[outcome] += 1
                status = {"late": LATE, FUTURE: FUTURE, UNAVAILABLE: UNAVAILABLE}.get(outcome)
                if status is not None and served.status[i] == OK:
                    served.status[i] = status
        lost = [k for k, ok in zip(keys, done, strict=True) if not ok]
        if lost:
            self.counts["conflict"] += len(lost)
            instruments().behaviour_conflicts.add(len(lost))
        return lost

    def _state(self, data: bytes | None, column: str, key: str) -> EntityState | None:
        if data is None:
            return EntityState()
        try:
            return decode(data)
        except ValueError as exc:
            log.error("the online state of %s %s cannot be read (%s); it starts again from empty", column, key, exc)
            self.counts["corrupt"] += 1
            return None

    def _put(self, served: Served, i: int, features: dict[str, float]) -> None:
        for name, value in features.items():
            served.vectors[i, self._column[name]] = value

    def _unavailable(self, served: Served, reason: str) -> Served:
        self.counts[UNAVAILABLE] += len(served.status)
        if self.on_unavailable == "refuse":
            _count([UNAVAILABLE] * len(served.status))
            raise OnlineStoreUnavailableError(
                f"{reason}; dataset {self.dataset} is configured to refuse to score without its behavioural "
                "features (ONLINE_STORE_UNAVAILABLE=refuse): retry shortly"
            )
        log.warning("scoring %d transactions without behavioural features: %s", len(served.status), reason)
        calendar = {f"calendar_{c}" for c in self.online.behaviour.calendar}
        for name, j in self._column.items():
            if name not in calendar:
                served.vectors[:, j] = np.nan
        served.status = [UNAVAILABLE] * len(served.status)
        return served

    def label(self, tx: str, time: float, keys: Mapping[str, str | None], fraud: bool, known: float) -> int:
        """A label for a scored transaction (its event time and entity keys, from its record): the entities
        whose state changed."""
        return self.labels([Label(tx, time, keys, fraud, known)])

    def labels(self, labels: Sequence[Label]) -> int:
        """Labels as they land, batched: one pipelined read of every entity they touch, one of compare-and-set
        writes (an entity that lost is read and updated again); how many entity states changed."""
        work: dict[tuple[str, str], list[Label]] = {}
        for item in labels:
            for column, plan in self.online.plans.items():
                key = key_text(item.keys.get(column))  # a key read back as 5.0 is the entity "5"
                if key is not None and plan.fraud_share:
                    work.setdefault((column, key), []).append(item)
        pending, changed = list(work), 0
        for attempt in range(ATTEMPTS):
            if not pending:
                return changed
            if attempt:
                time.sleep(random.uniform(0.0, 0.002 * 2**attempt))
            records = self.store.read([record_key(self.dataset, c, k) for c, k in pending])
            writes, touched = [], []
            for (column, key), record in zip(pending, records, strict=True):
                plan = self.online.plans[column]
                state = self._state(record.state, column, key) or EntityState()
                moved = [plan.label(state, x.tx, x.time, x.fraud, x.known) for x in work[(column, key)]]
                if any(moved):
                    writes.append(
                        Write(record_key(self.dataset, column, key), encode(state), record.version, self.ttl(plan))
                    )
                    touched.append((column, key))
            done = self.store.write(writes)
            changed += sum(done)
            pending = [k for k, ok in zip(touched, done, strict=True) if not ok]
        if pending:
            raise RetryLaterError(f"{len(pending)} entities kept changing under these labels; retry")
        return changed

    def erase_keys(self, keys: dict[str, str]) -> int:
        """Remove the state of each (key column, key) given: a customer's erasure, by its pseudonyms."""
        return self.store.erase([record_key(self.dataset, c, k) for c, k in keys.items()])

    def erase(self, column: str, key: str) -> int:
        """Remove an entity's state (a customer's erasure); how many records were removed."""
        return self.store.erase([record_key(self.dataset, column, key)])


def _count(statuses: list[str]) -> None:
    """The ``fraudops.behaviour.transactions`` metric: one add per status present, not per row."""
    meter = instruments().behaviour
    for status, n in Counter(statuses).items():
        meter.add(n, {"status": status})


def events_of(
    contract: DatasetContract,
    columns: Mapping[str, Sequence[Any] | np.ndarray],
    ids: Sequence[Any],
    times: np.ndarray | Sequence[float],
    pseudonymise: Callable[[str], str | None] | None = None,
) -> list[Event]:
    """The transactions of a request or a stream batch as the online state reads them: each entity key and
    distinct value in its one text form (``shared.domain.history.key_text``), a personal one as its pseudonym
    (``pseudonymise``; None: already pseudonymised), numbers as floats (NaN when missing)."""
    keys, numbers, values = read_columns(contract.behaviour)
    personal = set(contract.personal_names) if pseudonymise is not None else set()

    def text(name: str, value: Any) -> str | None:
        got = key_text(value)
        return pseudonymise(got) if got is not None and name in personal and pseudonymise else got

    n = len(ids)
    texts = {name: [text(name, v) for v in columns[name]] for name in _unique(keys + values)}
    floats = {name: np.asarray(columns[name], dtype=np.float64) for name in numbers}
    return [
        Event(
            float(times[i]),
            str(ids[i]),
            {k: texts[k][i] for k in keys},
            {c: float(floats[c][i]) for c in numbers},
            {c: texts[c][i] for c in values},
        )
        for i in range(n)
    ]


def recorded_history(
    contract: DatasetContract, events: Sequence[Event]
) -> tuple[dict[str, list[str | None]], dict[str, np.ndarray]]:
    """What the prediction record keeps of ``events`` for the behaviour to be computed again from it: the
    entity keys (pseudonyms) and distinct values, and the numbers, the record holds nowhere else."""
    from shared.domain.history import recorded_columns

    texts, numbers = recorded_columns(contract)
    held_texts = {
        name: [e.keys.get(name, e.values.get(name)) if name in e.keys else e.values.get(name) for e in events]
        for name in texts
    }
    held_numbers = {name: np.array([e.numbers.get(name, np.nan) for e in events], np.float64) for name in numbers}
    return held_texts, held_numbers


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def build_online_features(config: OnlineStoreConfig) -> OnlineFeatures | None:
    """The online features of ``config``'s dataset (None when its contract declares none): Redis at
    ``ONLINE_STORE_URL``; unset, an in-process store in development and, in production, a store that is
    always unavailable (so ``ONLINE_STORE_UNAVAILABLE`` decides, and every response says so)."""
    from shared.adapters.online_store import MemoryEntityStore, RedisEntityStore, UnconfiguredStore, connect
    from shared.domain.contracts import get_contract

    contract = get_contract(config.dataset_name)
    if contract.behaviour.empty:
        return None
    store: EntityStore
    if config.online_store_url:
        password = config.online_store_password.get_secret_value() if config.online_store_password else None
        client = connect(
            config.online_store_url, password=password, entra_client_id=config.storage_credential_client_id
        )
        store = RedisEntityStore(client)
    elif config.app_env == "development":
        log.warning("ONLINE_STORE_URL is not set: behavioural state is kept in this process only (development)")
        store = MemoryEntityStore()
    else:
        store = UnconfiguredStore()
    return OnlineFeatures(
        store,
        Online(contract.behaviour, contract.time_zone),
        contract.name,
        on_unavailable=config.online_store_unavailable,
    )
