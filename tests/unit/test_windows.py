"""The point-in-time builder against the semantics read literally (a row-by-row reference), and its leakage rules:
a later transaction, or a label known later, changes no earlier row's features."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.behaviour import (
    Aggregates,
    Behaviour,
    BehaviourError,
    Distinct,
    FraudShare,
    seconds_of,
    window_of,
    window_start,
)
from shared.domain.windows import History, point_in_time
from tests.unit.behaviour_cases import DAY, HOUR, SPEC
from tests.unit.behaviour_cases import history as _history


def _reference(h: History, spec: Behaviour, zone: str) -> dict[str, list[float]]:
    """The docstring of ``shared.domain.behaviour``, row by row, with no cleverness."""
    n = len(h.time)
    order = sorted(range(n), key=lambda i: (h.time[i], str(h.ids[i])))
    rank = {i: r for r, i in enumerate(order)}
    label = h.label if h.label is not None else [math.nan] * n
    at = h.labelled_at if h.labelled_at is not None else [math.nan] * n
    out: dict[str, list[float]] = {name: [] for name in spec.names()}

    def before(i: int, key: str, w: float) -> list[int]:
        k = h.columns[key][i]
        if k is None:
            return []
        return [
            e
            for e in range(n)
            if rank[e] < rank[i] and h.columns[key][e] == k and window_start(h.time[i], w) <= h.time[e] <= h.time[i]
        ]

    for i in range(n):
        row: dict[str, float] = {}
        for a in spec.aggregates:
            for w in a.windows:
                win = before(i, a.key, w)
                vals = [h.columns[a.column][e] for e in win] if a.column else []
                vals = [v for v in vals if not math.isnan(v)]
                mean = sum(vals) / len(vals) if vals else math.nan
                std = math.sqrt(max(sum(v * v for v in vals) / len(vals) - mean * mean, 0)) if vals else math.nan
                stats = {"count": len(win), "sum": sum(vals), "mean": mean, "max": max(vals, default=math.nan)}
                stats["std"] = std
                for s in a.stats:
                    row[f"{a.entity}_{s}_{a.column or 'transactions'}_{_lab(w)}"] = stats[s]
        for d in spec.distinct:
            for w in d.windows:
                seen = {h.columns[d.column][e] for e in before(i, d.key, w)} - {None}
                row[f"{d.entity}_distinct_{d.column}_{_lab(w)}"] = len(seen)
        for entity, key in spec.since_previous:
            prior = before(i, key, math.inf)
            gap = h.time[i] - max(h.time[e] for e in prior) if prior else math.nan
            row[f"{entity}_seconds_since_previous"] = gap if gap <= spec.span else math.nan
        for entity, key, w in spec.amount_vs_mean:
            vals = [h.columns["amount"][e] for e in before(i, key, w) if not math.isnan(h.columns["amount"][e])]
            mean = sum(vals) / len(vals) if vals else math.nan
            ratio = h.columns["amount"][i] / mean if vals and mean else math.nan
            row[f"amount_vs_{entity}_mean_{_lab(w)}"] = ratio
        for f in spec.fraud_share:
            for w in f.windows:
                win = before(i, f.key, w)
                known = [
                    e
                    for e in win
                    if label[e] == 1 and (at[e] if not math.isnan(at[e]) else h.time[e] + spec.label_delay) <= h.time[i]
                ]
                row[f"{f.entity}_fraud_share_{_lab(w)}"] = len(known) / len(win) if win else math.nan
        local = datetime.fromtimestamp(h.time[i], ZoneInfo(zone))
        calendar = {"hour": local.hour, "weekday": local.weekday()}
        calendar |= {"night": int(local.hour >= 22 or local.hour < 6), "weekend": int(local.weekday() >= 5)}
        row |= {f"calendar_{c}": calendar[c] for c in spec.calendar}
        for name in spec.names():
            out[name].append(row[name])
    return out


def _lab(w: float) -> str:
    from shared.domain.behaviour import label

    return label(w)


def test_the_builder_gives_the_semantics_row_for_row() -> None:
    h = _history(np.random.default_rng(4), 400)
    built = point_in_time(h, SPEC, "Europe/Paris")
    reference = _reference(h, SPEC, "Europe/Paris")
    for name, expected in reference.items():
        np.testing.assert_allclose(built[name], expected, rtol=1e-9, atol=1e-6, equal_nan=True, err_msg=name)
    assert list(built) == SPEC.names()


def test_a_hand_worked_example() -> None:
    """Card K pays 10 at 00:00:20, 30 at 00:30:00, 20 at 01:00:30 and 5 at 01:30:50. An hour's window moves by
    the minute: at 01:00:30 it starts at 00:00:00, so the payment at 00:00:20 is in (a plain ``(t - 1h, t]``
    would have dropped it); at 01:30:50 it starts at 00:30:00, and the payment at exactly 00:30:00 is in. A
    payment is never in its own window."""
    h = History(
        np.array([20.0, 1800.0, 3630.0, 5450.0]),
        np.array(["a", "b", "c", "d"], dtype=object),
        {
            "card": np.array(["K"] * 4, dtype=object),
            "terminal": np.array(["T1", "T2", "T1", "T2"], dtype=object),
            "amount": np.array([10.0, 30.0, 20.0, 5.0]),
        },
    )
    spec = Behaviour(
        aggregates=(Aggregates("card", "card", "amount", (HOUR,), ("count", "sum", "mean")),),
        distinct=(Distinct("card", "card", "terminal", (DAY,)),),
        since_previous=(("card", "card"),),
    )
    got = point_in_time(h, spec)
    np.testing.assert_array_equal(got["card_count_amount_1h"], [0, 1, 2, 2])
    np.testing.assert_array_equal(got["card_sum_amount_1h"], [0, 10, 40, 50])
    np.testing.assert_array_equal(got["card_mean_amount_1h"], [np.nan, 10, 20, 25])
    np.testing.assert_array_equal(got["card_distinct_terminal_1d"], [0, 1, 2, 2])
    np.testing.assert_array_equal(got["card_seconds_since_previous"], [np.nan, 1780, 1830, 1820])


def test_a_label_counts_from_when_it_was_known() -> None:
    """A fraud at 00:00 labelled at 12:00; a fraud at 01:00 labelled without a time (known after the delay)."""
    times = np.array([0.0, HOUR, 6 * HOUR, 12 * HOUR, 2 * DAY + HOUR])
    h = History(
        times,
        np.array(["a", "b", "c", "d", "e"], dtype=object),
        {"terminal": np.array(["T"] * 5, dtype=object)},
        label=np.array([1.0, 1.0, 0.0, np.nan, np.nan]),
        labelled_at=np.array([12 * HOUR, np.nan, np.nan, np.nan, np.nan]),
    )
    spec = Behaviour(fraud_share=(FraudShare("terminal", "terminal", (7 * DAY,)),), label_delay=2 * DAY)
    share = point_in_time(h, spec)["terminal_fraud_share_7d"]
    # at 06:00 nothing is known yet; at 12:00 the first label is (labelled_at == t counts); at day 2 01:00 both
    np.testing.assert_array_equal(share, [np.nan, 0.0, 0.0, 1 / 3, 2 / 4])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(5, 120), st.floats(0, 1))
def test_a_later_transaction_or_a_later_label_changes_no_earlier_row(seed: int, n: int, where: float) -> None:
    rng = np.random.default_rng(seed)
    h = _history(rng, n)
    before = point_in_time(h, SPEC)
    order = np.lexsort((h.ids.astype(str), h.time))
    cut = order[int(where * (n - 1))]  # every row up to this one in (time, id) order must keep its features
    earlier = np.isin(np.arange(n), order[: int(where * (n - 1)) + 1])
    # a transaction after the cut in the order (same second, later id, or later), on the same card and terminal
    later = History(
        np.append(h.time, h.time[cut]),
        np.append(h.ids, "tx~later"),  # "~" sorts after every "tx0000"-style id
        {k: np.append(v, v[cut]) for k, v in h.columns.items()},
        np.append(h.label, 1.0),
        np.append(h.labelled_at, h.time[cut]),
    )
    after = point_in_time(later, SPEC)
    for name in SPEC.names():
        np.testing.assert_array_equal(after[name][:n][earlier], before[name][earlier], err_msg=name)
    # a label that became known after the cut's time: no row up to the cut sees it
    relabelled = History(h.time, h.ids, h.columns, np.where(np.isnan(h.label), 1.0, h.label), h.labelled_at.copy())
    unknown = np.isnan(h.label)
    relabelled.labelled_at[unknown] = h.time[cut] + 1.0
    again = point_in_time(relabelled, SPEC)
    for name in SPEC.names():
        np.testing.assert_array_equal(again[name][earlier], before[name][earlier], err_msg=name)


def test_durations_are_read_and_bad_ones_refused() -> None:
    assert [seconds_of(t) for t in ("30s", "10m", "1h", "7d")] == [30, 600, 3600, 7 * DAY]
    for bad in ("", "1w", "0d", "1.5h", "h", "400d", None):
        with pytest.raises(BehaviourError):
            seconds_of(bad)  # type: ignore[arg-type]
    assert [window_of(t) for t in ("1m", "10m", "60m", "1h", "2h", "36h", "7d")] == [
        60,
        600,
        3600,
        3600,
        7200,
        36 * 3600,
        7 * DAY,
    ]
    for bad in ("30s", "90s", "90m", "61m", "3601s"):
        with pytest.raises(BehaviourError, match="whole steps"):
            window_of(bad)
    assert window_start(7 * 3600 + 17 * 60 + 30.0, HOUR) == 6 * 3600 + 17 * 60
    assert window_start(DAY + 3 * 3600 + 59 * 60.0, DAY) == 3 * 3600


def test_a_huge_value_outside_a_window_costs_it_no_precision() -> None:
    """Running totals would lose the small values after a huge one; the window's own blocks do not."""
    for huge in (1e8, 1e17):
        h = History(
            np.array([0.0, 10_000.0, 10_001.0, 10_002.0]),
            np.array(["a", "b", "c", "d"], dtype=object),
            {"card": np.array(["K"] * 4, dtype=object), "amount": np.array([huge, 10.0, 11.0, 1.0])},
        )
        spec = Behaviour(aggregates=(Aggregates("card", "card", "amount", (HOUR,), ("sum", "mean", "std")),))
        got = point_in_time(h, spec)
        assert got["card_sum_amount_1h"][3] == 21.0 and got["card_mean_amount_1h"][3] == 10.5
        assert got["card_std_amount_1h"][3] == pytest.approx(0.5, abs=1e-12)
    # and around a large level, a small spread keeps its digits (no E[x^2] - E[x]^2 cancellation)
    amounts = 1e9 + np.array([1.0, 2.0, 3.0, 4.0, 0.0])
    h = History(np.arange(5.0), np.array(list("abcde"), dtype=object),
                {"card": np.array(["K"] * 5, dtype=object), "amount": amounts})  # fmt: skip
    spec = Behaviour(aggregates=(Aggregates("card", "card", "amount", (DAY,), ("std",)),))
    assert point_in_time(h, spec)["card_std_amount_1d"][4] == pytest.approx(np.std([1.0, 2.0, 3.0, 4.0]), abs=1e-6)
