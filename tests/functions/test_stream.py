"""The Event Hubs function as the host calls it: real EventHubEvent batches, against Azurite."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest

from cli.devtools.models import publish_synthetic_model
from functions.eventhub_events import from_function_event, to_function_events
from tests.functions.host import user_function

FEATURES = [f"V{i}" for i in range(1, 29)] + ["Amount"]
WHEN = datetime(2026, 11, 23, 14, 5, tzinfo=UTC)
PREFIX = "date=2026-11-23/hour=14"


def _txn(i: int, fraud: bool = False, **over) -> dict:
    row = {"transaction_id": f"e{i}", "customer_id": f"c{i % 3}", **dict.fromkeys(FEATURES, 0.0), "Amount": 12.5}
    if fraud:
        row.update(V14=-12.0, V17=-10.0, V12=-10.0, V10=-8.0, V3=-9.0, V7=-8.0, V11=6.0, V4=6.0, V16=-7.0)
    row.update(over)
    return row


def _events(bodies, partition="2", first=100):
    encoded = [b if isinstance(b, bytes) else json.dumps(b).encode() for b in bodies]
    return to_function_events(encoded, partition=partition, first_sequence=first, enqueued_time=WHEN)


def _lines(store, container, name):
    return [json.loads(line) for line in store.get_bytes(container, name)[0].splitlines()]


@pytest.fixture
def stream(store, settings, tmp_path, monkeypatch):
    from tests.conftest import clear_caches

    monkeypatch.setenv("STREAM_RETRY_BACKOFF_SECONDS", "0.01")
    monkeypatch.setenv("DEADLETTER_SPOOL_DIR", str(tmp_path / "spool"))
    clear_caches()
    publish_synthetic_model(store, settings.model_name, version="v1", trees=40, seed=1, threshold=0.5)
    yield user_function("score_stream")
    clear_caches()


def test_valid_batch_is_scored_archived_and_alerted(store, stream):
    batch = [_txn(i) for i in range(20)] + [_txn(20, fraud=True), _txn(21, fraud=True)]
    assert stream(_events(batch)) is None
    table = pq.read_table(io.BytesIO(store.get_bytes("scored", f"{PREFIX}/2-100-121.parquet")[0]))
    assert table.num_rows == 22 and table.column("sequence_number").to_pylist() == list(range(100, 122))
    assert set(table.column("partition").to_pylist()) == {"2"}
    assert set(table.column("model_version").to_pylist()) == {"v1"}
    flagged = {
        t
        for t, f in zip(table.column("transaction_id").to_pylist(), table.column("is_fraud").to_pylist(), strict=True)
        if f
    }
    alerts = _lines(store, "alerts", f"{PREFIX}/2-100-121.jsonl")
    assert {a["transaction_id"] for a in alerts} == flagged and {"e20", "e21"} <= flagged
    assert all(len(a["top_features"]) == 5 and a["fraud_probability"] >= 0.5 for a in alerts)
    assert store.list_names("deadletter") == []


def test_mixed_batch_dead_letters_each_bad_event_with_its_reason(store, stream):
    batch = [
        _txn(0),
        b"not json",
        b"[1, 2]",
        {"V1": 1.0},
        _txn(4, V3="abc"),
        _txn(5, Amount=-2.0),
        b"\xff\xfe",
        _txn(7),
    ]
    stream(_events(batch))
    scored = pq.read_table(io.BytesIO(store.get_bytes("scored", f"{PREFIX}/2-100-107.parquet")[0]))
    assert scored.column("transaction_id").to_pylist() == ["e0", "e7"]
    dead = {d["sequence_number"]: d for d in _lines(store, "deadletter", f"{PREFIX}/2-100-107.jsonl")}
    assert sorted(dead) == [101, 102, 103, 104, 105, 106]
    assert "not JSON" in dead[101]["reason"] and dead[101]["body"] is None  # withheld: it may hold an id
    assert dead[101]["body_encoding"] == "withheld: not JSON" and dead[101]["body_bytes"] == len(b"not json")
    assert "not a JSON object" in dead[102]["reason"]
    assert "transaction_id" in dead[103]["reason"]
    assert "V3" in dead[104]["reason"] and "Amount" in dead[105]["reason"]
    assert dead[106]["body_encoding"] == "withheld: not UTF-8" and dead[104]["partition"] == "2"
    assert dead[104]["enqueued_time"].startswith("2026-11-23T14:05")
    assert 2 + len(dead) == len(batch)  # nothing lost


def test_all_bad_batch_writes_only_the_dead_letters(store, stream):
    stream(_events([b"{", b"", b"null"]))
    assert store.list_names("scored", "date=") == [] and store.list_names("alerts") == []
    assert len(_lines(store, "deadletter", f"{PREFIX}/2-100-102.jsonl")) == 3


def test_redelivered_batch_writes_no_duplicates(store, settings, stream):
    from shared.bootstrap import bootstrap

    batch = [_txn(0), _txn(1, fraud=True), b"bad"]
    stream(_events(batch))
    before = {c: store.list_names(c) for c in ("scored", "alerts", "deadletter")}
    again = bootstrap(settings).processor.process([from_function_event(e) for e in _events(batch)])
    assert again.status == "redelivered" and again.scored == 0 and "up to sequence number 102" in again.already_done[0]
    assert {c: store.list_names(c) for c in ("scored", "alerts", "deadletter")} == before
    assert len(_lines(store, "alerts", f"{PREFIX}/2-100-102.jsonl")) == 1


class _Flaky:
    """The real store, except that writes to some containers fail ``failures`` times (or always)."""

    def __init__(self, store, containers, failures):
        self._store, self.containers, self.failures = store, containers, failures

    def __getattr__(self, name):
        return getattr(self._store, name)

    def put_bytes(self, container, name, data, **kwargs):
        from azure.core.exceptions import ServiceRequestError

        if container in self.containers and self.failures != 0:
            self.failures -= 1
            raise ServiceRequestError("connection refused")
        return self._store.put_bytes(container, name, data, **kwargs)


def _processor(store, settings, tmp_path, flaky):
    from shared.bootstrap import bootstrap
    from shared.domain.contracts import get_contract
    from shared.streaming.processor import StreamProcessor

    return StreamProcessor(
        flaky,
        bootstrap(settings).scorer,
        get_contract("creditcard"),
        attempts=3,
        backoff_seconds=0.01,
        spool_dir=tmp_path / "spool",
    )


def test_transient_storage_failure_is_retried(store, settings, stream, tmp_path):
    processor = _processor(store, settings, tmp_path, _Flaky(store, {"scored"}, failures=2))
    summary = processor.process([from_function_event(e) for e in _events([_txn(0), _txn(1)])])
    assert summary.status == "processed" and summary.scored == 2
    assert store.list_names("scored", "date=") == [f"{PREFIX}/2-100-101.parquet"]


def test_storage_down_mid_batch_dead_letters_the_whole_batch(store, settings, stream, tmp_path):
    processor = _processor(store, settings, tmp_path, _Flaky(store, {"alerts"}, failures=-1))
    batch = [_txn(0), _txn(1, fraud=True), b"bad"]
    summary = processor.process([from_function_event(e) for e in _events(batch)])
    assert summary.status == "deadlettered" and "alerts/" in summary.reason
    dead = _lines(store, "deadletter", f"{PREFIX}/2-100-102-batch.jsonl")
    assert [d["sequence_number"] for d in dead] == [100, 101, 102]  # every event kept, with the reason
    assert all("failed 3 times" in d["reason"] for d in dead)


def test_storage_gone_entirely_spools_the_batch_locally(store, settings, stream, tmp_path):
    processor = _processor(store, settings, tmp_path, _Flaky(store, {"scored", "alerts", "deadletter"}, -1))
    summary = processor.process([from_function_event(e) for e in _events([_txn(0), _txn(1)])])
    spooled = tmp_path / "spool" / f"{PREFIX.replace('/', '__')}__2-100-101-batch.jsonl"
    assert summary.deadletter == str(spooled)
    assert [json.loads(line)["sequence_number"] for line in spooled.read_text().splitlines()] == [100, 101]


# ---- issue 19, finding 14: every failure ends scored, dead-lettered or spooled; the spool is replayed


def test_the_spool_is_moved_into_deadletter_once_storage_is_back(store, settings, stream, tmp_path):
    """Before: spooled batches stayed in the instance's /tmp until it was recycled, and were lost."""
    down = _Flaky(store, {"scored", "alerts", "deadletter"}, -1)
    processor = _processor(store, settings, tmp_path, down)
    processor.process([from_function_event(e) for e in _events([_txn(0), _txn(1)])])
    assert len(list((tmp_path / "spool").iterdir())) == 1
    processor.process([from_function_event(e) for e in _events([_txn(2)], first=102)])  # still down: kept
    assert len(list((tmp_path / "spool").iterdir())) == 2
    down.failures = 0  # storage is back
    summary = processor.process([from_function_event(e) for e in _events([_txn(3)], first=103)])
    assert summary.status == "processed" and list((tmp_path / "spool").iterdir()) == []
    moved = sorted(n for n in store.list_names("deadletter") if n.endswith("-batch.jsonl"))
    assert moved == [f"{PREFIX}/2-100-101-batch.jsonl", f"{PREFIX}/2-102-102-batch.jsonl"]
    assert [d["sequence_number"] for d in _lines(store, "deadletter", moved[0])] == [100, 101]


