"""Histories and a behaviour declaration shared by the offline builder's tests and the online state's."""

from __future__ import annotations

import math

import numpy as np

from shared.domain.behaviour import Aggregates, Behaviour, Distinct, FraudShare
from shared.domain.entity_state import Event
from shared.domain.windows import History, point_in_time

ZONE = "Europe/Paris"

HOUR, DAY = 3600.0, 86400.0
SPEC = Behaviour(
    aggregates=(
        Aggregates("card", "card", "amount", (HOUR, DAY), ("count", "sum", "mean", "max", "std")),
        Aggregates("terminal", "terminal", None, (DAY,), ("count",)),
    ),
    distinct=(Distinct("card", "card", "terminal", (DAY,)), Distinct("terminal", "terminal", "card", (HOUR,))),
    since_previous=(("card", "card"),),
    amount_vs_mean=(("card", "card", DAY),),
    fraud_share=(FraudShare("terminal", "terminal", (DAY, 7 * DAY)),),
    calendar=("hour", "weekday", "night", "weekend"),
    amount="amount",
    label_delay=2 * DAY,
)


def history(rng: np.random.Generator, n: int, *, span: float = 3 * DAY) -> History:
    start = 1_792_800_000.0  # 2026-10-24: the Paris clocks go back within three days
    time = start + np.round(np.sort(rng.uniform(0, span, n)) / 60) * 60  # whole minutes: many ties, and steps' edges
    odd = rng.random(n) < 0.5
    time[odd] += rng.integers(1, 60, int(odd.sum()))  # and seconds within a step
    rng.shuffle(time)  # the builder must not rely on the rows' order
    cards = np.array([f"K{k}" for k in rng.integers(0, 6, n)], dtype=object)
    terminals = np.array([f"T{k}" for k in rng.integers(0, 4, n)], dtype=object)
    terminals[rng.random(n) < 0.05] = None  # a key may be missing
    amount = rng.lognormal(3, 1, n)
    amount[rng.random(n) < 0.1] = np.nan
    label = np.where(rng.random(n) < 0.3, (rng.random(n) < 0.2).astype(float), np.nan)
    labelled_at = np.where(rng.random(n) < 0.5, time + rng.uniform(0, 2 * DAY, n), np.nan)
    return History(
        time,
        np.array([f"tx{i:04d}" for i in rng.permutation(n)], dtype=object),
        {"card": cards, "terminal": terminals, "amount": amount},
        label,
        labelled_at,
    )


def event(h: History, i: int) -> Event:
    c = h.columns
    return Event(
        float(h.time[i]),
        str(h.ids[i]),
        {"card": c["card"][i], "terminal": c["terminal"][i]},
        {"amount": float(c["amount"][i])},
        {"card": c["card"][i], "terminal": c["terminal"][i]},
    )


def arrivals(h: History, spec: Behaviour, rng: np.random.Generator, redeliver: float) -> list[tuple[float, int, int]]:
    """(arrival time, 0 label / 1 transaction, row): each transaction up to ``lateness`` after its time, some
    delivered again (then possibly beyond the bound), each label exactly when it becomes known."""
    n, out = len(h.time), []
    for i in range(n):
        out.append((h.time[i] + rng.uniform(0, spec.lateness), 1, i))
        if rng.random() < redeliver:
            out.append((h.time[i] + rng.uniform(0, 3 * spec.lateness), 1, i))
        if not math.isnan(h.label[i]):
            known = h.labelled_at[i] if not math.isnan(h.labelled_at[i]) else h.time[i] + spec.label_delay
            out.append((known, 0, i))
    return sorted(out)


def offline(h: History, spec: Behaviour, arrived: list[int] | None = None) -> np.ndarray:
    """The builder's rows. With the arrival order, a transaction scored before an earlier one of its entities
    arrived gets the builder's row over the transactions that had arrived (and itself), as the semantics say."""
    built = point_in_time(h, spec, ZONE)
    rows = np.column_stack([built[name] for name in spec.names()])
    if arrived is None:
        return rows
    rank = np.empty(len(arrived), dtype=np.int64)
    rank[np.asarray(arrived)] = np.arange(len(arrived))
    order = np.lexsort((h.ids.astype(str), h.time))
    latest_before = np.empty(len(arrived), dtype=np.int64)  # the latest arrival among the earlier transactions
    latest_before[order] = np.concatenate([[-1], np.maximum.accumulate(rank[order])[:-1]])
    for e in np.flatnonzero(latest_before > rank):  # an earlier transaction arrived after this one was scored
        keep = np.flatnonzero(rank <= rank[e])
        part = History(
            h.time[keep],
            h.ids[keep],
            {k: v[keep] for k, v in h.columns.items()},
            None if h.label is None else h.label[keep],
            None if h.labelled_at is None else h.labelled_at[keep],
        )
        again = point_in_time(part, spec, ZONE)
        at = int(np.flatnonzero(keep == e)[0])
        rows[e] = [again[name][at] for name in spec.names()]
    return rows
