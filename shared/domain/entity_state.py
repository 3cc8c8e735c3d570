"""Online entity state: what an online store keeps per entity (a card, a terminal...) to give each scored
transaction the very features the point-in-time builder (``shared.domain.windows``) gives its training row.

Per entity, the state holds two parts:

* the **tail**: every transaction of the last ``lateness`` seconds (before the entity's newest event time),
  kept whole, with its id. A transaction may arrive up to ``lateness`` after a later one, so the order among
  these is not settled yet: a transaction's features take from the tail only what comes before it in the
  (time, id) order, and the tail's ids make a redelivery a no-op (exactly once);
* the **sealed** part, older than the tail: one total per window step (``shared.domain.behaviour.step``) of
  the transactions count and each numeric column's count, mean, sum of squared deviations and maximum;
  per distinct column, each value's newest step; the time of the newest sealed transaction. Windows move by
  whole steps, so whole steps' totals answer them exactly, and the state of an entity stays bounded by the
  number of steps in its longest window, whatever its traffic. Steps older than every window are dropped.

Fraud labels are kept one by one (frauds are rare) with the time they became known, for the windows of
``fraud_share``. A transaction older than the tail (``lateness`` behind the entity's newest) is **late**: it
is not placed (its window may already be sealed), its features for that entity are missing, and the state
counts it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import msgspec

from shared.domain.behaviour import (
    Aggregates,
    Behaviour,
    Distinct,
    FraudShare,
    amount_vs_mean_name,
    since_previous_name,
    step,
    window_start,
)

NAN = math.nan


class Stats(msgspec.Struct, array_like=True):
    """Count, mean, sum of squared deviations and maximum of a numeric column's present values."""

    n: float = 0.0
    mean: float = 0.0
    m2: float = 0.0
    top: float = -math.inf

    def add(self, value: float) -> None:
        """One more value (Welford's update); a missing one changes nothing."""
        if value != value:
            return
        self.n += 1.0
        delta = value - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (value - self.mean)
        self.top = max(self.top, value)


class Bucket(msgspec.Struct, array_like=True):
    """One step's sealed totals: its transactions, and per tracked numeric column its ``Stats``."""

    count: int = 0
    stats: list[Stats] = msgspec.field(default_factory=list)


class Raw(msgspec.Struct, array_like=True):
    """A transaction of the tail, whole."""

    time: float
    id: str
    numbers: list[float]
    values: list[str | None]


class Fraud(msgspec.Struct, array_like=True):
    time: float  # the transaction's event time
    known: float  # when its label became known


class EntityState(msgspec.Struct, omit_defaults=True):
    """One entity's state, as the store keeps it (msgpack)."""

    newest: float = -math.inf  # the newest event time placed
    last_sealed: float = -math.inf  # the newest sealed transaction's time
    tail: list[Raw] = msgspec.field(default_factory=list)
    buckets: dict[int, dict[int, Bucket]] = msgspec.field(default_factory=dict)  # step -> step index -> totals
    seen: dict[int, list[dict[str, int]]] = msgspec.field(default_factory=dict)  # step -> per column: value -> index
    frauds: dict[str, Fraud] = msgspec.field(default_factory=dict)
    late: int = 0  # transactions refused as later than the lateness bound
    refused: dict[str, float] = msgspec.field(
        default_factory=dict
    )  # their ids and times: labels on them are not placed

    def size(self) -> int:
        """How many items the state holds (tail transactions, step totals, seen values, frauds)."""
        held = len(self.tail) + len(self.frauds) + sum(len(b) for b in self.buckets.values())
        return held + sum(len(s) for per in self.seen.values() for s in per)


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(EntityState)


def encode(state: EntityState) -> bytes:
    return _ENCODER.encode(state)


def decode(data: bytes) -> EntityState:
    """A stored state; ``msgspec.DecodeError`` (a ``ValueError``) when the bytes are not one."""
    return _DECODER.decode(data)


