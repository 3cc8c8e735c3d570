"""The record of served predictions: off the hot path, at least once, nothing doubled, overflow counted."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime

import numpy as np
import pyarrow.parquet as pq
import pytest

from shared.adapters.memory_store import MemoryBlobStore
from shared.domain.contracts import get_contract
from shared.domain.layout import PREDICTIONS
from shared.scoring.recorder import PredictionRecorder
from shared.scoring.records import Scored

CREDITCARD = get_contract("creditcard")

FEATURES = CREDITCARD.feature_names


def _batch(start: int, n: int, *, day: str = "2026-12-04", request_id: str = "r1") -> Scored:
    rng = np.random.default_rng(start)
    return Scored(
        x=rng.normal(size=(n, len(FEATURES))).astype(np.float32),
        probabilities=rng.uniform(size=n),
        transaction_ids=[f"t{start + i}" for i in range(n)],
        customer_ids=[f"c{(start + i) % 7}" for i in range(n)],
        times=np.arange(start, start + n, dtype=np.float64),
        model_version="v1",
        threshold=0.5,
        request_id=request_id,
        latency_ms=1.5,
        scored_at=datetime.fromisoformat(f"{day}T10:00:00+00:00"),
    )


def _recorded(store: MemoryBlobStore):
    names = store.list_names(PREDICTIONS)
    tables = [pq.read_table(io.BytesIO(store.get_bytes(PREDICTIONS, n)[0])) for n in names]
    return names, tables


class _Failing(MemoryBlobStore):
    """A store whose writes to ``predictions`` fail ``failures`` times (after landing, when ``land``)."""

    def __init__(self, failures: int, *, land: bool = False) -> None:
        super().__init__()
        self.failures, self.land, self.attempts = failures, land, []
        self.ensure_containers()

    def put_bytes(self, container, name, data, **kwargs):
        if container == PREDICTIONS:
            self.attempts.append(name)
            if self.failures > 0:
                self.failures -= 1
                if self.land:  # the write landed, its answer was lost
                    super().put_bytes(container, name, data, **kwargs)
                raise ConnectionError("storage is unreachable")
        return super().put_bytes(container, name, data, **kwargs)


def test_every_field_is_recorded_by_day_and_close_writes_what_is_left(memory_store):
    recorder = PredictionRecorder(memory_store, FEATURES, flush_rows=10_000, flush_seconds=3600)
    assert recorder.record(_batch(0, 3, request_id="req-a"))
    assert recorder.record(_batch(3, 2, day="2026-12-05", request_id="req-b"))
    assert memory_store.list_names(PREDICTIONS) == []  # nothing written on the request's path
    stats = recorder.close()
    names, tables = _recorded(memory_store)
    assert [n.split("/")[0] for n in names] == ["date=2026-12-04", "date=2026-12-05"]
    rows = [r for t in tables for r in t.to_pylist()]
    assert [r["transaction_id"] for r in rows] == ["t0", "t1", "t2", "t3", "t4"]
    assert [r["request_id"] for r in rows] == ["req-a"] * 3 + ["req-b"] * 2
    first = rows[0]
    batch = _batch(0, 3)
    assert first["customer_id"] == "c0" and first["model_version"] == "v1" and first["threshold"] == 0.5
    assert first["fraud_probability"] == pytest.approx(batch.probabilities[0])
    assert first["is_fraud"] == bool(batch.probabilities[0] >= 0.5) and first["latency_ms"] == 1.5
    assert first["event_time"] == 0.0 and first["source"] == "http"
    assert first["V1"] == pytest.approx(float(batch.x[0, 0]))  # features: labelled rows become training data
    assert (stats.recorded, stats.dropped, stats.buffered) == (5, 0, 0)


def test_the_background_thread_writes_once_enough_rows_wait(memory_store):
    recorder = PredictionRecorder(memory_store, FEATURES, flush_rows=4, flush_seconds=3600)
    recorder.record(_batch(0, 5))
    for _ in range(200):
        if memory_store.list_names(PREDICTIONS):
            break
        threading.Event().wait(0.01)
    assert len(memory_store.list_names(PREDICTIONS)) == 1
    recorder.close()


def test_a_batch_that_cannot_become_a_record_is_dropped_counted_and_the_thread_lives_on(memory_store, telemetry):
    """Issue 39, finding 11: an unexpected error in the background thread ended it for good, so every later
    prediction piled up unrecorded. Now the batch that cannot be written is dropped and counted, and the
    next batches are written."""
    from dataclasses import replace

    recorder = PredictionRecorder(memory_store, FEATURES, flush_rows=4, flush_seconds=3600)
    bad = replace(_batch(0, 5), x=np.zeros((5, 3), np.float32))  # not the features' width: no table
    recorder.record(bad)
    for _ in range(200):
        if telemetry.total("fraudops.predictions.dropped", reason="unwritable"):
            break
        threading.Event().wait(0.01)
    recorder.record(_batch(10, 5))
    for _ in range(200):
        if memory_store.list_names(PREDICTIONS):
            break
        threading.Event().wait(0.01)
    assert len(memory_store.list_names(PREDICTIONS)) == 1
    stats = recorder.close()
    assert stats.dropped == 5 and telemetry.total("fraudops.predictions.dropped", reason="unwritable") == 5


def test_closing_is_bounded_when_every_write_hangs(memory_store, caplog):
    """Issue 39: ``fraudops serve`` did not exit on SIGTERM while storage was unreachable, its shutdown flush
    waiting on writes stuck in the storage client's retries. ``close`` now returns by its timeout, and what
    could not be written is counted and said."""
    import time

    release = threading.Event()

    class Hanging:
        def put_bytes(self, *args, **kwargs):
            release.wait(30)  # storage that never answers (until the test lets go)
            raise ConnectionError("storage unreachable")

    recorder = PredictionRecorder(Hanging(), FEATURES, flush_rows=2, flush_seconds=3600, retry_seconds=0.05)
    recorder.record(_batch(0, 5))
    threading.Event().wait(0.2)  # the background thread is now stuck in its write
    started = time.monotonic()
    stats = recorder.close(timeout=0.5)
    took = time.monotonic() - started
    release.set()
    assert took < 5.0, took
    assert stats.dropped == 5 and "could not be recorded before shutdown" in caplog.text


@pytest.mark.parametrize("land", [False, True], ids=["write-failed", "answer-lost"])
def test_a_failed_write_is_retried_under_the_same_name_nothing_lost_nothing_doubled(land):
    store = _Failing(failures=2, land=land)
    recorder = PredictionRecorder(store, FEATURES, flush_rows=10_000, flush_seconds=3600, retry_seconds=0.01)
    recorder.record(_batch(0, 4))
    recorder.record(_batch(4, 3))
    assert recorder.flush(timeout=5)
    names, tables = _recorded(store)
    assert len(set(store.attempts)) == 1 and len(store.attempts) == 3  # two failures, then the same name
    assert len(names) == 1 and sorted(r["transaction_id"] for t in tables for r in t.to_pylist()) == sorted(
        f"t{i}" for i in range(7)
    )
    stats = recorder.close()
    assert (stats.recorded, stats.dropped, stats.failed_writes) == (7, 0, 2)
    assert "storage is unreachable" in (stats.last_error or "")


def test_a_full_buffer_drops_new_batches_and_counts_them(telemetry, caplog):
    store = _Failing(failures=10**9)  # storage down for good
    recorder = PredictionRecorder(store, FEATURES, max_buffered=10, flush_rows=10_000, flush_seconds=3600)
    before = telemetry.total("fraudops.predictions.dropped", reason="buffer_full")
    assert recorder.record(_batch(0, 8))
    assert not recorder.record(_batch(8, 5))  # 13 > 10: refused whole
    assert recorder.record(_batch(13, 2))
    assert recorder.stats().dropped == 5 and recorder.stats().buffered == 10
    assert telemetry.total("fraudops.predictions.dropped", reason="buffer_full") - before == 5
    assert "predictions are not being recorded" in caplog.text and "buffer of 10 is full" in caplog.text
    # at shutdown, what still cannot be written is counted as dropped and said out loud
    stats = recorder.close(timeout=0.2)
    assert stats.dropped == 15 and stats.buffered == 0 and stats.recorded == 0
    assert "10 predictions could not be recorded before shutdown" in caplog.text
    assert telemetry.total("fraudops.predictions.dropped", reason="unwritable_at_shutdown") >= 10


def test_after_close_nothing_is_accepted_silently(memory_store):
    recorder = PredictionRecorder(memory_store, FEATURES)
    recorder.close()
    assert not recorder.record(_batch(0, 2)) and recorder.stats().dropped == 2


def test_writes_are_named_apart_across_instances(memory_store):
    """Two instances flushing in the same second never overwrite each other (the instance id is in the name)."""
    a = PredictionRecorder(memory_store, FEATURES, instance="aaa")
    b = PredictionRecorder(memory_store, FEATURES, instance="bbb")
    a.record(_batch(0, 2))
    b.record(_batch(2, 2))
    a.close()
    b.close()
    names, tables = _recorded(memory_store)
    assert len(names) == 2 and sum(t.num_rows for t in tables) == 4


def test_recording_is_cheap_on_the_request_path(memory_store):
    """record() appends a reference: the batch's arrays are not copied or encoded there."""
    recorder = PredictionRecorder(memory_store, FEATURES, flush_seconds=3600)
    batch = _batch(0, 1000)
    recorder.record(batch)
    assert recorder._pending[0] is batch
    recorder.close()


