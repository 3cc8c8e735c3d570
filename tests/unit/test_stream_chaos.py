"""The stream processor under chaos (issue 19, finding 15): redeliveries cut at random, storage and model-store
faults and instance crashes at random points; every event ends scored or dead-lettered exactly once.

A host loop plays Event Hubs: it hands the processor batches of random size from its checkpoint and
moves the checkpoint only when the function returns (also when it returned after a failure, as the
real trigger does). A crash (a ``BaseException`` from inside a storage call, as a recycled worker)
returns nothing, so the host redelivers from its checkpoint, cut differently, to a new processor.
"""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from shared.adapters.memory_store import MemoryBlobStore
from shared.domain.contracts import get_contract
from shared.streaming.events import StreamEvent
from shared.streaming.processor import StreamProcessor

CREDITCARD = get_contract("creditcard")


class Crash(BaseException):
    """The worker died here (not an error anything may catch)."""


class ChaosStore(MemoryBlobStore):
    """The in-memory store, with transient errors and crashes injected at random points of every call.

    Each worker sees it through its own ``view()``: once a view has crashed, every later call through it
    crashes too, as nothing runs in a dead process (not even the writes its other threads had started).
    """

    def __init__(self, rng: random.Random, error_rate: float, crash_rate: float) -> None:
        super().__init__()
        self.rng, self.error_rate, self.crash_rate = rng, error_rate, crash_rate
        self.crashes = 0
        self.sent_since_commit = 0  # alerts sent since the ledger last committed a range
        self.exposed = 0  # alerts whose commit a crash cut off (they may be sent again: at least once)

    def view(self) -> WorkerView:
        return WorkerView(self)


class WorkerView:
    """One worker process's access to the store."""

    def __init__(self, store: ChaosStore) -> None:
        self.store, self.dead = store, False

    def _chaos(self, name: str = "", body: bytes = b"") -> None:
        store = self.store
        if self.dead:
            raise Crash("this worker is dead")
        roll = store.rng.random()
        if roll < store.crash_rate:
            self.dead = True
            store.crashes += 1
            if name.startswith("_progress/") and b'"pending": null' in body:
                store.exposed += store.sent_since_commit
            raise Crash(name)
        if roll < store.crash_rate + store.error_rate:
            raise OSError("injected: connection reset")

    def put_bytes(self, container, name, data, **kwargs):
        self._chaos(name, data)
        etag = self.store.put_bytes(container, name, data, **kwargs)
        if name.startswith("_progress/") and b'"pending": null' in data:
            self.store.sent_since_commit = 0
        return etag

    def get_bytes(self, container, name):
        self._chaos()
        return self.store.get_bytes(container, name)

    def info(self, container, name):
        self._chaos()
        return self.store.info(container, name)

    def delete(self, container, name, **kwargs):
        self._chaos()
        return self.store.delete(container, name, **kwargs)

    def __getattr__(self, attr):
        return getattr(self.store, attr)


class RecordingHub:
    """The alerts hub: records each alert it was given (by partition and sequence number)."""

    def __init__(self, store: ChaosStore) -> None:
        self.sent: list[tuple[str, int]] = []
        self.store = store

    def send(self, alerts):
        self.sent.extend((a["partition"], a["sequence_number"]) for a in alerts)
        self.store.sent_since_commit += len(alerts)


class FlakyScorer:
    """The real scorer, except that its model refresh raises an SDK error at random."""

    def __init__(self, scorer, rng: random.Random, rate: float) -> None:
        self.scorer, self.rng, self.rate = scorer, rng, rate
        self.explainers = scorer.explainers

    def current(self):
        from azure.core.exceptions import HttpResponseError

        if self.rng.random() < self.rate:
            raise HttpResponseError("injected: 503 Server Busy from the model store")
        return self.scorer.current()


FRAUD = {
    "V14": -12.0,
    "V17": -10.0,
    "V12": -10.0,
    "V10": -8.0,
    "V3": -9.0,
    "V7": -8.0,
    "V11": 6.0,
    "V4": 6.0,
    "V16": -7.0,
}
"""Features the synthetic model flags."""