@dataclass(frozen=True)
class Event:
    """One transaction as the online path sees it: event time (seconds, UTC), id, the entity keys (pseudonyms;
    None when missing), and the numeric (NaN when missing) and text values the behaviour reads."""

    time: float
    id: str
    keys: Mapping[str, str | None]
    numbers: Mapping[str, float] = field(default_factory=dict)
    values: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class EntityPlan:
    """What one entity key column's state tracks, from the contract's behaviour."""

    key: str
    numbers: tuple[str, ...]
    values: tuple[str, ...]
    aggregates: tuple[Aggregates, ...]
    distinct: tuple[Distinct, ...]
    since_previous: tuple[str, ...]  # entity names
    amount_vs_mean: tuple[tuple[str, float], ...]  # (entity, window)
    fraud_share: tuple[FraudShare, ...]
    amount: str | None
    lateness: float
    longest: dict[int, float]  # step -> the longest window that moves by it
    span: float  # how far back since_previous reaches (``Behaviour.span``)

    def names(self) -> list[str]:
        return list(self._names)

    @cached_property
    def _names(self) -> tuple[str, ...]:
        out = [n for a in self.aggregates for n in a.names()] + [n for d in self.distinct for n in d.names()]
        out += [since_previous_name(e) for e in self.since_previous]
        out += [amount_vs_mean_name(e, w) for e, w in self.amount_vs_mean]
        return tuple(out + [n for f in self.fraud_share for n in f.names()])

    @cached_property
    def reach(self) -> float:
        """How far before a transaction its history can matter: the history's span, or the longest window and one
        of its steps (a window starts at a step's edge), whichever is further."""
        longest = max(self.longest.values(), default=0.0)
        return max(self.span, longest + (step(longest) if longest else 0.0))

    @cached_property
    def _layout(self) -> tuple[tuple[int, float, tuple[tuple[str, str], ...]], ...]:
        """Each aggregate window: (its column's position, -1 for none; the window; (stat, feature name)...)."""
        return tuple(
            (self.numbers.index(a.column) if a.column else -1, w, tuple((st, a.name(st, w)) for st in a.stats))
            for a in self.aggregates
            for w in a.windows
        )

    @cached_property
    def _windows(self) -> tuple[float, ...]:
        """Every window whose totals a feature reads (aggregates, amount against mean, fraud share)."""
        spans = [w for a in self.aggregates for w in a.windows] + [w for _, w in self.amount_vs_mean]
        return tuple(sorted(set(spans + [w for f in self.fraud_share for w in f.windows])))

    @cached_property
    def _distinct_columns(self) -> tuple[int, ...]:
        return tuple(self.values.index(d.column) for d in self.distinct)

    @cached_property
    def _amount_column(self) -> int:
        """Where the amount's statistics are among the tracked columns; -1 when it is not tracked."""
        return self.numbers.index(self.amount) if self.amount in self.numbers else -1

    # -- features --------------------------------------------------------------------------------------------
    def features(self, state: EntityState | None, event: Event) -> dict[str, float]:
        """This entity's features for ``event`` from what comes before it; all missing when it is late."""
        state = state if state is not None else EntityState()
        if self.is_late(state, event):
            return dict.fromkeys(self.names(), NAN)
        before = [r for r in state.tail if (r.time, r.id) < (event.time, event.id) and r.id != event.id]
        out: dict[str, float] = {}
        totals = self._all_totals(state, before, event.time)
        for j, w, named in self._layout:
            count, stats = totals[w]
            st = stats[j] if j >= 0 else Stats()
            got = {"count": float(count), "sum": st.mean * st.n, "mean": NAN, "max": NAN, "std": NAN}
            if st.n > 0:
                got |= {"mean": st.mean, "max": st.top, "std": math.sqrt(max(st.m2 / st.n, 0.0))}
            for stat, name in named:
                out[name] = got[stat]
        for d, k in zip(self.distinct, self._distinct_columns, strict=True):
            for w in d.windows:
                out[d.name(w)] = float(len(self._distinct(state, before, k, event.time, w)))
        for entity in self.since_previous:
            previous = max([state.last_sealed, *(r.time for r in before)])
            gap = event.time - previous
            out[since_previous_name(entity)] = gap if gap <= self.span else NAN
        for entity, w in self.amount_vs_mean:
            _, stats = totals[w]
            s = stats[self._amount_column] if self._amount_column >= 0 else Stats()
            amount = event.numbers.get(self.amount, NAN) if self.amount else NAN
            ratio = amount / s.mean if s.n > 0 and s.mean != 0.0 else NAN
            out[amount_vs_mean_name(entity, w)] = ratio if math.isfinite(ratio) else NAN
        for f in self.fraud_share:
            for w in f.windows:
                count, _ = totals[w]
                start = window_start(event.time, w)
                frauds = sum(
                    1
                    for tx, fr in state.frauds.items()
                    if fr.time >= start and fr.known <= event.time and (fr.time, tx) < (event.time, event.id)
                )
                out[f.name(w)] = frauds / count if count > 0 else NAN
        return out

    @cached_property
    def _by_step(self) -> tuple[tuple[int, tuple[float, ...]], ...]:
        """The windows whose totals a feature reads, grouped by the step they move by."""
        sizes = sorted({int(step(w)) for w in self._windows})
        return tuple((size, tuple(w for w in self._windows if int(step(w)) == size)) for size in sizes)

    def _all_totals(self, state: EntityState, before: list[Raw], t: float) -> dict[float, tuple[int, list[Stats]]]:
        """Per window: the transactions count and each tracked column's ``Stats`` at ``t``, from the whole steps
        it holds and the tail's transactions before the event."""
        out: dict[float, tuple[int, list[Stats]]] = {}
        columns = range(len(self.numbers))
        for size, mine in self._by_step:
            held = state.buckets.get(size) or {}
            now = math.floor(t / size)  # the step ``t`` falls in: a window of w holds w / size whole steps before it
            for w in mine:
                first = math.floor(now - w / size)
                chosen = [b for index, b in held.items() if index >= first]
                start = first * size
                rows = [r for r in before if r.time >= start]
                count = sum([b.count for b in chosen]) + len(rows)
                out[w] = (
                    count,
                    [_combined([b.stats[j] for b in chosen], [r.numbers[j] for r in rows]) for j in columns],
                )
        return out

    def _distinct(self, state: EntityState, before: list[Raw], k: int, t: float, w: float) -> set[str]:
        s = step(w)
        first = math.floor(window_start(t, w) / s)
        seen = state.seen.get(int(s))
        values = {v for v, index in seen[k].items() if index >= first} if seen else set()
        start = first * s
        return values | {r.values[k] for r in before if r.time >= start and r.values[k] is not None}  # type: ignore[misc]

    # -- updates ---------------------------------------------------------------------------------------------
    def is_late(self, state: EntityState, event: Event) -> bool:
        return event.time < state.newest - self.lateness

    def apply(self, state: EntityState, event: Event) -> str:
        """Place ``event`` in ``state``: ``"placed"``, ``"duplicate"`` (its id is in the tail: a retry or a
        redelivery) or ``"late"`` (older than the tail; counted, not placed)."""
        if any(r.id == event.id for r in state.tail):
            return "duplicate"
        if self.is_late(state, event):
            state.late += 1
            state.refused[event.id] = float(event.time)
            return "late"
        state.tail.append(
            Raw(
                float(event.time),
                event.id,
                [float(event.numbers.get(c, NAN)) for c in self.numbers],
                [event.values.get(c) for c in self.values],
            )
        )
        state.newest = max(state.newest, float(event.time))
        self._seal(state)
        return "placed"

    def _seal(self, state: EntityState) -> None:
        """Fold the tail's transactions older than ``newest - lateness`` into their steps; drop what no window
        can hold any more."""
        mark = state.newest - self.lateness
        old = [r for r in state.tail if r.time < mark]
        if not old:  # nothing sealed: the steps are as they were (an older one, outside every window, can wait)
            return
        state.tail = [r for r in state.tail if r.time >= mark]
        for r in old:
            self._fold(state, r)
        for s, longest in self.longest.items():
            first = math.floor(window_start(mark, longest) / s)
            held = state.buckets.get(s)
            if held:
                for index in [i for i in held if i < first]:
                    del held[index]
            for per in state.seen.get(s, []):
                for value in [v for v, index in per.items() if index < first]:
                    del per[value]
        keep = window_start(mark, self.reach)
        for tx in [tx for tx, fr in state.frauds.items() if fr.time < keep]:
            del state.frauds[tx]
        for tx in [tx for tx, t in state.refused.items() if t < keep]:
            del state.refused[tx]

    def _fold(self, state: EntityState, r: Raw) -> None:
        """One tail transaction into its step of each step size."""
        state.last_sealed = max(state.last_sealed, r.time)
        for s in self.longest:
            index = math.floor(r.time / s)
            bucket = state.buckets.setdefault(s, {}).get(index)
            if bucket is None:
                bucket = state.buckets[s][index] = Bucket(0, [Stats() for _ in self.numbers])
            bucket.count += 1
            for st, v in zip(bucket.stats, r.numbers, strict=True):
                st.add(v)
            seen = state.seen.setdefault(s, [{} for _ in self.values])
            for per, value in zip(seen, r.values, strict=True):
                if value is not None:
                    per[value] = max(per.get(value, index), index)

    def label(self, state: EntityState, tx: str, time: float, fraud: bool, known: float) -> bool:
        """A label for transaction ``tx`` (event time ``time``) known from ``known``: a fraud is kept for the
        fraud-share windows, a non-fraud withdraws one. Whether the state changed."""
        if not self.fraud_share:
            return False
        time, known = float(time), float(known)
        if tx in state.refused:  # refused as late: never in this entity's history, so never in its share
            return False
        if not fraud:
            return state.frauds.pop(tx, None) is not None
        longest = max(w for f in self.fraud_share for w in f.windows)
        keep = window_start(state.newest - self.lateness, longest) if state.newest > -math.inf else -math.inf
        if time < keep or state.frauds.get(tx) == Fraud(time, known):
            return False
        state.frauds[tx] = Fraud(time, known)
        return True


