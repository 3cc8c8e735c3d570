"""The training window: the newest labelled rows of a dataset version, as one float32 matrix, and the
time-ordered layout every figure is measured on.

Memory: each curated part is read from Arrow straight into its rows of one preallocated float32
matrix (no DataFrame, no concatenation), and time order is restored column by column, so the peak
is the matrix plus one part and one column, not three copies of the data. The window is the newest
files of the version (by ingestion), up to ``TRAIN_WINDOW_ROWS`` rows and ``TRAIN_WINDOW_DAYS`` days,
so a dataset that grows for a year does not grow the run.

Time order: rows are ordered by their file's ingestion first, then by the contract's event time within
it (a number of seconds, or a timestamp read as seconds since 1970 UTC; Kaggle's creditcard ``Time``
counts seconds from its file's first row), or by their position in the file when the contract declares
no event time.

Features are encoded as ``shared.domain.encoding`` says: numbers and booleans as float32 (missing is
NaN), categories as the codes of a vocabulary learnt here, from the window's own rows.

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

from shared.domain.behaviour import step
from shared.domain.contract import DatasetContract
from shared.domain.encoding import Encoding, Vocabulary, learn_vocabulary
from shared.domain.errors import TrainingError
from shared.domain.history import history_columns
from shared.domain.layout import CURATED
from shared.etl.manifest import files_of_version, read_manifest
from training.inputs import Features

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shared.adapters.storage import BlobStore
    from shared.domain.contract import Column

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
    features: Features | None = None  # the input columns (categorical positions, the amount); None: plain numbers
    encoding: Encoding | None = None  # the categorical features' vocabularies the codes in ``x`` follow

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

    def parts(self) -> dict[str, tuple[int, int]]:
        """The row ranges that must each hold both classes, by the name a refusal gives them."""
        ranges = {"test": (self.dev_stop, self.rows), "first fold's training": (0, self.folds[0].train_stop)}
        ranges.update({f"fold {k + 1}'s validation": (f.train_stop, f.valid_stop) for k, f in enumerate(self.folds)})
        return ranges

    def boundaries(self) -> list[int]:
        """The rows whose times ``describe`` reads."""
        return sorted({r for start, stop in self.parts().values() for r in (start, stop - 1)} | {0, self.dev_stop - 1})

    def describe(self, time: Any) -> dict[str, Any]:
        """Boundaries for the manifest and reports: (first time, last time, rows) of each part; ``time[row]`` is a
        row's time (the window's ``time`` array, or a mapping of the ``boundaries`` rows)."""

        def span(start: int, stop: int) -> list[float | int]:
            return [float(time[start]), float(time[stop - 1]), stop - start]

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
    plan = cut(window.rows, folds=folds)
    y = window.y
    check_classes({name: (int(y[a:b].size), int(y[a:b].sum())) for name, (a, b) in plan.parts().items()}, plan.rows)
    return plan


def cut(rows: int, *, folds: int = FOLDS) -> Layout:
    """The row ranges of a window of ``rows`` rows in time order (no check of the labels)."""
    dev_stop = int(rows * (1.0 - TEST_FRACTION))
    cuts = [int(dev_stop * (FIRST_TRAIN_SHARE + (1.0 - FIRST_TRAIN_SHARE) * k / folds)) for k in range(folds + 1)]
    return Layout(dev_stop, rows, tuple(Fold(cuts[k], cuts[k + 1]) for k in range(folds)))


def check_classes(counts: dict[str, tuple[int, int]], rows: int) -> None:
    """``TrainingError`` naming the first part (``name: (rows, frauds)``) that lacks one class."""
    for name, (n, frauds) in counts.items():
        if n == 0 or frauds in (0, n):
            raise TrainingError(
                f"the {name} part has only one class ({n} rows, {frauds} frauds in a window of "
                f"{rows}); more labelled data is needed to train"
            )


def _window_files(
    store: BlobStore, dataset: str, files: list[str], max_rows: int | None, max_days: float | None
) -> tuple[list[str], list[int]]:
    """The newest files of ``files`` (by ingestion) within the limits, oldest first, with their row counts."""
    manifest, _ = read_manifest(store, dataset)
    entries = {f.path: f for f in manifest.files}
    ordered = sorted(files, key=lambda p: (entries[p].ingested_at, p) if p in entries else ("", p))
    newest = datetime.fromisoformat(entries[ordered[-1]].ingested_at) if ordered[-1] in entries else None
    chosen: list[str] = []
    total = 0
    for path in reversed(ordered):
        entry = entries.get(path)
        too_old = (
            entry and newest and datetime.fromisoformat(entry.ingested_at) < newest - timedelta(days=max_days or 0)
        )
        if max_days is not None and chosen and too_old:
            break
        if max_rows is not None and chosen and total >= max_rows:
            break
        chosen.append(path)
        total += entry.rows if entry else 0
    chosen.reverse()
    return chosen, [entries[p].rows if p in entries else -1 for p in chosen]


def _label_and_time(contract: DatasetContract) -> tuple[Column, Column | None]:
    if contract.label is None:
        raise TrainingError(f"dataset {contract.name} has no label to train on")
    return contract.label, contract.time_column


def plan_window(
    store: BlobStore,
    contract: DatasetContract,
    version: str | None = None,
    *,
    max_rows: int | None = None,
    max_days: float | None = None,
) -> tuple[str, list[str], list[str], list[int]]:
    """Which files a window reads, from the manifest alone: (version, the version's files, the window's files
    oldest first, their row counts as the manifest has them, -1 where it has none)."""
    _label_and_time(contract)
    version, all_files = files_of_version(store, contract.name, version)
    files, counts = _window_files(store, contract.name, all_files, max_rows, max_days)
    return version, all_files, files, counts


def read_part(
    source: pq.ParquetFile,
    contract: DatasetContract,
    erased: frozenset[str],
    *,
    features: bool = True,
    history: bool = False,
) -> pa.Table:
    """One curated part's features (with ``features``), label and time, and with ``history`` the columns its
    behavioural features are computed from (``shared.domain.history``), without the rows of the ``erased``
    customers (pseudonyms): the one reading of a part, by this process and by a Dask worker alike."""
    import pyarrow as pa
    import pyarrow.compute as pc

    label, time_col = _label_and_time(contract)
    customer = contract.customer
    customers = [customer] if erased and customer and customer in source.schema_arrow.names else []
    times = [time_col.name] if time_col is not None else []
    wanted = [*(contract.feature_names if features else []), label.name, *times]
    if history:
        wanted += [c for c in history_columns(contract) if c not in wanted]
    table = source.read(columns=[*wanted, *(c for c in customers if c not in wanted)])
    if customers:
        gone = pc.fill_null(pc.is_in(table.column(customers[0]), value_set=pa.array(sorted(erased))), False)
        table = table.filter(pc.invert(gone))
        if customers[0] not in wanted:
            table = table.drop_columns(customers)
    return table


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
    import pyarrow.parquet as pq

    label, time_col = _label_and_time(contract)
    version, all_files, files, counts = plan_window(store, contract, version, max_rows=max_rows, max_days=max_days)
    features = Features.of(contract)
    codes = _Codes(contract)
    capacity = sum(c for c in counts if c > 0) if all(c >= 0 for c in counts) else 0
    x = np.empty((capacity, len(features)), dtype=np.float32)
    y = np.empty(capacity, dtype=np.int8)
    t = np.empty(capacity, dtype=np.float64)
    part = np.empty(capacity, dtype=np.int32)
    at = 0
    behaviour = not contract.behaviour.empty
    own = len(contract.feature_names)  # the transaction's own columns; the behavioural ones follow
    pasts: list[pa.Table] = []
    for index, path in enumerate(files):
        source = pq.ParquetFile(io.BytesIO(store.get_bytes(CURATED, path)[0]))
        table = read_part(source, contract, erased, history=behaviour)
        n = table.num_rows
        if at + n > x.shape[0]:  # the manifest's count is off (or missing): grow, once per such part
            grow = at + n - x.shape[0]
            x = np.concatenate([x, np.empty((grow, len(features)), dtype=np.float32)])
            y, t, part = (np.concatenate([a, np.empty(grow, dtype=a.dtype)]) for a in (y, t, part))
        for j, name in enumerate(features[:own]):
            x[at : at + n, j] = (
                codes.read(name, table.column(name)) if j in features.categorical else floats(table.column(name))
            )
        if behaviour:
            pasts.append(table.select(history_columns(contract)))
        y[at : at + n] = table.column(label.name).to_numpy()
        t[at : at + n] = seconds(table.column(time_col.name)) if time_col is not None else np.arange(n)
        part[at : at + n] = index
        at += n
        del table
    x, y, t, part = x[:at], y[:at], t[:at], part[:at]
    if behaviour:
        x[:, own:] = _behaviour(store, contract, erased, pasts, older_files(store, contract.name, all_files, files))
        del pasts
    encoding = codes.settle(x, features)
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
    return Window(version, files, len(all_files) - len(files), x, y, t, part, features, encoding)


def older_files(store: BlobStore, dataset: str, all_files: list[str], files: list[str]) -> list[str]:
    """The version's files older than the window's (by ingestion), newest first: where its history begins."""
    manifest, _ = read_manifest(store, dataset)
    ingested = {f.path: f.ingested_at for f in manifest.files}
    first = (ingested.get(files[0], ""), files[0]) if files else ("", "")
    return sorted(
        (p for p in all_files if p not in files and (ingested.get(p, ""), p) < first),
        reverse=True,
        key=lambda p: (ingested.get(p, ""), p),
    )


def behaviour_by_part(
    store: BlobStore, contract: DatasetContract, erased: frozenset[str], files: list[str], all_files: list[str]
) -> list[np.ndarray]:
    """The window's behavioural features split by part (each in its file's row order): the Dask path's, read on
    one instance from the history columns alone."""
    import pyarrow.parquet as pq

    tables = [
        read_part(
            pq.ParquetFile(io.BytesIO(store.get_bytes(CURATED, f)[0])), contract, erased, features=False, history=True
        ).select(history_columns(contract))
        for f in files
    ]
    x = _behaviour(store, contract, erased, tables, older_files(store, contract.name, all_files, files))
    cuts = np.cumsum([t.num_rows for t in tables])[:-1]
    return list(np.split(x, cuts))


def _behaviour(
    store: BlobStore, contract: DatasetContract, erased: frozenset[str], window: list[pa.Table], older: list[str]
) -> np.ndarray:
    """The window's behavioural features (float32, its rows' order), point in time, from its own rows and, before
    them, the older files' rows within the longest window of its first transaction (read for their history
    columns only, newest file first, until one reaches back far enough)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shared.domain.history import history_of, read_columns
    from shared.domain.windows import point_in_time

    label, time_col = _label_and_time(contract)
    assert time_col is not None  # a behaviour section needs roles.event_time (the contract refuses otherwise)
    rows = sum(t.num_rows for t in window)
    earliest = min((float(np.nanmin(seconds(t.column(time_col.name)))) for t in window if t.num_rows), default=0.0)
    longest = contract.behaviour.longest
    reach = earliest - max(contract.behaviour.span, longest + (step(longest) if longest else 0.0))
    before: list[pa.Table] = []
    for path in older:
        source = pq.ParquetFile(io.BytesIO(store.get_bytes(CURATED, path)[0]))
        table = read_part(source, contract, erased, features=False, history=True).select(
            window[0].column_names if window else []
        )
        before.append(table)
        if table.num_rows and float(np.nanmin(seconds(table.column(time_col.name)))) <= reach:
            break
    parts = [*reversed(before), *window]
    if not parts:
        return np.empty((0, len(contract.behaviour.names())), dtype=np.float32)
    table = pa.concat_tables(parts)
    keys, numbers, values = read_columns(contract.behaviour)
    columns = {name: table.column(name).to_pylist() for name in keys + values}
    columns |= {name: floats(table.column(name)) for name in numbers}
    tid = contract.transaction_id
    ids = table.column(tid).to_pylist() if tid else [str(i) for i in range(table.num_rows)]
    history = history_of(contract, seconds(table.column(time_col.name)), ids, columns, floats(table.column(label.name)))
    got = point_in_time(history, contract.behaviour, contract.time_zone)
    skip = sum(t.num_rows for t in before)
    log.info("behavioural features: %d window rows, with %d earlier rows of history", rows, skip)
    return np.column_stack([got[name][skip:] for name in contract.behaviour.names()]).astype(np.float32)


