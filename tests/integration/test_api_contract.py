"""The scoring contract over a real socket: pinning, explanations, CSV, every error status, hot swaps."""

from __future__ import annotations

import csv
import io
import math
import threading

import httpx
import pytest

from cli.devtools.models import publish_synthetic_model
from cli.server import running_server
from shared.adapters.model_store import ModelStore

FEATURES = [f"V{i}" for i in range(1, 29)] + ["Amount"]


def _txn(i: int = 0, **over) -> dict:
    body = {"transaction_id": f"t{i}", "Time": 10.0, **{f: 0.1 * (k % 5) for k, f in enumerate(FEATURES)}}
    body.update(over)
    return body


def _csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.fixture
def served(store, settings, monkeypatch):
    """Two published versions (v1 champion, v2 not promoted) and the API on a free loopback port."""
    from tests.conftest import clear_caches

    monkeypatch.setenv("MODEL_REFRESH_SECONDS", "0")
    clear_caches()
    publish_synthetic_model(store, settings.model_name, version="v1", trees=40, seed=1)
    publish_synthetic_model(store, settings.model_name, version="v2", trees=60, seed=2, promote=False)
    with running_server() as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http
    clear_caches()


def test_each_result_names_the_model_and_a_version_can_be_pinned(served):
    batch = {"transactions": [_txn(0), _txn(1, V14=-9.0)]}
    plain = served.post("/api/score", json=batch).json()
    assert [r["model_version"] for r in plain["results"]] == ["v1", "v1"]
    by_body = served.post("/api/score", json={**batch, "model_version": "v2"}).json()
    by_header = served.post("/api/score", json=batch, headers={"x-model-version": "v2"}).json()
    assert by_body == by_header and by_body["model_version"] == "v2"
    assert by_body["results"][0]["fraud_probability"] != plain["results"][0]["fraud_probability"]
    missing = served.post("/api/score", json={**batch, "model_version": "v9"})
    assert missing.status_code == 404 and "v9 does not exist" in missing.json()["detail"]


def test_explanations_sum_to_the_raw_score_of_the_served_probability(served):
    rows = [_txn(0), _txn(1, V14=-9.0, V17=-7.0), _txn(2, Amount=5000.0)]
    for response in (
        served.post("/api/score?explain=true", json={"transactions": rows}),
        served.post("/api/score", json={"transactions": rows, "explain": True}),
    ):
        assert response.status_code == 200
        for result in response.json()["results"]:
            e = result["explanation"]
            assert len(e["contributions"]) == 5
            sizes = [abs(c["contribution"]) for c in e["contributions"]]
            assert sizes == sorted(sizes, reverse=True)
            assert 1 / (1 + math.exp(-e["raw_score"])) == pytest.approx(result["fraud_probability"], abs=1e-4)
    full = served.post("/api/score?explain=true", json={"transactions": rows[1:2]}).json()["results"][0]
    assert full["explanation"]["contributions"][0]["feature"] in {"V14", "V17"}
    assert "explanation" not in served.post("/api/score", json={"transactions": rows}).json()["results"][0]


def test_the_explanation_is_exact_over_all_features(store, settings, served):
    import lightgbm as lgb
    import numpy as np

    booster = lgb.Booster(model_str=ModelStore(store, settings.model_name).file("v1", "model.txt").decode())
    x = np.array([[_txn(3, V14=-4.0)[f] for f in FEATURES]])
    contrib = booster.predict(x, pred_contrib=True)[0]
    assert contrib.sum() == pytest.approx(booster.predict(x, raw_score=True)[0], abs=1e-9)
    served_e = served.post("/api/score?explain=true", json={"transactions": [_txn(3, V14=-4.0)]}).json()
    e = served_e["results"][0]["explanation"]
    assert e["base_value"] == pytest.approx(contrib[-1]) and e["raw_score"] == pytest.approx(contrib.sum())