class Online:
    """Every behavioural feature of one event from its entities' states, in ``behaviour.names()`` order."""

    def __init__(self, behaviour: Behaviour, time_zone: str = "UTC") -> None:
        self.behaviour, self.time_zone = behaviour, time_zone
        self.plans = plans(behaviour)
        self.names = behaviour.names()

    def features(
        self, states: Mapping[str, EntityState | None], event: Event, calendar: Mapping[str, float]
    ) -> tuple[list[float], list[str]]:
        """The feature vector, and the key columns for which ``event`` is late (their features missing).
        ``states`` maps each key column to its entity's state (None: none yet, or no key)."""
        got: dict[str, float] = dict(calendar)
        late: list[str] = []
        for key, plan in self.plans.items():
            state = states.get(key) if event.keys.get(key) is not None else None
            if state is not None and plan.is_late(state, event):
                late.append(key)
            got |= plan.features(state, event)
        return [got[name] for name in self.names], late

    def calendar(self, times: list[float]) -> list[dict[str, float]]:
        """The calendar features of each event time, computed as the offline builder does."""
        if not self.behaviour.calendar:
            return [{} for _ in times]
        import numpy as np

        from shared.domain.windows import calendar

        columns = calendar(np.asarray(times, np.float64), self.behaviour.calendar, self.time_zone)
        return [{name: float(values[i]) for name, values in columns.items()} for i in range(len(times))]


