"""Realised performance: what the served decisions were worth once the labels came in.

Per model version and per day the transactions were scored: predictions served, how many are
labelled (coverage), frauds caught and missed, false alarms, precision, recall, the business cost
of the errors (``COST_FN`` per missed fraud, ``COST_FP`` per false alarm), and the label delay
(scored to labelled, median hours). A transaction without a label is unknown, not genuine:
precision and recall are over labelled transactions, and coverage says how many that is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Realised:
    """One group's figures (``model_version`` and ``day``; ``"all"`` for the totals)."""

    model_version: str
    day: str
    predictions: int
    labelled: int
    coverage: float
    frauds: int
    caught: int
    missed: int
    false_alarms: int
    precision: float | None
    recall: float | None
    cost: float
    label_delay_hours_median: float | None


def _figures(
    version: str,
    day: str,
    served: int,
    label: np.ndarray,
    flagged: np.ndarray,
    delay_h: np.ndarray,
    cost_fn: float,
    cost_fp: float,
) -> Realised:
    frauds = int(label.sum())
    caught = int((label & flagged).sum())
    false_alarms = int((~label & flagged).sum())
    missed = frauds - caught
    return Realised(
        model_version=version,
        day=day,
        predictions=served,
        labelled=int(label.size),
        coverage=round(label.size / served, 4) if served else 0.0,
        frauds=frauds,
        caught=caught,
        missed=missed,
        false_alarms=false_alarms,
        precision=round(caught / (caught + false_alarms), 4) if caught + false_alarms else None,
        recall=round(caught / frauds, 4) if frauds else None,
        cost=round(cost_fn * missed + cost_fp * false_alarms, 2),
        label_delay_hours_median=round(float(np.median(delay_h)), 2) if delay_h.size else None,
    )


def realised(served: pa.Table, joined: pa.Table, *, cost_fn: float, cost_fp: float) -> list[Realised]:
    """Figures per (model version, day scored), then one ``all``/``all`` row over everything."""
    served_version = np.array(served.column("model_version").to_pylist(), dtype=object)
    served_day = _days(served)
    version = np.array(joined.column("model_version").to_pylist(), dtype=object)
    day = _days(joined)
    label = joined.column("label").to_numpy(zero_copy_only=False).astype(bool)
    flagged = joined.column("is_fraud").to_numpy(zero_copy_only=False).astype(bool)
    delay = _hours(joined)
    groups = sorted(set(zip(served_version.tolist(), served_day.tolist(), strict=True)))
    rows = []
    for v, d in groups:
        mine = (version == v) & (day == d)
        n_served = int(((served_version == v) & (served_day == d)).sum())
        rows.append(_figures(v, d, n_served, label[mine], flagged[mine], delay[mine], cost_fn, cost_fp))
    rows.append(_figures("all", "all", served.num_rows, label, flagged, delay, cost_fn, cost_fp))
    return rows


def _days(table: pa.Table) -> np.ndarray:
    import pyarrow.compute as pc

    return np.array(pc.strftime(table.column("scored_at"), format="%Y-%m-%d").to_pylist(), dtype=object)


def _hours(joined: pa.Table) -> np.ndarray:
    scored = joined.column("scored_at").cast("int64").to_numpy(zero_copy_only=False)
    labelled = joined.column("labelled_at").cast("int64").to_numpy(zero_copy_only=False)
    return np.asarray((labelled - scored) / 3.6e9, dtype=np.float64)  # microseconds to hours