def _events(n: int, rng: random.Random) -> list[StreamEvent]:
    when = datetime(2026, 12, 1, 10, tzinfo=UTC)
    out = []
    for i in range(n):
        row = {"transaction_id": f"t{i}", **dict.fromkeys(CREDITCARD.feature_names, 0.0), "Amount": 10.0}
        if rng.random() < 0.15:
            row.update(FRAUD)
        body = b"not json" if rng.random() < 0.05 else json.dumps(row).encode()
        out.append(StreamEvent(body=body, partition="3", sequence_number=1000 + i, enqueued_time=when))
    return out


def _dispositions(store: MemoryBlobStore) -> tuple[Counter[int], Counter[int], Counter[int]]:
    """How often each sequence number was scored, dead-lettered, and archived as an alert."""
    scored: Counter[int] = Counter()
    flagged: Counter[int] = Counter()
    for name in store.list_names("scored", "date="):
        table = pq.read_table(io.BytesIO(store.get_bytes("scored", name)[0]))
        scored.update(table.column("sequence_number").to_pylist())
    dead: Counter[int] = Counter()
    for name in store.list_names("deadletter"):
        for line in store.get_bytes("deadletter", name)[0].splitlines():
            doc = json.loads(line)
            if not doc["reason"].startswith("alert not sent"):
                dead[doc["sequence_number"]] += 1
    for name in store.list_names("alerts"):
        flagged.update(json.loads(line)["sequence_number"] for line in store.get_bytes("alerts", name)[0].splitlines())
    return scored, dead, flagged


def _store_with_model(model_store: MemoryBlobStore, rng: random.Random, **rates: float) -> ChaosStore:
    store = ChaosStore(rng, error_rate=rates.get("error_rate", 0.0), crash_rate=rates.get("crash_rate", 0.0))
    store.ensure_containers()
    for name in model_store.list_names("models"):
        store.put_bytes("models", name, model_store.get_bytes("models", name)[0])
    return store


def _worker(view, spool, **options) -> StreamProcessor:
    """A worker process: its own scorer (nothing cached survives a crash) on its own view of the store."""
    from shared.adapters.model_store import ModelStore
    from shared.scoring.scorer import Scorer

    scorer: Any = Scorer(ModelStore(view, "fraud"), feature_names=CREDITCARD.feature_names, refresh_seconds=0)
    wrap = options.pop("wrap_scorer", None)
    return StreamProcessor(
        view, wrap(scorer) if wrap else scorer, CREDITCARD, spool_dir=spool, backoff_seconds=0.0, **options
    )


@pytest.fixture(scope="module")
def model_store():
    """A published synthetic model, copied into each chaos run's store."""
    from cli.devtools.models import publish_synthetic_model

    base = MemoryBlobStore()
    base.ensure_containers()
    publish_synthetic_model(base, "fraud", version="v1", trees=20, rows=4000, seed=1, threshold=0.5)
    return base


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_under_chaos_every_event_is_scored_or_dead_lettered_exactly_once(model_store, tmp_path, seed):

    rng = random.Random(seed)
    store = _store_with_model(model_store, rng, error_rate=0.04, crash_rate=0.02)
    hub = RecordingHub(store)
    events = _events(300, rng)

    def processor() -> StreamProcessor:  # a new worker after each crash, on the same disk (a restarted worker)
        return _worker(
            store.view(),
            tmp_path / "spool",
            wrap_scorer=lambda scorer: FlakyScorer(scorer, rng, rate=0.03),
            attempts=3,
            publisher=hub,
        )

    worker, checkpoint, deliveries = processor(), 0, 0
    while checkpoint < len(events):
        deliveries += 1
        assert deliveries < 2_000, "the stream made no progress"
        batch = events[checkpoint : checkpoint + rng.randint(1, 40)]
        try:
            worker.process(batch)
        except Crash:
            worker = processor()  # the host redelivers from its checkpoint, to a new worker
            continue
        checkpoint += len(batch)  # the function returned: the host checkpoints, whatever happened inside

    store.error_rate = store.crash_rate = 0.0  # the storm is over: the spool drains with the next batch
    worker.replay_spool()
    assert not list((tmp_path / "spool").glob("*.jsonl"))
    scored, dead, archived = _dispositions(store)
    everything = [e.sequence_number for e in events]
    assert store.crashes > 0 and deliveries > 10  # the chaos happened
    assert sorted((scored + dead).elements()) == everything, (
        f"twice: {sorted(s for s, c in (scored + dead).items() if c > 1)[:10]}, "
        f"never: {sorted(set(everything) - set(scored + dead))[:10]}"
    )
    assert not set(scored) & set(dead)
    assert all(c == 1 for c in archived.values())  # each alert archived once
    sent = Counter(seq for _, seq in hub.sent)
    assert set(sent) == set(archived)  # each archived alert reached the hub
    duplicates = sum(c - 1 for c in sent.values())
    # only a crash between a send and its commit resends (no producer can know whether a send it never saw
    # acknowledged reached the hub); every other failure, retry or re-cut sends each alert once
    assert duplicates <= store.exposed


