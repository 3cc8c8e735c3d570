"""Every served prediction, recorded: what was scored, by which model, with what answer.

One schema (``prediction_table``) for the HTTP recorder and the stream's ``scored/`` archive, so
the monitoring run reads both the same way and joins delayed labels to either: transaction id,
customer id as given, model version, probability, decision, threshold, request id, latency, time,
source, and the features themselves (labelled production transactions become training data).

The HTTP path hands each answered batch to a :class:`PredictionRecorder`: ``record`` only appends
the batch's arrays to a bounded buffer (microseconds, no I/O, never blocks the request); a
background thread builds the Parquet and writes it to ``predictions/date=YYYY-MM-DD/`` every
``flush_seconds`` or ``flush_rows``, whichever comes first. Delivery is at least once: a failed
write keeps its rows at the head of the buffer and is retried under the same blob name (a write
that landed but whose answer was lost is overwritten with the same bytes, never doubled), and
``close`` (at process exit and at the server's shutdown) writes what is left. A full buffer drops
the new batch and counts it (``fraudops.predictions.dropped``, the recorder's ``stats``, and a
warning at most once a minute), never silently.
"""

from __future__ import annotations

import atexit
import io
import json
import logging
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.domain.telemetry import instruments

if TYPE_CHECKING:
    import pyarrow as pa

    from shared.adapters.storage import BlobStore
    from shared.domain.settings import Settings

log = logging.getLogger(__name__)

CONTAINER = "predictions"
TIME_COLUMN = "Time"
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
    import pyarrow as pa

    sizes = np.fromiter((len(b) for b in batches), dtype=np.int64, count=len(batches))

    def each_row(values: list[Any], dtype: Any) -> np.ndarray:
        return np.repeat(np.asarray(values, dtype=dtype), sizes)

    probabilities = np.concatenate([np.asarray(b.probabilities, dtype=np.float64) for b in batches])
    thresholds = each_row([b.threshold for b in batches], np.float64)
    scored_at = each_row([b.scored_at.astimezone(UTC).replace(tzinfo=None) for b in batches], "datetime64[us]")
    times = np.concatenate(
        [np.asarray(b.times, dtype=np.float64) if b.times is not None else np.full(len(b), np.nan) for b in batches]
    )
    x = np.concatenate([b.x for b in batches]) if len(batches) > 1 else batches[0].x
    columns: dict[str, Any] = {
        "transaction_id": pa.array([t for b in batches for t in b.transaction_ids], pa.string()),
        "customer_id": pa.array(
            [c for b in batches for c in (b.customer_ids if b.customer_ids is not None else [None] * len(b))],
            pa.string(),
        ),
        "model_version": pa.array(each_row([b.model_version for b in batches], object), pa.string()),
        "fraud_probability": pa.array(probabilities, pa.float64()),
        "is_fraud": pa.array(probabilities >= thresholds, pa.bool_()),
        "threshold": pa.array(thresholds, pa.float64()),
        "request_id": pa.array(each_row([b.request_id for b in batches], object), pa.string()),
        "latency_ms": pa.array(each_row([b.latency_ms for b in batches], np.float64), pa.float64()),
        "scored_at": pa.array(scored_at, pa.timestamp("us", tz="UTC")),
        "source": pa.array(each_row([b.source for b in batches], object), pa.string()),
        TIME_COLUMN: pa.array(times, pa.float64()),
    }
    for j, name in enumerate(feature_names):
        columns[name] = pa.array(x[:, j], pa.float32())
    return columns


