"""The stream's ledger document: today's progress markers still read, and the new ones keep their keys and paths."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from shared.adapters import documents
from shared.adapters.memory_store import MemoryBlobStore
from shared.domain import layout
from shared.domain.documents.streaming import PendingRange, StreamProgress
from shared.streaming.events import StreamEvent, stem
from shared.streaming.ledger import PartitionLedgers
from shared.streaming.retry import RetryingStore

FIXTURES = Path(__file__).parents[1] / "fixtures" / "documents"


def test_a_committed_ledger_as_written_before_reads():
    doc = documents.decode(StreamProgress, (FIXTURES / "stream_ledger.json").read_bytes(), where="fixture")
    assert (doc.partition, doc.done, doc.pending, doc.schema_version) == ("0", 111, None, 1)
    assert doc.updated_at == datetime(2026, 12, 6, 5, 58, 55, 247443, tzinfo=UTC)


def test_a_pending_ledger_as_written_before_reads_with_its_outputs():
    doc = documents.decode(StreamProgress, (FIXTURES / "stream_ledger_pending.json").read_bytes(), where="fixture")
    assert doc.done == -1 and doc.pending is not None
    assert (doc.pending.first, doc.pending.last) == (100, 111)
    hour, batch = "date=2026-12-06/hour=05", "0-100-111"
    assert doc.pending.outputs == {  # the paths the layout names today are the ones written then
        layout.SCORED: layout.stream_scored(hour, batch),
        layout.ALERTS: layout.stream_alerts(hour, batch),
        layout.DEADLETTER: layout.stream_deadletter(hour, batch),
    }


def test_the_ledger_is_written_where_and_as_it_was():
    store = MemoryBlobStore()
    store.ensure_containers()
    ledgers = PartitionLedgers(RetryingStore(store, attempts=1, backoff_seconds=0.0))
    pending = PendingRange(first=100, last=111, outputs={layout.SCORED: "x.parquet"})
    announced = ledgers.write("0", ledgers.read("0"), done=-1, pending=pending)
    ledgers.write("0", announced, done=111, pending=None)
    data, _ = store.get_bytes(layout.SCORED, "_progress/partition=0.json")
    stored = json.loads(data)
    assert {"partition", "done", "pending", "updated_at"} <= set(stored) and stored["done"] == 111
    assert b'"pending": null' in data  # what a reader of the bytes (the chaos test's store) looks for
    assert PartitionLedgers(ledgers.storage).read("0").done == 111  # a new worker reads it back


def test_a_batch_is_filed_by_the_utc_hour_of_its_first_event():
    when = datetime(2026, 11, 23, 15, 5, tzinfo=UTC).astimezone()  # any zone: the folder is UTC
    events = [StreamEvent(b"{}", "2", n, when) for n in (101, 100, 102)]
    assert stem(events) == ("date=2026-11-23/hour=15", "2-100-102")
    assert layout.stream_failed_batch(*stem(events)) == "date=2026-11-23/hour=15/2-100-102-batch.jsonl"
