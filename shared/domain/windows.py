"""The point-in-time builder: each transaction's behavioural features from what was known at its event time.

``point_in_time(history, behaviour)`` follows the semantics in ``shared.domain.behaviour`` exactly, for any
number of rows, without a per-row Python loop: within each entity, rows are in (time, transaction id)
order, a window's rows are a slice ``[start, i)`` found by binary search, and what a past transaction
adds to later rows (a count, a fraud once its label is known, a value not yet seen again) is an interval
of later rows, summed with a difference array. Nothing after a row's place in the order is read for it,
which is what the leakage tests check: adding a later transaction, or a label known later, changes no
earlier row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from shared.domain.behaviour import Behaviour, amount_vs_mean_name, since_previous_name, step, window_start


@dataclass(frozen=True)
class History:
    """Transactions in any order: event ``time`` (seconds, UTC), ``ids`` (the tie-break), the entity keys and
    numeric columns the behaviour reads (text keys with None for missing; numbers as float with NaN), and
    what is known of their labels: ``label`` (1, 0, or NaN when none yet) and ``labelled_at`` (seconds, NaN
    when the label came without it)."""

    time: np.ndarray
    ids: np.ndarray
    columns: Mapping[str, np.ndarray]
    label: np.ndarray | None = None
    labelled_at: np.ndarray | None = None
    order: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.time)
        if len(self.ids) != n or any(len(c) != n for c in self.columns.values()):
            raise ValueError("every column of a history must have one value per transaction")
        ids = np.asarray(self.ids).astype(str)
        object.__setattr__(self, "order", np.lexsort((ids, np.asarray(self.time, np.float64))))


def point_in_time(history: History, behaviour: Behaviour, time_zone: str = "UTC") -> dict[str, np.ndarray]:
    """Each behavioural feature (``behaviour.names()``) per transaction, in ``history``'s row order."""
    order = history.order
    n = order.size
    t = np.asarray(history.time, np.float64)[order]
    out: dict[str, np.ndarray] = {}
    fraud, known = _labels(history, t, behaviour.label_delay)

    def column(name: str) -> np.ndarray:
        return np.asarray(np.asarray(history.columns[name], np.float64)[order])

    groups: dict[str, _Groups] = {}

    def grouped(key: str) -> _Groups:
        if key not in groups:
            groups[key] = _Groups(np.asarray(history.columns[key], dtype=object)[order], t)
        return groups[key]

    for a in behaviour.aggregates:
        g = grouped(a.key)
        values = column(a.column) if a.column else None
        for w in a.windows:
            stats = g.aggregate(values, w)
            for s in a.stats:
                out[a.name(s, w)] = stats[s]
    for d in behaviour.distinct:
        g = grouped(d.key)
        values = np.asarray(history.columns[d.column], dtype=object)[order]
        for w in d.windows:
            out[d.name(w)] = g.distinct(values, w)
    for entity, key in behaviour.since_previous:
        out[since_previous_name(entity)] = grouped(key).since_previous(behaviour.span)
    for entity, key, w in behaviour.amount_vs_mean:
        out[amount_vs_mean_name(entity, w)] = _against_mean(grouped(key), column, behaviour.amount, w)
    for f in behaviour.fraud_share:
        g = grouped(f.key)
        for w in f.windows:
            out[f.name(w)] = g.fraud_share(fraud, known, w)
    if behaviour.calendar:
        out.update(calendar(t, behaviour.calendar, time_zone))
    back = np.empty(n, dtype=np.int64)
    back[order] = np.arange(n)
    return {name: out[name][back] for name in behaviour.names()}


def _against_mean(groups: _Groups, column: Callable[[str], np.ndarray], amount: str | None, w: float) -> np.ndarray:
    """Each row's amount divided by its window's mean amount (NaN without history, or when the mean is 0)."""
    if amount is None:
        raise ValueError("amount_vs_mean needs the amount column (the contract's amount role)")
    values = column(amount)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = values / groups.aggregate(values, w)["mean"]
    return np.where(np.isfinite(ratio), ratio, np.nan)


def _labels(history: History, t: np.ndarray, delay: float) -> tuple[np.ndarray, np.ndarray]:
    """Which ordered rows are frauds, and when each label became known (``labelled_at``, else ``t + delay``)."""
    n, order = t.size, history.order
    label = np.asarray(history.label, np.float64)[order] if history.label is not None else np.full(n, np.nan)
    at = np.asarray(history.labelled_at, np.float64)[order] if history.labelled_at is not None else np.full(n, np.nan)
    return label == 1, np.where(np.isnan(at), t + delay, at)


