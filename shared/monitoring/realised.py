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
    import pyarrow as pa
    import pyarrow.compute as pc

    # what was served, counted per (version, day) in Arrow: never one Python object per served row
    keyed = pa.table(
        {"v": served.column("model_version"), "d": pc.strftime(served.column("scored_at"), format="%Y-%m-%d")}
    )
    counted = keyed.group_by(["v", "d"], use_threads=False).aggregate([([], "count_all")])
    n_served_of = {
        (v, d): n
        for v, d, n in zip(
            counted.column("v").to_pylist(),
            counted.column("d").to_pylist(),
            counted.column("count_all").to_pylist(),
            strict=True,
        )
    }
    version = np.array(joined.column("model_version").to_pylist(), dtype=object)  # labelled rows only
    day = _days(joined)
    label = joined.column("label").to_numpy(zero_copy_only=False).astype(bool)
    flagged = joined.column("is_fraud").to_numpy(zero_copy_only=False).astype(bool)
    delay = _hours(joined)
    rows = []
    for (v, d), n_served in sorted(n_served_of.items()):
        mine = (version == v) & (day == d)
        rows.append(_figures(v, d, int(n_served), label[mine], flagged[mine], delay[mine], cost_fn, cost_fp))
    rows.append(_figures("all", "all", served.num_rows, label, flagged, delay, cost_fn, cost_fp))
    return rows


def _days(table: pa.Table) -> np.ndarray:
    import pyarrow.compute as pc

    return np.array(pc.strftime(table.column("scored_at"), format="%Y-%m-%d").to_pylist(), dtype=object)


def _hours(joined: pa.Table) -> np.ndarray:
    scored = joined.column("scored_at").cast("int64").to_numpy(zero_copy_only=False)
    labelled = joined.column("labelled_at").cast("int64").to_numpy(zero_copy_only=False)
    return np.asarray((labelled - scored) / 3.6e9, dtype=np.float64)  # microseconds to hours
