"""The record of a served prediction: what was scored, by which model, with what answer.

One schema (``prediction_table``) for the HTTP recorder (``shared.scoring.recorder``) and the stream's
``scored/`` archive, so the monitoring run reads both the same way and joins delayed labels to either:
transaction id, customer id as given, model version, probability, decision, threshold, request id,
latency, time, source, and the features themselves (labelled production transactions become training
data).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

TIME_COLUMN = "event_time"  # the transaction's own time as sent (the contract's event time), in seconds
LEGACY_TIME_COLUMN = "Time"  # its name in records written before contracts were files (read back as event_time)
# What every record holds besides the features (the HTTP record and the stream's scored/ archive alike)
RECORD_COLUMNS = (
    "transaction_id",
    "customer_id",
    "model_version",
    "fraud_probability",
    "is_fraud",
    "threshold",
    "request_id",
    "latency_ms",
    "scored_at",
    "source",
    TIME_COLUMN,
)


@dataclass(frozen=True)
class Scored:
    """One answered batch, as the scoring path has it (no copies made on the hot path)."""

    x: np.ndarray
    probabilities: np.ndarray
    transaction_ids: Sequence[str | None]
    customer_ids: Sequence[str | None] | None
    times: np.ndarray | None
    model_version: str
    threshold: float
    request_id: str
    latency_ms: float
    source: str = "http"
    scored_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    categories: Mapping[str, Sequence[Any] | np.ndarray] | None = None  # categorical features as sent: recorded as text
    behaviour: Sequence[str] | None = None  # per row: ok, late or unavailable (datasets with behavioural features)
    # what behaviour is computed from that the record holds nowhere else (``shared.domain.history.recorded_columns``)
    history_texts: Mapping[str, Sequence[str | None]] | None = None  # entity keys (pseudonyms), distinct values
    history_numbers: Mapping[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(self.probabilities.shape[0])


def prediction_table(batch: Scored, feature_names: Sequence[str], extra: dict[str, Any] | None = None) -> pa.Table:
    """The recorded form of one batch (the stream adds its own columns through ``extra``)."""
    import pyarrow as pa

    columns = _columns([batch], feature_names)
    for name, values in (extra or {}).items():
        columns[name] = values
    return pa.table(columns)


def records_table(batches: Sequence[Scored], feature_names: Sequence[str]) -> pa.Table:
    """Many answered batches as one table, built column by column: one Arrow array per column, not per batch
    (a flush of 2,000 single-transaction requests costs milliseconds, not the GIL for half a second)."""
    import pyarrow as pa

    return pa.table(_columns(batches, feature_names))


def _columns(batches: Sequence[Scored], feature_names: Sequence[str]) -> dict[str, Any]:
    """The columns of ``batches``: C-level loops only (``chain``, ``concatenate``, ``pa.array`` over lists), since
    the recorder builds them on a thread that shares the GIL with the event loop serving requests."""
    import pyarrow as pa

    sizes = np.fromiter(map(len, batches), dtype=np.int64, count=len(batches))
    single = bool((sizes == 1).all())  # the common case, one transaction a request: no repeat needed

    def each_row(values: list[Any], dtype: Any = None) -> Any:
        return values if single else np.repeat(np.asarray(values, dtype=dtype), sizes)

    probabilities = np.concatenate([b.probabilities for b in batches]).astype(np.float64, copy=False)
    thresholds = np.repeat(np.fromiter((b.threshold for b in batches), np.float64, len(batches)), sizes)
    with_times = [b for b in batches if b.times is not None]
    if not with_times:
        times = np.full(len(probabilities), np.nan)
    else:
        times = np.concatenate(
            [np.asarray(b.times, np.float64) if b.times is not None else np.full(len(b), np.nan) for b in batches]
        )
    x = np.concatenate([b.x for b in batches]) if len(batches) > 1 else batches[0].x
    columns: dict[str, Any] = {
        "transaction_id": pa.array(list(chain.from_iterable(b.transaction_ids for b in batches)), pa.string()),
        "customer_id": pa.array(
            list(
                chain.from_iterable(b.customer_ids if b.customer_ids is not None else [None] * len(b) for b in batches)
            ),
            pa.string(),
        ),
        "model_version": pa.array(each_row([b.model_version for b in batches], object), pa.string()),
        "fraud_probability": pa.array(probabilities, pa.float64()),
        "is_fraud": pa.array(probabilities >= thresholds, pa.bool_()),
        "threshold": pa.array(thresholds, pa.float64()),
        "request_id": pa.array(each_row([b.request_id for b in batches], object), pa.string()),
        "latency_ms": pa.array(each_row([b.latency_ms for b in batches], np.float64), pa.float64()),
        "scored_at": pa.array(each_row([b.scored_at for b in batches], object), pa.timestamp("us", tz="UTC")),
        "source": pa.array(each_row([b.source for b in batches], object), pa.string()),
        TIME_COLUMN: pa.array(times, pa.float64()),
    }
    if any(b.behaviour is not None for b in batches):  # what the behavioural features of each row were
        statuses = chain.from_iterable(b.behaviour if b.behaviour is not None else [None] * len(b) for b in batches)
        columns["behaviour"] = pa.array(list(statuses), pa.string())
    for name in dict.fromkeys(n for b in batches for n in (b.history_texts or {})):  # what behaviour reads
        held = (
            b.history_texts[name] if b.history_texts and name in b.history_texts else [None] * len(b) for b in batches
        )
        columns[name] = pa.array(list(chain.from_iterable(held)), pa.string())
    for name in dict.fromkeys(n for b in batches for n in (b.history_numbers or {})):
        numbers = [
            np.asarray(b.history_numbers[name], np.float64)
            if b.history_numbers and name in b.history_numbers
            else np.full(len(b), np.nan)
            for b in batches
        ]
        columns[name] = pa.array(np.concatenate(numbers), pa.float64())
    texts = {name for b in batches for name in (b.categories or {})}
    for j, name in enumerate(feature_names):
        if name in texts:  # a category as sent (its code belongs to one model; the text to the data)
            values = chain.from_iterable(
                b.categories[name] if b.categories and name in b.categories else [None] * len(b) for b in batches
            )
            columns[name] = pa.array(list(values), pa.string())
        else:
            columns[name] = pa.array(x[:, j], pa.float32())
    return columns


def parquet_bytes(table: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd")
    return out.getvalue()
