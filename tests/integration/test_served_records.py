"""Over a real socket: every served prediction recorded with its request id, spans and metrics exported."""

from __future__ import annotations

import io

import httpx
import pyarrow.parquet as pq
import pytest

from cli.devtools.models import publish_synthetic_model
from cli.server import running_server
from shared.domain.layout import PREDICTIONS

FEATURES = [f"V{i}" for i in range(1, 29)] + ["Amount"]


def _txn(i: int, **over) -> dict:
    return {
        "transaction_id": f"t{i}",
        "customer_id": f"cust-{i % 2}",
        "Time": float(i),
        **dict.fromkeys(FEATURES, 0.1),
    } | over


@pytest.fixture
def served(store, settings, monkeypatch):
    from tests.conftest import clear_caches

    monkeypatch.setenv("PREDICTIONS_FLUSH_SECONDS", "3600")  # only the shutdown flush writes
    clear_caches()
    publish_synthetic_model(store, settings.model_name, version="v1", trees=40, seed=1, threshold=0.5)
    with running_server() as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http
    clear_caches()


def _records(store) -> list[dict]:
    return [
        row
        for name in store.list_names(PREDICTIONS, "date=")
        for row in pq.read_table(io.BytesIO(store.get_bytes(PREDICTIONS, name)[0])).to_pylist()
    ]


def _http_counts(telemetry) -> dict[str, float]:
    """The cumulative request metrics this test reads (the SDK's sums run for the whole session)."""
    route = {"http.route": "/api/score"}
    return {
        "2xx": telemetry.total("fraudops.http.requests", **route, **{"http.response.status_class": "2xx"}),
        "4xx": telemetry.total("fraudops.http.requests", **route, **{"http.response.status_class": "4xx"}),
        "duration": telemetry.total("fraudops.http.duration", **route),
        "scored": telemetry.total("fraudops.score.transactions", source="http", model_version="v1"),
        "unmatched": telemetry.total("fraudops.http.requests", **{"http.route": "unmatched"}),
    }


def test_json_and_csv_predictions_are_recorded_with_the_callers_request_id(store, served, telemetry):
    from tests.conftest import clear_caches

    before = _http_counts(telemetry)

    first = served.post("/api/score", json={"transactions": [_txn(0), _txn(1)]}, headers={"x-request-id": "abc-1"})
    assert first.status_code == 200 and first.headers["x-request-id"] == "abc-1"
    body = "transaction_id,customer_id," + ",".join(FEATURES) + "\nt9,cust-9," + ",".join(["0.2"] * 29) + "\n"
    second = served.post("/api/score", content=body, headers={"content-type": "text/csv"})
    assert second.status_code == 200 and len(second.headers["x-request-id"]) == 32  # made here when not given
    hostile = served.post(
        "/api/score", json={"transactions": [_txn(3)]}, headers={"x-request-id": "x" * 65 + "<script>"}
    )
    assert hostile.headers["x-request-id"] != "x" * 65  # not echoed: replaced by one of ours
    refused = served.post("/api/score", json={"transactions": [_txn(4, V1="bad")]})
    assert refused.status_code == 422
    assert _records(store) == []  # not yet: written off the request path
    clear_caches()  # the shutdown path: what is buffered is written
    rows = sorted(_records(store), key=lambda r: r["transaction_id"])
    assert [r["transaction_id"] for r in rows] == ["t0", "t1", "t3", "t9"]  # the refused request is not a prediction
    by_id = {r["transaction_id"]: r for r in rows}
    served_answer = {r["transaction_id"]: r for r in first.json()["results"]}
    from shared.domain.pseudonym import for_settings
    from shared.domain.settings import get_settings

    pseudonym = for_settings(get_settings())  # what the edge stored in place of the caller's customer id
    assert by_id["t0"]["request_id"] == "abc-1" and by_id["t0"]["customer_id"] == pseudonym("cust-0")
    assert by_id["t0"]["fraud_probability"] == pytest.approx(served_answer["t0"]["fraud_probability"])
    assert by_id["t0"]["is_fraud"] == served_answer["t0"]["is_fraud"] and by_id["t0"]["model_version"] == "v1"
    assert by_id["t1"]["event_time"] == 1.0 and by_id["t0"]["latency_ms"] > 0 and by_id["t0"]["threshold"] == 0.5
    assert by_id["t9"]["request_id"] == second.headers["x-request-id"] and by_id["t9"]["customer_id"] == pseudonym(
        "cust-9"
    )
    assert by_id["t9"]["V3"] == pytest.approx(0.2)

    names = {s.name for s in telemetry.spans()}
    assert {"score.request", "score.decode", "score.model", "score.encode"} <= names
    request_span = next(s for s in telemetry.spans("score.request") if s.attributes.get("media") == "text/csv")
    assert request_span.attributes["model_version"] == "v1"
    after = _http_counts(telemetry)
    assert {k: after[k] - before[k] for k in after} == {"2xx": 3, "4xx": 1, "duration": 4, "scored": 4, "unmatched": 0}
    assert telemetry.total("fraudops.predictions.recorded") >= 4
    # every answer counted by status class, for the monitoring run's 5xx share (3 scored and a 422)
    from datetime import UTC, datetime

    from shared.monitoring.service import _answers

    assert _answers(store, datetime.now(UTC).date().isoformat()) == {"2xx": 3, "4xx": 1}


def test_an_unmatched_path_is_one_series_not_one_per_path(served, telemetry):
    before = _http_counts(telemetry)["unmatched"]
    for i in range(3):
        assert served.get(f"/api/nothing-{i}").status_code == 404
    assert _http_counts(telemetry)["unmatched"] - before == 3
    assert not [p for p in telemetry.points("fraudops.http.requests") if "nothing" in str(p.attributes)]


def test_fraudops_serve_writes_what_it_buffered_when_stopped(store, settings, azurite, tmp_path):
    """SIGTERM (how a platform stops a process): uvicorn shuts down, the lifespan writes the buffer."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from cli.devtools.azurite import storage_env
    from cli.server import free_port
    from shared.adapters.function_keys import HEADER
    from tests.conftest import ROOT

    publish_synthetic_model(store, settings.model_name, version="v1", trees=20, seed=1)
    port = free_port()
    env = {
        **os.environ,
        **storage_env(azurite),
        "PREDICTIONS_FLUSH_SECONDS": "3600",
        "PREDICTIONS_FLUSH_ROWS": "100000",
    }
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--function-key", "k"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/health", headers={HEADER: "k"}, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        for i in range(3):
            body = {"transactions": [_txn(10 * i + k) for k in range(4)]}
            assert httpx.post(f"{url}/api/score", json=body, headers={HEADER: "k"}).status_code == 200
        assert _records(store) == []  # buffered: an hour until the next timed write
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    assert server.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its graceful shutdown
    assert sorted(r["transaction_id"] for r in _records(store)) == sorted(
        f"t{10 * i + k}" for i in range(3) for k in range(4)
    )