def test_the_timestamp_is_utc(memory_store):
    recorder = PredictionRecorder(memory_store, FEATURES)
    recorder.record(_batch(0, 1))
    recorder.close()
    _, tables = _recorded(memory_store)
    assert tables[0].column("scored_at")[0].as_py() == datetime(2026, 12, 4, 10, tzinfo=UTC)


def test_the_record_is_its_declared_columns_then_the_features():
    from shared.scoring.records import RECORD_COLUMNS, prediction_table

    assert prediction_table(_batch(0, 2), FEATURES).column_names == [*RECORD_COLUMNS, *FEATURES]


def test_answers_are_counted_by_status_class_and_survive_a_failed_write():
    import json

    store = _Failing(failures=1)
    recorder = PredictionRecorder(store, FEATURES, flush_seconds=3600, retry_seconds=0.01)
    for status_class in ("2xx", "2xx", "5xx", "4xx"):
        recorder.count_request(status_class)
    assert recorder.flush(timeout=5)  # the first write fails, the counts wait and go with the next
    names = store.list_names(PREDICTIONS, "_requests/")
    assert len(names) == 1 and names[0].startswith("_requests/date=")
    assert json.loads(store.get_bytes(PREDICTIONS, names[0])[0]) == {"2xx": 2, "5xx": 1, "4xx": 1}
    recorder.count_request("2xx")
    recorder.close()
    totals: dict[str, int] = {}
    for name in store.list_names(PREDICTIONS, "_requests/"):
        for k, v in json.loads(store.get_bytes(PREDICTIONS, name)[0]).items():
            totals[k] = totals.get(k, 0) + v
    assert totals == {"2xx": 3, "5xx": 1, "4xx": 1}  # nothing lost, nothing counted twice