class _Groups:
    """One entity's rows: each group's slice of the (time, id)-ordered rows, as positions ``seq``."""

    def __init__(self, keys: np.ndarray, t: np.ndarray) -> None:
        n = keys.size
        self.n, self.t = n, t
        present = np.array([k is not None and k == k for k in keys], dtype=bool)  # None and NaN are missing
        codes = np.full(n, -1, dtype=np.int64)
        if present.any():
            _, codes[present] = np.unique(keys[present].astype(str), return_inverse=True)
        self.seq = np.lexsort((np.arange(n), codes))  # by group, then in time order
        self.seq = self.seq[codes[self.seq] >= 0]  # rows without a key have no history, and are no one's
        g = codes[self.seq]
        cut = np.flatnonzero(np.diff(g)) + 1
        self.bounds = list(zip(np.concatenate([[0], cut]), np.concatenate([cut, [g.size]]), strict=True))

    def _each(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each group's rows (positions in the ordered rows) and their times."""
        return [(self.seq[a:b], self.t[self.seq[a:b]]) for a, b in self.bounds]

    def aggregate(self, values: np.ndarray | None, w: float) -> dict[str, np.ndarray]:
        n = self.n
        out = {"count": np.zeros(n), "sum": np.zeros(n)} | {s: np.full(n, np.nan) for s in ("mean", "max", "std")}
        for rows, ts in self._each():
            start = np.searchsorted(ts, window_start(ts, w), side="left")  # first row the window holds
            i = np.arange(rows.size)
            out["count"][rows] = i - start
            if values is None:
                continue
            got = _Blocks(values[rows], int((i - start).max(initial=0))).window(start, i)
            out["sum"][rows] = got.total
            with np.errstate(divide="ignore", invalid="ignore"):
                out["mean"][rows] = np.where(got.count > 0, got.mean, np.nan)
                out["std"][rows] = np.where(got.count > 0, np.sqrt(np.maximum(got.m2 / got.count, 0.0)), np.nan)
            out["max"][rows] = np.where(np.isfinite(got.top), got.top, np.nan)
        return out

    def distinct(self, values: np.ndarray, w: float) -> np.ndarray:
        out = np.zeros(self.n)
        for rows, ts in self._each():
            v = values[rows]
            present = np.array([x is not None and x == x for x in v], dtype=bool)
            end = _held_until(ts, w)  # later rows whose window still holds this one
            nxt = np.full(rows.size, rows.size, dtype=np.int64)  # the next row with the same value
            if present.any():
                where = np.flatnonzero(present)
                _, code = np.unique(v[present].astype(str), return_inverse=True)
                by = where[np.lexsort((where, code))]
                same = code[np.lexsort((where, code))]
                follows = same[1:] == same[:-1]
                nxt[by[:-1][follows]] = by[1:][follows]
            first = np.arange(rows.size) + 1
            last = np.minimum(end, nxt + 1)  # counted while it is the value's newest row in the window
            out[rows] = _intervals(first[present], last[present], rows.size)
        return out

    def since_previous(self, span: float) -> np.ndarray:
        out = np.full(self.n, np.nan)
        for rows, ts in self._each():
            gaps = np.diff(ts)
            out[rows[1:]] = np.where(gaps <= span, gaps, np.nan)
        return out

    def fraud_share(self, fraud: np.ndarray, known: np.ndarray, w: float) -> np.ndarray:
        out = np.full(self.n, np.nan)
        for rows, ts in self._each():
            i = np.arange(rows.size)
            start = np.searchsorted(ts, window_start(ts, w), side="left")
            end = _held_until(ts, w)
            f = fraud[rows]
            from_known = np.searchsorted(ts, known[rows], side="left")  # first later row by when it is known
            first = np.maximum(i + 1, from_known)
            frauds = _intervals(first[f], end[f], rows.size)
            count = i - start
            with np.errstate(divide="ignore", invalid="ignore"):
                out[rows] = np.where(count > 0, frauds / count, np.nan)
        return out


def _held_until(ts: np.ndarray, w: float) -> np.ndarray:
    """For each row of a group (times ``ts``, sorted), the first later row whose window of ``w`` no longer holds
    it: a window holds ``t_e`` while ``floor(t / step) * step - w <= t_e``, that is while ``t`` is before the
    end of ``t_e``'s step plus ``w``."""
    s = step(w)
    return np.searchsorted(ts, (np.floor(ts / s) + 1.0) * s + w, side="left")


def _intervals(first: np.ndarray, last: np.ndarray, size: int) -> np.ndarray:
    """How many of the intervals ``[first, last)`` hold each position ``0..size-1``."""
    keep = first < last
    delta = np.zeros(size + 1)
    np.add.at(delta, first[keep], 1.0)
    np.add.at(delta, last[keep], -1.0)
    return np.cumsum(delta)[:size]


@dataclass
class _Stats:
    """Count, sum, mean, sum of squared deviations (M2) and maximum of some values (missing ones skipped)."""

    count: np.ndarray
    total: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    top: np.ndarray

    @classmethod
    def of(cls, v: np.ndarray) -> _Stats:
        present = ~np.isnan(v)
        filled = np.where(present, v, 0.0)
        return cls(present.astype(np.float64), filled, filled, np.zeros(v.size), np.where(present, v, -np.inf))

    def at(self, index: np.ndarray) -> _Stats:
        return _Stats(*(a[index] for a in (self.count, self.total, self.mean, self.m2, self.top)))

    def merge(self, other: _Stats) -> _Stats:
        """Two disjoint sets' statistics combined (Chan, Golub and LeVeque's pairwise update: no cancellation
        of large sums of squares)."""
        count = self.count + other.count
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(count > 0, other.count / count, 0.0)
            delta = other.mean - self.mean
            mean = np.where(
                other.count == 0, self.mean, np.where(self.count == 0, other.mean, self.mean + delta * share)
            )
            m2 = self.m2 + other.m2 + np.where(count > 0, delta * delta * self.count * share, 0.0)
        return _Stats(count, self.total + other.total, mean, m2, np.maximum(self.top, other.top))


class _Blocks:
    """Statistics of every block of ``2**k`` consecutive values, to answer any window ``[start, stop)`` from at
    most ``log2`` disjoint blocks, each summed pairwise: a large value outside a window never costs the window
    its precision, as a difference of running totals would."""

    def __init__(self, values: np.ndarray, longest: int) -> None:
        self.levels = [_Stats.of(np.asarray(values, np.float64))]
        while (1 << len(self.levels)) <= max(longest, 1):
            prev, step = self.levels[-1], 1 << (len(self.levels) - 1)
            size = prev.count.size - step
            self.levels.append(prev.at(np.arange(size)).merge(prev.at(np.arange(step, step + size))))

    def window(self, start: np.ndarray, stop: np.ndarray) -> _Stats:
        n = start.size
        out = _Stats(np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.full(n, -np.inf))
        pos, left = start.copy(), stop - start
        for k in range(len(self.levels) - 1, -1, -1):  # the window's blocks, oldest first
            take = np.flatnonzero(left >= (1 << k))
            if take.size:
                part = out.at(take).merge(self.levels[k].at(pos[take]))
                for mine, theirs in zip(
                    (out.count, out.total, out.mean, out.m2, out.top),
                    (part.count, part.total, part.mean, part.m2, part.top),
                    strict=True,
                ):
                    mine[take] = theirs
                pos[take] += 1 << k
                left[take] -= 1 << k
        return out


def calendar(t: np.ndarray, wanted: tuple[str, ...], zone: str) -> dict[str, np.ndarray]:
    """The calendar features of event times ``t`` (seconds, UTC) in time zone ``zone``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    stamps = pa.array(np.round(t * 1e6).astype(np.int64), type=pa.timestamp("us", tz="UTC")).cast(
        pa.timestamp("us", tz=zone)
    )
    hour = np.asarray(pc.hour(stamps), np.float64)
    weekday = np.asarray(pc.day_of_week(stamps), np.float64)  # 0 Monday .. 6 Sunday
    every = {
        "calendar_hour": hour,
        "calendar_weekday": weekday,
        "calendar_night": ((hour >= 22) | (hour < 6)).astype(np.float64),
        "calendar_weekend": (weekday >= 5).astype(np.float64),
    }
    return {f"calendar_{c}": every[f"calendar_{c}"] for c in wanted}
