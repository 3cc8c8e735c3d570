"""The daily skew check: a sample of the day's served behavioural features computed again offline.

Every served vector should be the point-in-time builder's row (``shared.domain.windows``) over the
transactions that had arrived when it was scored (the semantics in ``shared.domain.behaviour``). The check
rebuilds that history from what is stored: the curated rows older than the first served record of the span
(what the online store was filled with), then every served record of the history's span (the behaviour's
longest window, at least a day) in the order it was scored; fraud labels known from the curated history
(its label, after the contract's ``label_delay``) and from the labels that landed (their ``labelled_at``, for
the rows scored after they landed: the store could not know a verdict before it arrived). For
up to ``SAMPLE`` of the day's transactions served with their behaviour ``ok``, it computes the builder's row
over the rows of the same entities that had arrived, and compares it with the recorded one (kept as float32).

Instances scoring the same entity at the same moment are ordered here by their records' ``scored_at``, which
the store's compare-and-set may have ordered the other way: a share of differing rows up to ``TOLERATED``
is reported, not alerted on. More than that is an alert (critical): the online path and the offline
builder disagree, and a model trained offline would be served other numbers.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.domain import layout
from shared.domain.history import history_columns, history_of, read_columns, recorded_columns, texts
from shared.domain.windows import point_in_time
from shared.monitoring.served import load_served

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.domain.contract import DatasetContract

log = logging.getLogger(__name__)

SAMPLE = 500
TOLERATED = 0.01  # the share of sampled rows allowed to differ (concurrent instances ordered by scored_at)
RTOL = ATOL = 1e-5  # recorded as float32


@dataclass(frozen=True)
class SkewCheck:
    sampled: int
    differ: int
    worst: dict[str, Any]  # the first differing row: transaction, feature, served, offline
    share: float | None

    @property
    def alert(self) -> bool:
        return self.share is not None and self.differ > max(1, TOLERATED * self.sampled)

    def summary(self) -> dict[str, Any]:
        return {"sampled": self.sampled, "differ": self.differ, "share": self.share, "worst": self.worst}


def check_skew(store: BlobStore, contract: DatasetContract, day: date, *, seed: int = 0) -> SkewCheck:
    """Recompute a sample of ``day``'s served behavioural features offline and count those that differ."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = contract.behaviour.names()
    texts, numbers = recorded_columns(contract)
    reach = timedelta(seconds=contract.behaviour.span + contract.behaviour.lateness) + timedelta(days=1)
    wanted = [*names, *texts, *numbers, *contract.feature_names, "behaviour"]
    served = load_served(store, day - reach, day, features=list(dict.fromkeys(wanted)))
    if served.num_rows == 0 or "behaviour" not in served.column_names:
        return SkewCheck(0, 0, {}, None)
    served = served.take(pc.sort_indices(served, sort_keys=[("scored_at", "ascending")]))
    days = pc.cast(served.column("scored_at"), pa.date32()).to_pylist()
    statuses = served.column("behaviour").to_pylist()
    candidates = [i for i, (d, s) in enumerate(zip(days, statuses, strict=True)) if d == day and s == "ok"]
    if not candidates:
        return SkewCheck(0, 0, {}, None)
    rng = np.random.default_rng(seed)
    sample = sorted(rng.choice(candidates, size=min(SAMPLE, len(candidates)), replace=False).tolist())
    first_scored = float(np.nanmin(served.column("event_time").to_numpy(zero_copy_only=False)))
    history = _curated_before(store, contract, first_scored)
    rows = _rows(contract, history, served, _landed_labels(store))
    keys, _, _ = read_columns(contract.behaviour)
    differ, worst = 0, dict[str, Any]()
    offset = history["n"]
    for i in sample:
        e = offset + i
        mine = np.zeros(rows["n"], dtype=bool)
        for key in keys:
            value = rows["columns"][key][e]
            if value is not None:
                mine |= rows["columns"][key] == value
        mine &= rows["placed"]  # a row the store never took (no answer, dated ahead) is no one's history
        mine[e] = True
        keep = np.flatnonzero(mine & (np.arange(rows["n"]) <= e))  # what had arrived: rank is the row order
        known = rows["arrived"][keep] <= rows["scored"][e]  # a verdict that landed after this row was scored: unknown
        h = history_of(
            contract,
            rows["time"][keep],
            rows["ids"][keep],
            {k: rows["columns"][k][keep] for k in rows["columns"]},
            np.where(known, rows["label"][keep], np.nan),
            np.where(known, rows["labelled_at"][keep], np.nan),
        )
        built = point_in_time(h, contract.behaviour, contract.time_zone)
        at = int(np.flatnonzero(keep == e)[0])
        expected = np.array([built[n][at] for n in names], dtype=np.float32)
        got = np.array([served.column(n)[i].as_py() for n in names], dtype=np.float32)
        bad = ~np.isclose(got, expected, rtol=RTOL, atol=ATOL, equal_nan=True)
        if bad.any():
            differ += 1
            if not worst:
                j = int(np.flatnonzero(bad)[0])
                worst = {
                    "transaction_id": str(rows["ids"][e]),
                    "feature": names[j],
                    "served": float(got[j]),
                    "offline": float(expected[j]),
                }
    check = SkewCheck(len(sample), differ, worst, round(differ / len(sample), 5))
    (log.error if check.alert else log.info)("behaviour skew check on %s: %s", day, check.summary())
    return check


