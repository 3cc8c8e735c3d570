"""Each trigger invoked through the real worker with the input the host sends; what each wrote is checked."""

from __future__ import annotations

import io
import json
import logging

import pyarrow.parquet as pq
import pytest

from cli.devtools.models import publish_synthetic_model
from shared.adapters.model_store import ModelStore

FEATURES = [f"V{i}" for i in range(1, 29)] + ["Amount"]
JSON = {"content-type": "application/json"}
DATA = "DataStorage"  # the blob trigger's connection (test_indexing checks the registered one)


def _txn(i: int, **over) -> dict:
    row = {"transaction_id": f"w{i}", "customer_id": f"c{i % 3}", "Time": 10.0, **dict.fromkeys(FEATURES, 0.1)}
    row.update(over)
    return row


@pytest.fixture
def model(store, settings):
    from tests.conftest import clear_caches

    clear_caches()
    publish_synthetic_model(store, settings.model_name, version="w1", trees=30, seed=2)
    yield "w1"
    clear_caches()


def test_http_score_runs_through_the_asgi_app_and_a_real_model(host, model):
    body = json.dumps({"transactions": [_txn(0), _txn(1, Amount=250.0)]}).encode()
    result = host.http("POST", "/api/score", body=body, headers=JSON)
    assert result.ok, result.error
    assert result.http.status_code == "200"
    answer = json.loads(result.http.body.bytes)
    assert [r["transaction_id"] for r in answer["results"]] == ["w0", "w1"]
    assert all(0.0 <= r["fraud_probability"] <= 1.0 for r in answer["results"])
    assert answer["model_version"] == model


def test_http_bad_body_is_a_4xx_with_a_reason(host, model):
    result = host.http("POST", "/api/score", body=json.dumps({"transactions": [{"Time": 1.0}]}).encode(), headers=JSON)
    assert result.ok, result.error  # the function answered; the answer is the refusal
    assert result.http.status_code == "422"
    assert "V1" in result.http.body.bytes.decode()


def test_http_health_reports_the_model(host, model):
    result = host.http("GET", "/api/health")
    assert result.ok and result.http.status_code == "200", result.http.body.bytes
    assert json.loads(result.http.body.bytes)["model_version"] == model


def test_event_hubs_batch_is_scored_with_its_partition_and_sequence_numbers(host, store, model, tmp_path, monkeypatch):
    monkeypatch.setenv("DEADLETTER_SPOOL_DIR", str(tmp_path / "spool"))
    bodies = [json.dumps(_txn(i)).encode() for i in range(5)] + [b"{not json"]
    result = host.eventhub_batch("score_stream", bodies, partition="3", first_sequence=700)
    assert result.ok, result.error
    scored = store.list_names("scored", "date=")
    assert len(scored) == 1 and scored[0].endswith("/3-700-705.parquet")  # the batch's range, scored
    table = pq.read_table(io.BytesIO(store.get_bytes("scored", scored[0])[0]))
    assert table.column("sequence_number").to_pylist() == list(range(700, 705))
    assert set(table.column("partition").to_pylist()) == {"3"}
    dead = store.list_names("deadletter")
    assert len(dead) == 1, dead
    line = json.loads(store.get_bytes("deadletter", dead[0])[0].splitlines()[0])
    assert line["sequence_number"] == 705 and line["partition"] == "3"


def test_blob_trigger_gets_a_blob_client_from_model_binding_data(host, store, azurite, sample_csv):
    store.put_bytes("raw", "landed/host.csv", sample_csv.read_bytes())
    result = host.blob("etl_raw_blob", container="raw", blob_name="landed/host.csv", connection=DATA)
    assert result.ok, result.error
    curated = store.list_names("curated", "creditcard/ingest_date=")
    assert curated and all(n.endswith(".parquet") for n in curated)


def test_blob_trigger_returns_normally_for_a_file_that_can_never_succeed(host, store, azurite):
    store.put_bytes("raw", "empty.csv", b"")
    result = host.blob("etl_raw_blob", container="raw", blob_name="empty.csv", connection=DATA)
    assert result.ok, result.error  # no host retries for a file that can never succeed
    [kept] = store.list_names("quarantine")
    assert kept.startswith("creditcard/files/") and kept.endswith("/empty.csv")


def test_blob_trigger_returns_normally_when_the_blob_is_already_gone(host, store, azurite):
    """A redelivery after the file was rejected and moved to quarantine/: nothing to do, no host retry."""
    result = host.blob("etl_raw_blob", container="raw", blob_name="moved-away.csv", connection=DATA)
    assert result.ok, result.error
    assert store.list_names("quarantine") == [] and store.list_names("curated") == []


def test_blob_trigger_with_an_unknown_connection_fails_the_invocation(host, store, azurite):
    store.put_bytes("raw", "x.csv", b"Time\n1\n")
    result = host.blob("etl_raw_blob", container="raw", blob_name="x.csv", connection="NO_SUCH_SETTING")
    assert not result.ok and "NO_SUCH_SETTING" in result.error


def test_timer_past_due_retrains_and_promotes(host, store, settings, generated_csv, caplog, monkeypatch):
    monkeypatch.setenv("TRAIN_SEARCH_TRIALS", "1")  # the timer's path through the worker is tested, not the search
    store.put_bytes("raw", "gen.csv", generated_csv.read_bytes())
    assert host.blob("etl_raw_blob", container="raw", blob_name="gen.csv", connection=DATA).ok
    with caplog.at_level(logging.WARNING, logger="functions.timer_retrain"):
        result = host.timer("retrain_model", past_due=True)
    assert result.ok, result.error
    assert "past due" in caplog.text
    assert ModelStore(store, settings.model_name).champion()[0] is not None


def test_labels_landing_in_raw_labels_go_through_the_labels_etl_and_the_monitor_timer_reports(
    host, store, settings, caplog
):
    """The same blob trigger takes delayed labels by their prefix; the daily timer writes its report."""
    from datetime import UTC, datetime, timedelta

    body = b"transaction_id,label,labelled_at,source\nt1,1,2026-11-30T10:00:00Z,chargeback\nt2,7,2026-11-30,x\n"
    store.put_bytes("raw", "labels/cb.csv", body)
    assert host.blob("etl_raw_blob", container="raw", blob_name="labels/cb.csv", connection=DATA).ok
    assert [n for n in store.list_names("curated") if n.startswith("labels/")]
    (rows,) = store.list_names("quarantine", "labels/rows/")
    assert "label must be one of 0, 1" in store.get_bytes("quarantine", rows)[0].decode()
    assert store.list_names("curated", "creditcard/") == []  # never taken for transactions
    result = host.timer("monitor_daily", past_due=False)
    assert result.ok, result.error
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert store.list_names("reports", "monitoring/") == [
        f"monitoring/{yesterday}.html",
        f"monitoring/{yesterday}.json",
    ]
