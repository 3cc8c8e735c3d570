"""The recorder of served predictions: buffered on the hot path, written to Blob off it.

The HTTP path hands each answered batch (``shared.scoring.records.Scored``) to a
:class:`PredictionRecorder`: ``record`` only appends the batch's arrays to a bounded buffer
(microseconds, no I/O, never blocks the request); a background thread builds the Parquet and writes it
to ``predictions/date=YYYY-MM-DD/`` every ``flush_seconds`` or ``flush_rows``, whichever comes first.
Delivery is at least once: a failed write keeps its rows at the head of the buffer and is retried under
the same blob name (a write that landed but whose answer was lost is overwritten with the same bytes,
never doubled), and ``close`` (at process exit and at the server's shutdown) writes what is left. A full
buffer drops the new batch and counts it (``fraudops.predictions.dropped``, the recorder's ``stats``,
and a warning at most once a minute), never silently.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared.domain import layout
from shared.domain.telemetry import instruments
from shared.scoring.records import Scored, parquet_bytes, records_table
from shared.scoring.requests import RequestTally

if TYPE_CHECKING:
    import pyarrow as pa

    from shared.adapters.storage import BlobStore
    from shared.domain.config import ScoringConfig

log = logging.getLogger(__name__)


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
            try:
                ok = self._flush_once()
            except Exception:  # never let the thread die: every later prediction would pile up unrecorded
                log.exception("the prediction recorder failed unexpectedly; it goes on with the next batches")
                ok = False
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
        try:
            return batches, self._name_tables(batches)
        except Exception:  # rows that cannot become a table never will: drop them, counted, not the recorder
            rows = sum(len(b) for b in batches)
            with self._cond:
                self._buffered -= rows
                self._dropped += rows
            instruments().record_buffered.add(-rows)
            instruments().record_dropped.add(rows, {"reason": "unwritable"})
            log.exception("%d predictions could not be made into a record and are dropped", rows)
            return None

    def _name_tables(self, batches: list[Scored]) -> list[tuple[str, pa.Table]]:

        by_day: dict[str, list[Scored]] = {}
        for b in batches:
            by_day.setdefault(b.scored_at.astimezone(UTC).strftime("%Y-%m-%d"), []).append(b)
        named = []
        for day, of_day in sorted(by_day.items()):
            self._sequence += 1
            stamp = datetime.now(UTC).strftime("%H%M%S")
            name = layout.prediction_records(day, f"{batches[0].source}-{stamp}-{self.instance}-{self._sequence:06d}")
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
            name = layout.request_counts(day, f"{self.instance}-{self._sequence:06d}")
            try:
                self.store.put_bytes(
                    layout.PREDICTIONS, name, json.dumps(counts).encode(), content_type="application/json"
                )
            except Exception as exc:  # storage errors of every kind: the counts wait for the next flush
                self.requests.give_back({d: c for d, c in pending.items() if d >= day})
                where = layout.display(layout.PREDICTIONS, name)
                log.warning("recording request counts to %s failed (%s); retrying", where, exc)
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
                    layout.PREDICTIONS, name, parquet_bytes(table), content_type="application/vnd.apache.parquet"
                )
            except Exception as exc:  # storage errors of every kind: keep the rows, retry under the same name
                with self._cond:
                    self._retrying = (batches, named[i:])
                    self._failed += 1
                    self._last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                where = layout.display(layout.PREDICTIONS, name)
                log.warning("recording %d predictions to %s failed (%s); retrying", table.num_rows, where, exc)
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
        if not already and not self._flush_within(timeout):
            with self._cond:
                lost = self._buffered
                self._dropped += lost
                self._buffered = 0
                self._pending.clear()
                self._retrying = None
            instruments().record_dropped.add(lost, {"reason": "unwritable_at_shutdown"})
            log.error("%d predictions could not be recorded before shutdown: %s", lost, self._last_error)
        return self.stats()

    def _flush_within(self, timeout: float) -> bool:
        """``flush`` that returns by ``timeout`` whatever storage does: a write stuck in the storage client's
        retries (storage unreachable) must not hold a shutdown, which the host would end by force."""
        done: list[bool] = []
        worker = threading.Thread(target=lambda: done.append(self.flush(timeout)), name="recorder-close", daemon=True)
        worker.start()
        worker.join(timeout + 1.0)
        return bool(done and done[0])

    def stats(self) -> RecorderStats:
        with self._cond:
            return RecorderStats(
                self._recorded, self._dropped, self._buffered, self._writes, self._failed, self._last_error
            )


class NullRecorder:
    """The recorder when recording is switched off (``PREDICTIONS_RECORD=false``): it keeps nothing."""

    def record(self, batch: Scored) -> bool:  # noqa: ARG002 (the recorder's signature, nothing to keep)
        return True

    def count_request(self, status_class: str) -> None:  # noqa: ARG002
        return None

    def close(self, timeout: float = 30.0) -> None:  # noqa: ARG002
        return None


def build_recorder(*, config: ScoringConfig, store: BlobStore) -> PredictionRecorder | NullRecorder:
    """The recorder ``config`` asks for, writing to ``store`` (closed at process exit); a ``NullRecorder`` when
    recording is switched off."""
    if not config.predictions_record:
        return NullRecorder()
    from shared.domain.contracts import get_contract

    recorder = PredictionRecorder(
        store,
        get_contract(config.dataset_name).model_features,
        max_buffered=config.predictions_max_buffered,
        flush_rows=config.predictions_flush_rows,
        flush_seconds=config.predictions_flush_seconds,
    )
    atexit.register(recorder.close)
    return recorder