def plans(behaviour: Behaviour) -> dict[str, EntityPlan]:
    """One plan per entity key column the behaviour reads, in the order of first use."""
    keys: list[str] = []
    for key in [
        *(a.key for a in behaviour.aggregates),
        *(d.key for d in behaviour.distinct),
        *(k for _, k in behaviour.since_previous),
        *(k for _, k, _ in behaviour.amount_vs_mean),
        *(f.key for f in behaviour.fraud_share),
    ]:
        if key not in keys:
            keys.append(key)
    out: dict[str, EntityPlan] = {}
    for key in keys:
        aggregates = tuple(a for a in behaviour.aggregates if a.key == key)
        distinct = tuple(d for d in behaviour.distinct if d.key == key)
        against = tuple((e, w) for e, k, w in behaviour.amount_vs_mean if k == key)
        shares = tuple(f for f in behaviour.fraud_share if f.key == key)
        numbers = _unique([a.column for a in aggregates if a.column] + ([behaviour.amount] if against else []))
        windows = [w for a in aggregates for w in a.windows] + [w for d in distinct for w in d.windows]
        windows += [w for _, w in against] + [w for f in shares for w in f.windows]
        longest: dict[int, float] = {}
        for w in windows:
            s = int(step(w))
            longest[s] = max(longest.get(s, 0.0), w)
        out[key] = EntityPlan(
            key,
            tuple(c for c in numbers if c is not None),
            _unique(d.column for d in distinct),
            aggregates,
            distinct,
            tuple(e for e, k in behaviour.since_previous if k == key),
            against,
            shares,
            behaviour.amount,
            behaviour.lateness,
            longest,
            behaviour.span,
        )
    return out


def _combined(parts: list[Stats], values: list[float]) -> Stats:
    """The statistics of disjoint steps' totals and single values together, in two passes (the exact mean
    first, then each part's squared deviations from it: no cancellation of large sums of squares)."""
    parts = [p for p in parts if p.n > 0.0]
    values = [v for v in values if v == v]
    n = sum([p.n for p in parts]) + len(values)
    if n == 0:
        return Stats()
    mean = (sum([p.n * p.mean for p in parts]) + sum(values)) / n
    m2 = sum([p.m2 + p.n * (p.mean - mean) ** 2 for p in parts]) + sum([(v - mean) ** 2 for v in values])
    return Stats(float(n), mean, m2, max([p.top for p in parts] + values))


def _unique(items: Iterable[str | None]) -> tuple[str, ...]:
    out: list[str] = []
    for item in items:
        if item is not None and item not in out:
            out.append(item)
    return tuple(out)
