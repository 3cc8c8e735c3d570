"""The training window: the newest labelled rows of a dataset version, as one float32 matrix, and the
time-ordered layout every figure is measured on.

Memory: each curated part is read from Arrow straight into its rows of one preallocated float32
matrix (no DataFrame, no concatenation), and time order is restored column by column, so the peak
is the matrix plus one part and one column, not three copies of the data. The window is the newest
files of the version (by ingestion), up to ``TRAIN_WINDOW_ROWS`` rows and ``TRAIN_WINDOW_DAYS`` days,
so a dataset that grows for a year does not grow the run.

Time order: Kaggle's ``Time`` counts seconds from the first transaction *of its file*, so rows are
ordered by the file's ingestion first and ``Time`` within it.

Layout (``layout``): the newest ``TEST_FRACTION`` of the window is the test part; the rest (``dev``)
holds ``FOLDS`` rolling-origin folds, each trained on every dev row before its validation block.
Choices (configuration, boosting rounds, threshold) are made on the folds; the backtest model is
fitted on all of dev and measured on test; the published model is refitted on the whole window.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.domain.contract import DatasetContract
from shared.domain.errors import TrainingError
from shared.etl.manifest import files_of_version, read_manifest

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore

log = logging.getLogger(__name__)

TEST_FRACTION = 0.2
FOLDS = 3
FIRST_TRAIN_SHARE = 0.4  # of dev: the first fold trains on this much, each later fold on one block more


@dataclass(frozen=True)
class Window:
    """Rows in time order: features ``x`` (float32, C-contiguous), labels ``y``, ``time`` and ``part`` (the index
    in ``files`` of each row's curated file)."""

    dataset_version: str
    files: list[str]
    left_out: int  # files of the version older than the window
    x: np.ndarray
    y: np.ndarray
    time: np.ndarray
    part: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.y.size)


@dataclass(frozen=True)
class Fold:
    train_stop: int
    valid_stop: int  # validation rows are [train_stop, valid_stop)


@dataclass(frozen=True)
class Layout:
    """Row ranges of the window: folds inside dev, then the test part, newest last."""

    dev_stop: int  # dev is [0, dev_stop), test is [dev_stop, rows)
    rows: int
    folds: tuple[Fold, ...]

    def describe(self, window: Window) -> dict[str, Any]:
        """Boundaries for the manifest and reports: (first time, last time, rows) of each part."""

        def span(start: int, stop: int) -> list[float | int]:
            return [float(window.time[start]), float(window.time[stop - 1]), stop - start]

        return {
            "order": "ingestion, then Time within a file",
            "test_fraction": TEST_FRACTION,
            "dev": span(0, self.dev_stop),
            "folds": [{"train": span(0, f.train_stop), "valid": span(f.train_stop, f.valid_stop)} for f in self.folds],
            "test": span(self.dev_stop, self.rows),
            "window_rows": self.rows,
        }


def layout(window: Window, *, folds: int = FOLDS) -> Layout:
    """Split the window by time; refuse (with the reason) a part that lacks one class."""
    n = window.rows
    dev_stop = int(n * (1.0 - TEST_FRACTION))
    cuts = [int(dev_stop * (FIRST_TRAIN_SHARE + (1.0 - FIRST_TRAIN_SHARE) * k / folds)) for k in range(folds + 1)]
    result = Layout(dev_stop, n, tuple(Fold(cuts[k], cuts[k + 1]) for k in range(folds)))
    y = window.y
    parts = {"test": y[dev_stop:], "first fold's training": y[: cuts[0]]}
    parts.update({f"fold {k + 1}'s validation": y[f.train_stop : f.valid_stop] for k, f in enumerate(result.folds)})
    for name, labels in parts.items():
        if labels.size == 0 or labels.min() == labels.max():
            raise TrainingError(
                f"the {name} part has only one class ({labels.size} rows, {int(labels.sum())} frauds in a window of "
                f"{n}); more labelled data is needed to train"
            )
    return result