def _curated_before(store: BlobStore, contract: DatasetContract, until: float) -> dict[str, Any]:
    """The curated history (read for its history columns) older than ``until``, within the history's span."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shared.adapters.erasures import erased
    from shared.etl.arrays import floats, seconds
    from shared.etl.manifest import files_of_version

    wanted = history_columns(contract)
    time_name = contract.time_column.name if contract.time_column else ""
    try:
        _, files = files_of_version(store, contract.name)
    except Exception:  # no curated data yet: the served records are the whole history
        files = []
    gone = erased(store)
    tables = []
    for path in files:
        source = pq.ParquetFile(io.BytesIO(store.get_bytes(layout.CURATED, path)[0]))
        if not set(wanted) <= set(source.schema_arrow.names):
            continue
        table = source.read(columns=wanted)
        if gone and contract.customer and contract.customer in source.schema_arrow.names:
            customers = source.read(columns=[contract.customer]).column(0).to_pylist()
            table = table.filter(pa.array([c not in gone for c in customers]))
        tables.append(table)
    if not tables:
        return {"n": 0}
    table = pa.concat_tables(tables, promote_options="default")
    t = seconds(table.column(time_name))
    keep = (t < until) & (t >= until - contract.behaviour.span - contract.behaviour.lateness - 3600.0)
    table, t = table.filter(pa.array(keep)), t[keep]
    ids = table.column(contract.transaction_id or "").to_pylist()
    order = np.lexsort((np.asarray(ids, dtype=str), t))
    label = floats(table.column(contract.label.name))[order] if contract.label else np.full(len(t), np.nan)
    return {
        "n": int(t.size),
        "time": t[order],
        "ids": np.asarray(ids, dtype=object)[order],
        "columns": {c: np.asarray(table.column(c).to_pylist(), dtype=object)[order] for c in wanted},
        "label": label,
    }


def _rows(
    contract: DatasetContract, history: dict[str, Any], served: Any, landed: dict[str, tuple[float, float, float]]
) -> dict[str, Any]:
    """The curated history then the served records (in the order they were scored), as one set of columns,
    with the labels known: the history's own (after ``label_delay``), then those that landed."""
    keys, numbers, values = read_columns(contract.behaviour)
    n_served = served.num_rows
    columns: dict[str, np.ndarray] = {}
    for name in keys + values + numbers:
        source = "customer_id" if name == contract.customer else name
        now = np.asarray(served.column(source).to_pylist(), dtype=object)
        before = history["columns"][name] if history["n"] else np.empty(0, dtype=object)
        both = np.concatenate([before, now])
        columns[name] = texts(both) if name in keys or name in values else both  # keys compared as text
    served_time = served.column("event_time").to_numpy(zero_copy_only=False).astype(np.float64)
    ids = np.concatenate([history["ids"] if history["n"] else np.empty(0, dtype=object),
                          np.asarray(served.column("transaction_id").to_pylist(), dtype=object)])  # fmt: skip
    time = np.concatenate([history["time"] if history["n"] else np.empty(0), served_time])
    label = np.concatenate([history["label"] if history["n"] else np.empty(0), np.full(n_served, np.nan)])
    labelled_at = np.full(label.size, np.nan)
    arrived = np.full(label.size, -np.inf)  # when each verdict reached the online store (history: before all)
    for j, tx in enumerate(ids[history["n"] :]):
        found = landed.get(str(tx))
        if found is not None:
            k = history["n"] + j
            label[k], labelled_at[k], arrived[k] = found
    scored = np.concatenate(
        [np.full(history["n"], -np.inf), served.column("scored_at").cast("int64").to_numpy(zero_copy_only=False) / 1e6]
    )
    statuses = served.column("behaviour").to_pylist()
    placed = np.concatenate(
        [np.ones(history["n"], dtype=bool), np.array([s_ not in ("unavailable", "future") for s_ in statuses])]
    )
    return {"n": int(time.size), "time": time, "ids": ids, "columns": columns, "label": label,
            "labelled_at": labelled_at, "arrived": arrived, "scored": scored, "placed": placed}  # fmt: skip


def _landed_labels(store: BlobStore) -> dict[str, tuple[float, float, float]]:
    """The verdicts that landed: (label, labelled_at, landed at: the labels file's ingestion) in seconds, by
    transaction id (the latest verdict per one)."""
    import pyarrow.parquet as pq

    from shared.domain.contract import LABELS_PREFIX

    out: dict[str, tuple[float, float, float]] = {}
    for name in store.list_names(layout.CURATED, LABELS_PREFIX):
        if not name.endswith(".parquet"):
            continue
        table = pq.read_table(io.BytesIO(store.get_bytes(layout.CURATED, name)[0]))
        if "ingested_at" not in table.column_names:
            continue
        at = table.column("labelled_at").cast("int64").to_numpy(zero_copy_only=False) / 1e6
        landed = table.column("ingested_at").cast("int64").to_numpy(zero_copy_only=False) / 1e6
        for tx, v, a, g in zip(
            table.column("transaction_id").to_pylist(), table.column("label").to_pylist(), at, landed, strict=True
        ):
            if str(tx) not in out or out[str(tx)][1] <= a:
                out[str(tx)] = (float(v), float(a), float(g))
    return out