def test_a_redelivery_cut_differently_writes_each_event_once(model_store, tmp_path):
    rng = random.Random(0)
    store = _store_with_model(model_store, rng)
    worker = _worker(store.view(), tmp_path / "spool")
    events = _events(30, rng)
    assert worker.process(events[:10]).status == "processed"
    assert worker.process(events[:5]).status == "redelivered"  # before: a new cut wrote its events again
    again = worker.process(events[5:20])
    assert again.status == "processed" and again.already_done
    scored, dead, _ = _dispositions(store)
    assert sorted((scored + dead).elements()) == [e.sequence_number for e in events[:20]]
    assert np.all(np.array(list((scored + dead).values())) == 1)


def test_a_partly_committed_redelivery_spools_only_what_is_not_committed(model_store, tmp_path):
    rng = random.Random(0)
    store = _store_with_model(model_store, rng)
    worker = _worker(store.view(), tmp_path / "spool")
    events = _events(20, rng)
    worker.process(events[:10])
    store.error_rate = 1.0  # storage unreachable for everything, the ledger included
    assert worker.process(events[5:15]).deadletter.startswith(str(tmp_path / "spool"))
    store.error_rate = 0.0
    worker.replay_spool()
    scored, dead, _ = _dispositions(store)
    assert sorted((scored + dead).elements()) == [e.sequence_number for e in events[:15]]  # 1005-1009 not spooled twice


def test_a_settled_range_whose_hub_is_down_records_its_alerts_as_not_sent_and_moves_on(model_store, tmp_path):
    """Settling must not turn an alerts-hub outage into spooling every later batch."""

    class CrashAtCommit(WorkerView):
        def put_bytes(self, container, name, data, **kwargs):
            if name.startswith("_progress/") and b'"pending": null' in data:
                self.dead = True
                raise Crash("after the outputs, before the commit")
            return super().put_bytes(container, name, data, **kwargs)

    class DownHub:
        def send(self, alerts):
            raise OSError("the alerts hub is unreachable")

    rng = random.Random(0)
    store = _store_with_model(model_store, rng)
    events = _events(40, random.Random(7))
    fraud = {"transaction_id": "first-range-fraud", **dict.fromkeys(CREDITCARD.feature_names, 0.0), **FRAUD}
    events[3] = StreamEvent(
        body=json.dumps({**fraud, "Amount": 10.0}).encode(),
        partition="3",
        sequence_number=events[3].sequence_number,
        enqueued_time=events[3].enqueued_time,
    )

    def worker(view, hub):
        return _worker(view, tmp_path / "spool", attempts=2, publisher=hub)

    with pytest.raises(Crash):
        worker(CrashAtCommit(store), RecordingHub(store)).process(events[:20])
    after = worker(store.view(), DownHub()).process(events[10:40])
    assert after.status == "processed" and not list((tmp_path / "spool").glob("*.jsonl"))
    scored, dead, archived = _dispositions(store)
    assert sorted((scored + dead).elements()) == [e.sequence_number for e in events]
    unsent = [n for n in store.list_names("deadletter") if n.endswith("-unsent-alerts.jsonl")]
    first_range = f"date=2026-12-01/hour=10/3-{events[0].sequence_number}-{events[19].sequence_number}"
    assert f"{first_range}-unsent-alerts.jsonl" in unsent  # the settled range's alerts, recorded as not sent
    assert archived[events[3].sequence_number] == 1