def test_a_model_refresh_that_raises_an_sdk_error_dead_letters_the_batch(store, settings, stream, tmp_path):
    """Before: the error escaped, the host checkpointed anyway, and the batch was gone."""
    from azure.core.exceptions import HttpResponseError

    processor = _processor(store, settings, tmp_path, store)

    class Broken:
        explainers = None

        def current(self):
            raise HttpResponseError("503 Server Busy")

    processor.scorer = Broken()  # type: ignore[assignment]
    summary = processor.process([from_function_event(e) for e in _events([_txn(0), _txn(1)])])
    assert summary.status == "deadlettered" and "HttpResponseError" in (summary.reason or "")
    dead = _lines(store, "deadletter", f"{PREFIX}/2-100-101-batch.jsonl")
    assert [d["sequence_number"] for d in dead] == [100, 101]


def test_an_explainer_that_fails_costs_the_alerts_their_explanations_only(store, settings, stream, tmp_path):
    processor = _processor(store, settings, tmp_path, store)

    class Exploding:
        def get(self, version, features):
            raise RuntimeError("LightGBMError: model string is corrupt")

    processor.scorer.explainers = Exploding()  # type: ignore[assignment]
    try:
        summary = processor.process([from_function_event(e) for e in _events([_txn(0), _txn(1, fraud=True)])])
    finally:
        from tests.conftest import clear_caches

        clear_caches()
    assert summary.status == "processed" and summary.scored == 2 and summary.alerts == 1
    [alert] = _lines(store, "alerts", f"{PREFIX}/2-100-101.jsonl")
    assert alert["transaction_id"] == "e1" and alert["top_features"] is None