def parquet_bytes(table: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd")
    return out.getvalue()


REQUESTS_PREFIX = "_requests/"


class RequestTally:
    """HTTP answers counted by UTC day and status class (2xx, 4xx, 5xx): the monitoring run's error share.

    Counting is a dictionary increment under a lock; the recorder writes the counts with each flush to
    ``predictions/_requests/date=<day>/<instance>-<n>.json`` and gives them back if the write fails.
    """

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def add(self, status_class: str, day: str) -> None:
        with self._lock:
            self._counts[(day, status_class)] += 1

    def take(self) -> dict[str, dict[str, int]]:
        with self._lock:
            counts, self._counts = self._counts, Counter()
        by_day: dict[str, dict[str, int]] = {}
        for (day, status_class), n in counts.items():
            by_day.setdefault(day, {})[status_class] = n
        return by_day

    def give_back(self, by_day: dict[str, dict[str, int]]) -> None:
        with self._lock:
            for day, counts in by_day.items():
                for status_class, n in counts.items():
                    self._counts[(day, status_class)] += n


@dataclass(frozen=True)
class RecorderStats:
    """What the recorder has done since it started (``dropped`` is never reset)."""

    recorded: int
    dropped: int
    buffered: int
    writes: int
    failed_writes: int
    last_error: str | None


class PredictionRecorder:
    """Buffers answered batches and writes them to Blob from one background thread."""

    def __init__(
        self,
        store: BlobStore,
        feature_names: Sequence[str],
        *,
        max_buffered: int = 100_000,
        flush_rows: int = 5_000,
        flush_seconds: float = 5.0,
        retry_seconds: float = 1.0,
        instance: str | None = None,
    ) -> None:
        self.store = store
        self.feature_names = list(feature_names)
        self.max_buffered = max_buffered
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.retry_seconds = retry_seconds
        self.instance = instance or uuid.uuid4().hex[:12]
        self._pending: deque[Scored] = deque()
        self._buffered = 0
        self._cond = threading.Condition()
        self._writing = threading.Lock()  # one writer at a time: the thread, or flush/close from a caller
        self._thread: threading.Thread | None = None
        self._closed = False
        self._retrying: tuple[list[Scored], list[tuple[str, pa.Table]]] | None = None
        self._recorded = self._dropped = self._writes = self._failed = 0
        self._last_error: str | None = None
        self._last_drop_warning = 0.0
        self._sequence = 0
        self.requests = RequestTally()

    # the hot path -------------------------------------------------------------------------------
    def record(self, batch: Scored) -> bool:
        """Queue one answered batch; False (and counted) when the buffer is full or the recorder closed."""
        n = len(batch)
        with self._cond:
            if self._closed or self._buffered + n > self.max_buffered:
                self._dropped += n
                dropped_total, now = self._dropped, time.monotonic()
                warn = now - self._last_drop_warning > 60
                if warn:
                    self._last_drop_warning = now
            else:
                self._pending.append(batch)
                self._buffered += n
                if self._thread is None:
                    self._start()
                if self._buffered >= self.flush_rows:
                    self._cond.notify()
                dropped_total = -1
        if dropped_total < 0:
            instruments().record_buffered.add(n)
            return True
        instruments().record_dropped.add(n, {"reason": "closed" if self._closed else "buffer_full"})
        if warn:
            log.warning(
                "predictions are not being recorded: %s; %d dropped so far (storage slow or unreachable?)",
                "the recorder is closed" if self._closed else f"the buffer of {self.max_buffered} is full",
                dropped_total,
            )
        return False

    def count_request(self, status_class: str) -> None:
        """One HTTP answer of this status class (``2xx``, ``4xx``, ``5xx``), written with the next flush."""
        self.requests.add(status_class, datetime.now(UTC).strftime("%Y-%m-%d"))
        if self._thread is None:
            with self._cond:
                if self._thread is None and not self._closed:
                    self._start()

    # the background thread ---------------------------------------------------------------------
    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="prediction-recorder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._closed and self._buffered < self.flush_rows and self._retrying is None:
                    self._cond.wait(self.flush_seconds)
                closed = self._closed
            ok = self._flush_once()
            if closed:
                return
            if not ok:
                time.sleep(self.retry_seconds)

    def _take(self) -> tuple[list[Scored], list[tuple[str, pa.Table]]] | None:
        """The rows to write next: those of a failed attempt first (same names), else everything queued."""
        with self._cond:
            if self._retrying is not None:
                return self._retrying
            if not self._pending:
                return None
            batches = list(self._pending)
            self._pending.clear()
        return batches, self._name_tables(batches)

    def _name_tables(self, batches: list[Scored]) -> list[tuple[str, pa.Table]]:

        by_day: dict[str, list[Scored]] = {}
        for b in batches:
            by_day.setdefault(b.scored_at.astimezone(UTC).strftime("%Y-%m-%d"), []).append(b)
        named = []
        for day, of_day in sorted(by_day.items()):
            self._sequence += 1
            stamp = datetime.now(UTC).strftime("%H%M%S")
            name = f"date={day}/{batches[0].source}-{stamp}-{self.instance}-{self._sequence:06d}.parquet"
            named.append((name, records_table(of_day, self.feature_names)))
        return named

    def _flush_once(self) -> bool:
        """Write what is queued; True when nothing is left to retry."""
        with self._writing:
            written = self._write_taken()
            return self._write_requests() and written

    def _write_requests(self) -> bool:
        """The request counts since the last write, one small JSON per day; given back when a write fails."""
        pending = self.requests.take()
        for day, counts in sorted(pending.items()):
            self._sequence += 1
            name = f"{REQUESTS_PREFIX}date={day}/{self.instance}-{self._sequence:06d}.json"
            try:
                self.store.put_bytes(CONTAINER, name, json.dumps(counts).encode(), content_type="application/json")
            except Exception as exc:  # storage errors of every kind: the counts wait for the next flush
                self.requests.give_back({d: c for d, c in pending.items() if d >= day})
                log.warning("recording request counts to %s/%s failed (%s); retrying", CONTAINER, name, exc)
                return False
        return True

    def _write_taken(self) -> bool:
        taken = self._take()
        if taken is None:
            return True
        batches, named = taken
        for i, (name, table) in enumerate(named):
            try:
                self.store.put_bytes(
                    CONTAINER, name, parquet_bytes(table), content_type="application/vnd.apache.parquet"
                )
            except Exception as exc:  # storage errors of every kind: keep the rows, retry under the same name
                with self._cond:
                    self._retrying = (batches, named[i:])
                    self._failed += 1
                    self._last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.warning(
                    "recording %d predictions to %s/%s failed (%s); retrying", table.num_rows, CONTAINER, name, exc
                )
                return False
            rows = table.num_rows
            with self._cond:
                self._buffered -= rows
                self._recorded += rows
                self._writes += 1
            instruments().recorded.add(rows)
            instruments().record_buffered.add(-rows)
        with self._cond:
            self._retrying = None
        return True

    # control -----------------------------------------------------------------------------------
    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything queued now, from the caller's thread; True when nothing is left."""
        deadline = time.monotonic() + timeout
        while True:
            if self._flush_once():
                with self._cond:
                    if not self._pending and self._retrying is None:
                        return True
            if time.monotonic() + self.retry_seconds > deadline:
                return False
            time.sleep(self.retry_seconds)

    def close(self, timeout: float = 30.0) -> RecorderStats:
        """Stop taking batches, write what is left (within ``timeout``), and report; what could not be
        written is counted as dropped and logged as an error with its count."""
        with self._cond:
            already = self._closed
            self._closed = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if not already and not self.flush(timeout):
            with self._cond:
                lost = self._buffered
                self._dropped += lost
                self._buffered = 0
                self._pending.clear()
                self._retrying = None
            instruments().record_dropped.add(lost, {"reason": "unwritable_at_shutdown"})
            log.error("%d predictions could not be recorded before shutdown: %s", lost, self._last_error)
        return self.stats()

    def stats(self) -> RecorderStats:
        with self._cond:
            return RecorderStats(
                self._recorded, self._dropped, self._buffered, self._writes, self._failed, self._last_error
            )


class NullRecorder:
    """What ``get_recorder`` returns when recording is switched off (``PREDICTIONS_RECORD=false``)."""

    def record(self, batch: Scored) -> bool:  # noqa: ARG002 (the recorder's signature, nothing to keep)
        return True

    def count_request(self, status_class: str) -> None:  # noqa: ARG002
        return None

    def close(self, timeout: float = 30.0) -> None:  # noqa: ARG002
        return None


_RECORDERS: dict[Settings, PredictionRecorder | NullRecorder] = {}
_RECORDERS_LOCK = threading.Lock()


def get_recorder(settings: Settings) -> PredictionRecorder | NullRecorder:
    """The process-wide recorder for these settings (built once; its thread starts with the first batch)."""
    with _RECORDERS_LOCK:
        recorder = _RECORDERS.get(settings)
        if recorder is None:
            recorder = _RECORDERS[settings] = _build(settings)
        return recorder


def _build(settings: Settings) -> PredictionRecorder | NullRecorder:
    if not settings.predictions_record:
        return NullRecorder()
    from shared.adapters.storage import get_blob_store
    from shared.domain.contract import get_contract

    recorder = PredictionRecorder(
        get_blob_store(settings),
        get_contract(settings.dataset_name).feature_names,
        max_buffered=settings.predictions_max_buffered,
        flush_rows=settings.predictions_flush_rows,
        flush_seconds=settings.predictions_flush_seconds,
    )
    atexit.register(recorder.close)
    return recorder


def reset_recorders(timeout: float = 10.0) -> None:
    """Close (writing what they hold) and forget the recorders (``functions.composition.reset`` calls this)."""
    with _RECORDERS_LOCK:
        recorders = list(_RECORDERS.values())
        _RECORDERS.clear()
    for recorder in recorders:
        recorder.close(timeout)