def test_one_table_for_many_batches_is_the_tables_of_each_batch_end_to_end():
    """The flush builds one table from many batches; it must equal the batches' own tables stacked."""
    import pyarrow as pa

    from shared.scoring.records import prediction_table, records_table

    batches = [_batch(0, 3, request_id="a"), _batch(3, 1, day="2026-12-05", request_id="b"), _batch(4, 2)]
    batches[1] = Scored(**{**batches[1].__dict__, "customer_ids": None, "times": None, "threshold": 0.2})
    stacked = pa.concat_tables([prediction_table(b, FEATURES) for b in batches])
    merged = records_table(batches, FEATURES)
    assert merged.drop_columns(["event_time"]).equals(stacked.drop_columns(["event_time"]))
    assert np.array_equal(
        merged.column("event_time").to_numpy(), stacked.column("event_time").to_numpy(), equal_nan=True
    )
    assert merged.column("threshold").to_pylist()[3] == 0.2 and merged.column("customer_id").to_pylist()[3] is None


def test_a_record_written_before_the_time_column_was_renamed_reads_back_under_todays_name(memory_store):
    from datetime import date

    from shared.monitoring.served import load_served
    from shared.scoring.records import parquet_bytes, prediction_table

    old = prediction_table(_batch(0, 3), FEATURES).rename_columns(
        ["Time" if n == "event_time" else n for n in prediction_table(_batch(0, 3), FEATURES).column_names]
    )
    memory_store.put_bytes(PREDICTIONS, "date=2026-12-04/old.parquet", parquet_bytes(old))

    served = load_served(memory_store, date(2026, 12, 4), date(2026, 12, 4), features=FEATURES)

    assert served.num_rows == 3 and "Time" not in served.column_names
    assert served.column("event_time").to_pylist() == old.column("Time").to_pylist()