def test_csv_in_csv_out(served):
    rows = [_txn(i) for i in range(5)]
    r = served.post("/api/score", content=_csv(rows), headers={"content-type": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    out = list(csv.DictReader(io.StringIO(r.text)))
    assert [o["transaction_id"] for o in out] == [f"t{i}" for i in range(5)]
    assert {o["model_version"] for o in out} == {"v1"}
    json_scores = served.post("/api/score", json={"transactions": rows}).json()["results"]
    assert [float(o["fraud_probability"]) for o in out] == pytest.approx([j["fraud_probability"] for j in json_scores])


@pytest.mark.parametrize(
    ("body", "row", "field"),
    [
        ([_txn(0), _txn(1, V3="abc")], 1, "V3"),
        ([_txn(0), _txn(1), _txn(2, Amount=-3)], 2, "Amount"),
        ([_txn(0, V7="")], 0, "V7"),
    ],
)
def test_csv_errors_name_row_and_field(served, body, row, field):
    r = served.post("/api/score", content=_csv(body), headers={"content-type": "text/csv"})
    assert r.status_code == 422
    assert {"row": row, "field": field} in [{k: e[k] for k in ("row", "field")} for e in r.json()["errors"]]


def test_csv_with_unknown_or_missing_columns(served):
    extra = served.post("/api/score", content=_csv([_txn(0, Class=1)]), headers={"content-type": "text/csv"})
    assert extra.status_code == 422 and extra.json()["errors"][0]["field"] == "Class"
    short = [{k: v for k, v in _txn(0).items() if k != "V9"}]
    missing = served.post("/api/score", content=_csv(short), headers={"content-type": "text/csv"})
    assert missing.status_code == 422 and "V9" in missing.text


def test_a_csv_header_naming_a_column_twice_is_refused_with_400_naming_it(served):
    header = ",".join([*_txn(0), "V4"])
    row = ",".join(["t0", "10.0", *["0.1"] * len(FEATURES), "0.3"])
    r = served.post("/api/score", content=f"{header}\n{row}\n".encode(), headers={"content-type": "text/csv"})
    assert r.status_code == 400, r.text
    assert "'V4' more than once" in r.json()["detail"]


def test_every_bad_row_and_field_is_named(served):
    body = {"transactions": [_txn(0), _txn(1, V1="x", Amount=-1), _txn(2, surprise=3)]}
    errors = served.post("/api/score", json=body).json()["errors"]
    named = {(e["row"], e["field"]) for e in errors}
    assert {(1, "V1"), (1, "Amount"), (2, "surprise")} <= named


@pytest.mark.parametrize(
    ("content", "ctype", "status", "words"),
    [
        (b'{"transactions": [', "application/json", 400, "not valid JSON"),
        (b"hello", "text/plain", 415, "not supported"),
        (b"{}", "", 415, "(none)"),
        (b"[1, 2]", "application/json", 422, "JSON object"),
        (b'{"transactions": [], "x": 1}', "application/json", 422, "unknown field"),
        (b'{"transactions": [{"V1": Infinity}]}', "application/json", 422, "V1"),
    ],
)
def test_error_statuses(served, content, ctype, status, words):
    r = served.post("/api/score", content=content, headers={"content-type": ctype} if ctype else {})
    assert r.status_code == status and words in r.json()["detail"] + str(r.json().get("errors"))


def test_body_over_the_byte_limit_is_413_declared_or_streamed(served, monkeypatch):
    from shared.domain.settings import get_settings

    monkeypatch.setenv("SCORE_MAX_BODY_BYTES", "2000")
    get_settings.cache_clear()
    body = httpx.Request("POST", "/", json={"transactions": [_txn(i) for i in range(10)]}).content
    assert len(body) > 2000
    declared = served.post("/api/score", content=body, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "limit of 2000" in declared.json()["detail"]
    streamed = served.post(
        "/api/score", content=iter([body[:1500], body[1500:]]), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


def test_a_model_swap_fails_no_request_in_flight(store, settings, served):
    seen: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=str(served.base_url), timeout=30) as http:
            while not stop.is_set():
                r = http.post("/api/score", json={"transactions": [_txn(0)]})
                seen.append((r.status_code, r.json().get("model_version")))

    workers = [threading.Thread(target=hammer) for _ in range(3)]
    for w in workers:
        w.start()
    while len(seen) < 30:
        threading.Event().wait(0.01)
    models = ModelStore(store, settings.model_name)
    models.promote("v2", expected_etag=models.champion()[1], reason="swap under load")
    before = len(seen)
    while len(seen) < before + 60:
        threading.Event().wait(0.01)
    stop.set()
    for w in workers:
        w.join()
    assert {status for status, _ in seen} == {200}
    versions = [v for _, v in seen]
    assert versions[0] == "v1" and versions[-1] == "v2"
