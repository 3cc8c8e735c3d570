"""Histories and a behaviour declaration shared by the offline builder's tests and the online state's."""

from __future__ import annotations

import numpy as np

from shared.domain.behaviour import Aggregates, Behaviour, Distinct, FraudShare
from shared.domain.windows import History

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