def test_no_model_yet_dead_letters_instead_of_dropping(store, settings, tmp_path, monkeypatch):
    from tests.conftest import clear_caches

    monkeypatch.setenv("DEADLETTER_SPOOL_DIR", str(tmp_path / "spool"))
    clear_caches()
    user_function("score_stream")(_events([_txn(0)]))
    dead = _lines(store, "deadletter", f"{PREFIX}/2-100-100-batch.jsonl")
    assert "no model has been published" in dead[0]["reason"]
    clear_caches()


def test_local_replay_runs_the_function_and_counts(store, settings, stream, tmp_path, capsys):
    import csv

    from cli.main import main

    rows = [_txn(i) for i in range(240)] + [_txn(240, fraud=True), _txn(241, Amount=-5.0)]
    for row in rows:
        row.pop("transaction_id")  # the replay generates ids
    path = tmp_path / "stream.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["replay", str(path), "--local", "--batch", "100"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["mode"] == "local" and summary["sent"] == 242 and summary["failed"] == 0
    assert summary["scored"] == 241 and summary["deadlettered"] == 1 and summary["alerts"] >= 1
    assert summary["events_per_s"] > 0
    scored = sum(
        pq.read_table(io.BytesIO(store.get_bytes("scored", n)[0])).num_rows for n in store.list_names("scored", "date=")
    )
    assert scored == 241
    dead = [d for n in store.list_names("deadletter") for d in _lines(store, "deadletter", n)]
    assert len(dead) == 1 and "Amount" in dead[0]["reason"] and "stream-241" in dead[0]["body"]