def _window_files(
    store: BlobStore, dataset: str, files: list[str], max_rows: int | None, max_days: float | None
) -> tuple[list[str], list[int]]:
    """The newest files of ``files`` (by ingestion) within the limits, oldest first, with their row counts."""
    manifest, _ = read_manifest(store, dataset)
    entries = {str(f["path"]): f for f in manifest["files"]}
    ordered = sorted(files, key=lambda p: (entries[p]["ingested_at"], p) if p in entries else ("", p))
    newest = datetime.fromisoformat(entries[ordered[-1]]["ingested_at"]) if ordered[-1] in entries else None
    chosen: list[str] = []
    total = 0
    for path in reversed(ordered):
        entry = entries.get(path)
        too_old = (
            entry and newest and datetime.fromisoformat(entry["ingested_at"]) < newest - timedelta(days=max_days or 0)
        )
        if max_days is not None and chosen and too_old:
            break
        if max_rows is not None and chosen and total >= max_rows:
            break
        chosen.append(path)
        total += int(entry["rows"]) if entry else 0
    chosen.reverse()
    return chosen, [int(entries[p]["rows"]) if p in entries else -1 for p in chosen]


def load_window(
    store: BlobStore,
    contract: DatasetContract,
    version: str | None = None,
    *,
    max_rows: int | None = None,
    max_days: float | None = None,
    erased: frozenset[str] = frozenset(),
) -> Window:
    """The newest labelled rows of a version (latest by default), in time order, without the rows of the
    ``erased`` customers (pseudonyms): an erasure that raced an ETL cannot bring them back into a model."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from shared.domain.contract import CUSTOMER_ID

    label, time_col = contract.label, contract.time_column
    if label is None or time_col is None:
        raise TrainingError(f"dataset {contract.name} has no label or time column to train on")
    version, all_files = files_of_version(store, contract.name, version)
    files, counts = _window_files(store, contract.name, all_files, max_rows, max_days)
    features = contract.feature_names
    capacity = sum(c for c in counts if c > 0) if all(c >= 0 for c in counts) else 0
    x = np.empty((capacity, len(features)), dtype=np.float32)
    y = np.empty(capacity, dtype=np.int8)
    t = np.empty(capacity, dtype=np.float64)
    part = np.empty(capacity, dtype=np.int32)
    at = 0
    for index, path in enumerate(files):
        source = pq.ParquetFile(io.BytesIO(store.get_bytes("curated", path)[0]))
        customers = [CUSTOMER_ID] if erased and CUSTOMER_ID in source.schema_arrow.names else []
        table = source.read(columns=[*features, label.name, time_col.name, *customers])
        if customers:
            gone = pc.fill_null(pc.is_in(table.column(CUSTOMER_ID), value_set=pa.array(sorted(erased))), False)
            table = table.filter(pc.invert(gone))
        n = table.num_rows
        if at + n > x.shape[0]:  # the manifest's count is off (or missing): grow, once per such part
            grow = at + n - x.shape[0]
            x = np.concatenate([x, np.empty((grow, len(features)), dtype=np.float32)])
            y, t, part = (np.concatenate([a, np.empty(grow, dtype=a.dtype)]) for a in (y, t, part))
        for j, name in enumerate(features):
            x[at : at + n, j] = table.column(name).to_numpy()
        y[at : at + n] = table.column(label.name).to_numpy()
        t[at : at + n] = table.column(time_col.name).to_numpy()
        part[at : at + n] = index
        at += n
        del table
    x, y, t, part = x[:at], y[:at], t[:at], part[:at]
    order = np.lexsort((t, part))
    if np.any(order != np.arange(at)):
        column = np.empty(at, dtype=np.float32)
        for j in range(x.shape[1]):  # reorder in place, one column at a time
            np.take(x[:, j], order, out=column)
            x[:, j] = column
        y, t, part = y[order], t[order], part[order]
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    log.info(
        "training window: %d rows from %d files of %s (%d older files left out)",
        at,
        len(files),
        version,
        len(all_files) - len(files),
    )
    return Window(version, files, len(all_files) - len(files), x, y, t, part)