def floats(column: Any) -> np.ndarray:
    """A numeric or boolean column as float64, missing values as NaN (``shared.etl.arrays``, loaded here)."""
    from shared.etl.arrays import floats as arrow_floats

    return arrow_floats(column)


def seconds(column: pa.ChunkedArray) -> np.ndarray:
    """An event time as float64 seconds (``shared.etl.arrays.seconds``, loaded here)."""
    from shared.etl.arrays import seconds as arrow_seconds

    return arrow_seconds(column)


def codes(vocabulary: Vocabulary, column: pa.ChunkedArray) -> np.ndarray:
    """A categorical column as its codes in ``vocabulary`` (float32; NaN when missing or not in it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = column.combine_chunks()
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    per_value = vocabulary.codes(arr.dictionary.to_pylist())
    indices = floats(arr.indices)
    present = ~np.isnan(indices)
    out = np.full(indices.size, np.nan, dtype=np.float32)
    out[present] = per_value[indices[present].astype(np.int64)]
    return out


class _Codes:
    """The categorical columns of a window: each value's first-seen id while parts are read, then the codes of
    the vocabulary the whole window gives (``settle``)."""

    def __init__(self, contract: DatasetContract) -> None:
        self.contract = contract
        self.seen: dict[str, dict[str, int]] = {}
        self.counts: dict[str, np.ndarray] = {}

    def read(self, name: str, column: pa.ChunkedArray) -> np.ndarray:
        """The part's values as first-seen ids (float32, NaN when missing), counted."""
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = column.combine_chunks()
        if not pa.types.is_dictionary(arr.type):
            arr = pc.dictionary_encode(arr)
        seen = self.seen.setdefault(name, {})
        ids = np.array([seen.setdefault(v, len(seen)) for v in arr.dictionary.to_pylist()], dtype=np.int64)
        indices = floats(arr.indices)
        present = ~np.isnan(indices)
        out = np.full(indices.size, np.nan, dtype=np.float32)
        out[present] = ids[indices[present].astype(np.int64)]
        counts = np.bincount(out[present].astype(np.int64), minlength=len(seen))
        before = self.counts.get(name, np.zeros(0, dtype=np.int64))
        self.counts[name] = np.pad(before, (0, counts.size - before.size)) + counts
        return out

    def settle(self, x: np.ndarray, features: Features) -> Encoding:
        """Learn each vocabulary and turn the ids of ``x`` into its codes, in place."""
        vocabularies = {}
        for j in features.categorical:
            name = features[j]
            seen = self.seen.get(name, {})
            values = list(seen)
            vocabulary = learn_vocabulary(self.contract, name, values, self.counts.get(name, np.zeros(0)))
            remap = vocabulary.codes(values) if values else np.zeros(0, dtype=np.float32)
            column = x[:, j]
            present = ~np.isnan(column)
            column[present] = remap[column[present].astype(np.int64)]
            vocabularies[name] = vocabulary
        return Encoding(tuple(features), vocabularies)
