"""The NumPy engine: the bank's rows as float32 arrays in memory, the reference the Spark engine is tested against.

``read`` loads the experiment's columns (``fraudops_bank.contract.Columns``) from a CSV file, a
Parquet file or a directory of Parquet files with pyarrow, casting each feature to float32 and the
label to int8 once the rows pass ``fraudops_bank.rows``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fraudops_bank import model as lr
from fraudops_bank import rows
from fraudops_bank.contract import Columns
from fraudops_bank.engines import holdout_cutoff
from fraudops_bank.errors import TableRefusedError


class NumpyEngine:
    """Rows ``x`` (float32, one column per feature) and labels ``y`` (0 or 1), checked on construction.

    ``columns`` names them in refusals and is what the client compares with each round's; without it
    the features are numbered and any round's columns of the same width are taken.
    """

    def __init__(
        self, x: np.ndarray, y: np.ndarray, columns: Columns | None = None, times: np.ndarray | None = None
    ) -> None:
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
            raise TableRefusedError(f"features of shape {x.shape} do not match labels of shape {y.shape}")
        if columns is not None and len(columns.features) != x.shape[1]:
            raise TableRefusedError(f"{x.shape[1]} feature columns for {len(columns.features)} feature names")
        self.columns = columns
        named = columns or Columns(tuple(f"feature {j}" for j in range(x.shape[1])), "label")
        rows.check(survey(x, y, named), named)
        with np.errstate(over="ignore"):
            x = x.astype(np.float32, copy=False)
        y = y.astype(np.int8)
        held = np.zeros(len(x), bool)
        if times is not None and len(times) == len(x):
            t = np.asarray(times, np.float64)
            finite = t[np.isfinite(t)]
            cutoff = holdout_cutoff(float(finite.min()), float(finite.max())) if finite.size else None
            if cutoff is not None:
                held = np.isfinite(t) & (t > cutoff)
        self.x, self.y = x[~held], y[~held]
        self.x_holdout, self.y_holdout = x[held], y[held]
        self._frauds = int(self.y.sum(dtype=np.int64))

    @property
    def rows(self) -> int:
        return len(self.x)

    @property
    def holdout_rows(self) -> int:
        return len(self.x_holdout)

    def evaluate(self, params: dict[str, np.ndarray], scaler: dict[str, np.ndarray]) -> dict[str, float]:
        if not len(self.x_holdout):
            return {}
        p = lr.predict_proba(params, scaler, self.x_holdout)
        out = {"loss": lr.log_loss(self.y_holdout, p)}
        auc = lr.auc(self.y_holdout, p)
        if auc is not None:
            out["auc"] = auc
        return out

    @property
    def frauds(self) -> int:
        return self._frauds

    def statistics(self) -> dict[str, np.ndarray]:
        return lr.sufficient_statistics(self.x)

    def train(
        self, start: dict[str, np.ndarray], scaler: dict[str, np.ndarray], *, steps: int = lr.STEPS
    ) -> dict[str, np.ndarray]:
        return lr.train_local(start, scaler, self.x, self.y, steps=steps)

    def log_loss(self, params: dict[str, np.ndarray], scaler: dict[str, np.ndarray]) -> float:
        return lr.log_loss(self.y, lr.predict_proba(params, scaler, self.x))


def survey(x: np.ndarray, y: np.ndarray, columns: Columns) -> rows.Survey:
    """The rows that break the rule, per column (features not finite as float32, labels not 0 or 1)."""
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(np.asarray(x).astype(np.float32))  # beyond float32's range is infinite
        labels = np.asarray(y, np.float64)
    bad = {name: int((~finite[:, j]).sum()) for j, name in enumerate(columns.features)}
    bad[columns.label] = int((~np.isin(labels, (0.0, 1.0))).sum())
    return rows.Survey(len(x), bad)


def read(path: Path, columns: Columns) -> NumpyEngine:
    """The engine over ``columns`` of ``path``: a CSV file, a Parquet file, or a directory of Parquet files."""
    table = _table(path)
    types = {name: str(t) for name, t in zip(table.schema.names, table.schema.types, strict=True)}
    numeric = [n for n in columns.required if n in types and _numeric(table.schema.field(n).type)]
    rows.check_columns(columns, types, numeric)
    x = np.column_stack([_float64(table.column(f)) for f in columns.features])
    times = None
    if columns.event_time and columns.event_time in types and _numeric(table.schema.field(columns.event_time).type):
        times = _float64(table.column(columns.event_time))
    return NumpyEngine(x, _float64(table.column(columns.label)), columns, times)  # checked, then float32 and int8


def _table(path: Path) -> Any:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if not path.exists():
        raise TableRefusedError(f"{path} does not exist")
    if (path / "_delta_log").is_dir():
        raise TableRefusedError(
            f"{path} is a Delta table: read it with --engine spark (the NumPy engine reads CSV and plain Parquet only)"
        )
    try:
        if path.is_file() and path.suffix.lower() == ".csv":
            return pacsv.read_csv(path)
        return pq.read_table(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError, ArrowIOError an OSError
        raise TableRefusedError(f"cannot read {path} as CSV or Parquet: {str(exc).splitlines()[0]}") from None


def _numeric(arrow_type: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type))


def _float64(column: Any) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), np.float64)
