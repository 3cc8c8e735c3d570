"""What was served and what was learnt later, read back from Blob: one table each, nothing counted twice.

Served predictions come from two places with one schema (``shared.scoring.records``): the HTTP
records in ``predictions/date=YYYY-MM-DD/`` and the stream's archive in
``scored/date=YYYY-MM-DD/hour=HH/``. A transaction scored twice (a client's retry, or both paths)
counts once: its first answer, the one that was acted on. Labels come from ``curated/labels/``; a
transaction labelled twice keeps its latest verdict (an investigator overruling a chargeback).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np

from shared.domain import layout
from shared.domain.errors import BlobNotFoundError
from shared.scoring.records import LEGACY_TIME_COLUMN, RECORD_COLUMNS, TIME_COLUMN

if TYPE_CHECKING:
    import pyarrow as pa

    from shared.adapters.storage import BlobStore

log = logging.getLogger(__name__)

PREDICTIONS = layout.PREDICTIONS  # what the HTTP routes served
STREAM_ARCHIVE = layout.SCORED  # what the stream scored
LABELS_PREFIX = layout.LABELS_PREFIX
LABEL_COLUMNS = ("transaction_id", "label", "labelled_at", "source")


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(d) for d in range((end - start).days + 1)]


def served_names(store: BlobStore, day: date) -> list[tuple[str, str]]:
    """Every record file of ``day``: (container, name), HTTP records then the stream's archive."""
    http, stream = layout.predictions_day(f"{day:%Y-%m-%d}"), layout.stream_day(f"{day:%Y-%m-%d}")
    return [(PREDICTIONS, n) for n in store.list_names(PREDICTIONS, http) if n.endswith(".parquet")] + [
        (STREAM_ARCHIVE, n) for n in store.list_names(STREAM_ARCHIVE, stream) if n.endswith(".parquet")
    ]


def _read(store: BlobStore, container: str, name: str, columns: Sequence[str] | None) -> pa.Table | None:
    import pyarrow.parquet as pq

    try:
        data, _ = store.get_bytes(container, name)
    except BlobNotFoundError:  # expired or erased between the listing and the read
        return None
    parquet = pq.ParquetFile(io.BytesIO(data))
    if columns is None:
        return parquet.read()
    present = set(parquet.schema_arrow.names)
    legacy = TIME_COLUMN in columns and TIME_COLUMN not in present and LEGACY_TIME_COLUMN in present
    wanted = [LEGACY_TIME_COLUMN if legacy and c == TIME_COLUMN else c for c in columns if c in present or legacy]
    table = parquet.read(columns=[c for c in wanted if c in present])  # only these columns are decoded
    if legacy:  # a record written before the column was renamed: the same values under today's name
        table = table.rename_columns([TIME_COLUMN if n == LEGACY_TIME_COLUMN else n for n in table.column_names])
    return table


def load_served(
    store: BlobStore, start: date, end: date, *, features: Sequence[str] = (), first_only: bool = True
) -> pa.Table:
    """Served predictions scored from ``start`` to ``end`` (UTC days, inclusive), each transaction once."""
    import pyarrow as pa

    columns = [*RECORD_COLUMNS, *features]
    tables = [t for day in days(start, end) for c, n in served_names(store, day) if (t := _read(store, c, n, columns))]
    if not tables:
        return empty_served(features)
    table = pa.concat_tables(tables, promote_options="default")
    return first_answer(table) if first_only else table


def empty_served(features: Sequence[str] = ()) -> pa.Table:
    from shared.scoring.records import Scored, prediction_table

    empty = Scored(
        x=np.zeros((0, len(features)), dtype=np.float32),
        probabilities=np.zeros(0),
        transaction_ids=[],
        customer_ids=None,
        times=None,
        model_version="",
        threshold=0.0,
        request_id="",
        latency_ms=0.0,
    )
    table = prediction_table(empty, list(features))
    return table.select([*RECORD_COLUMNS, *features]) if features else table.select(list(RECORD_COLUMNS))


def first_answer(table: pa.Table) -> pa.Table:
    """One row per transaction id: the earliest scored (rows without an id are kept: they cannot be joined).
    Grouped in Arrow, never as Python objects (a million ids as Python strings cost about 70 MB and a second)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return table
    order = pc.sort_indices(table, sort_keys=[("scored_at", "ascending")])
    table = table.take(order)
    rows = pa.table({"transaction_id": table.column("transaction_id"), "row": pa.array(np.arange(table.num_rows))})
    firsts = rows.group_by("transaction_id", use_threads=False).aggregate([("row", "min")])
    keep = np.zeros(table.num_rows, dtype=bool)
    keep[firsts.column("row_min").to_numpy()] = True
    keep |= pc.is_null(table.column("transaction_id")).to_numpy(zero_copy_only=False)
    return table.filter(pa.array(keep))


def load_labels(store: BlobStore) -> pa.Table:
    """Every curated label, the latest verdict per transaction."""
    import pyarrow as pa
    import pyarrow.compute as pc

    tables = [
        t
        for n in store.list_names(layout.CURATED, LABELS_PREFIX)
        if n.endswith(".parquet") and (t := _read(store, layout.CURATED, n, LABEL_COLUMNS))
    ]
    if not tables:
        return pa.table(
            {
                "transaction_id": pa.array([], pa.string()),
                "label": pa.array([], pa.int8()),
                "labelled_at": pa.array([], pa.timestamp("us", tz="UTC")),
                "source": pa.array([], pa.string()),
            }
        )
    table = pa.concat_tables(tables, promote_options="default")
    table = table.take(pc.sort_indices(table, sort_keys=[("labelled_at", "descending")]))
    ids = table.column("transaction_id").to_pylist()
    _, first = np.unique(np.array(ids, dtype=object), return_index=True)
    return table.take(pa.array(np.sort(first)))


def join_labels(served: pa.Table, labels: pa.Table) -> pa.Table:
    """The served predictions that have a label, with ``label``, ``labelled_at`` and ``source`` added."""
    return served.join(
        labels.rename_columns({"source": "label_source"}).select(
            ["transaction_id", "label", "labelled_at", "label_source"]
        ),
        keys="transaction_id",
        join_type="inner",
    )