def test_replay_of_a_missing_file_says_so(stream, capsys):
    from cli.main import main

    assert main(["replay", "/nonexistent/file.csv", "--local"]) == 2  # unusable input, as for every command
    assert "/nonexistent/file.csv does not exist" in capsys.readouterr().err


@pytest.mark.skipif(
    not __import__("os").environ.get("EVENTHUB_TEST_CONNECTION"),
    reason="set EVENTHUB_TEST_CONNECTION (Event Hubs emulator or Azure, hub 'transactions') to run",
)
def test_replay_to_real_event_hubs(stream, tmp_path, monkeypatch, capsys):
    """Sends with the azure-eventhub producer; the consumer side is the Functions host, not run here."""
    import os

    from cli.main import main
    from tests.conftest import clear_caches

    monkeypatch.setenv("EVENTHUB", os.environ["EVENTHUB_TEST_CONNECTION"])
    clear_caches()
    path = tmp_path / "few.csv"
    path.write_text("customer_id," + ",".join(FEATURES) + "\n" + "c1," + ",".join(["0.1"] * 29) + "\n")
    assert main(["replay", str(path), "--batch", "10"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["mode"] == "eventhubs" and summary["sent"] == 1 and summary["failed"] == 0


def test_the_archive_is_the_record_of_served_predictions_and_telemetry_is_exported(store, stream, telemetry):
    """The scored/ archive carries the same fields as the HTTP record (one schema for delayed labels to join),
    and the batch leaves a span, event counts, a lag observation and the score distribution."""
    from shared.scoring.records import RECORD_COLUMNS

    before = telemetry.total("fraudops.stream.events", outcome="scored")
    batch = [_txn(i, Time=float(i)) for i in range(5)] + [_txn(5, fraud=True), b"not json"]
    assert stream(_events(batch)) is None
    table = pq.read_table(io.BytesIO(store.get_bytes("scored", f"{PREFIX}/2-100-106.parquet")[0]))
    assert set(RECORD_COLUMNS) | set(FEATURES) <= set(table.column_names)
    row = table.to_pylist()[0]
    assert row["source"] == "stream" and row["request_id"] == "2-100-106" and row["threshold"] == 0.5
    from shared.domain.pseudonym import pseudonymiser

    assert row["customer_id"] == pseudonymiser(None)("c0")  # pseudonymised as the event was decoded
    assert row["event_time"] == 0.0 and row["Amount"] == 12.5
    (batch_span,) = telemetry.spans("stream.batch")
    assert batch_span.attributes["partition"] == "2" and batch_span.attributes["status"] == "processed"
    assert telemetry.total("fraudops.stream.events", outcome="scored") - before == 6
    assert telemetry.total("fraudops.stream.events", outcome="deadlettered") >= 1
    assert telemetry.total("fraudops.stream.lag", partition="2") >= 1
    assert telemetry.total("fraudops.score.transactions", source="stream", model_version="v1") >= 6
