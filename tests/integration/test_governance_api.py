"""The governance admin routes over real HTTP (uvicorn on a free loopback port): the admin key, the registry's
rules answered with their reasons, every change audited with the key's fingerprint (never the key)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from cli.devtools.models import publish_synthetic_model
from cli.server import running_server
from shared.adapters.audit import AuditLog, admin_actor

ADMIN = "governance-admin-secret"
VERSIONS = ("20261101T000000Z-aaaaaaaa", "20261102T000000Z-bbbbbbbb", "20261103T000000Z-cccccccc")


@pytest.fixture
def admin(store, settings, monkeypatch):
    from tests.conftest import clear_caches

    monkeypatch.setenv("ADMIN_KEY", ADMIN)
    clear_caches()
    for i, version in enumerate(VERSIONS):
        publish_synthetic_model(store, settings.model_name, version=version, trees=3, rows=3000, seed=i)
        time.sleep(0.01)
    with running_server() as url, httpx.Client(base_url=url, timeout=60) as http:
        yield http
    clear_caches()


def _headers(key: str = ADMIN) -> dict[str, str]:
    return {"x-admin-key": key}


def test_the_admin_key_is_required(admin):
    for headers in ({}, _headers("wrong")):
        r = admin.get("/api/admin/models", headers=headers)
        assert r.status_code == 401 and "admin key (X-Admin-Key) is missing or wrong" in r.json()["detail"]
    r = admin.post("/api/admin/champion/rollback", json={"reason": "no key"})
    assert r.status_code == 401


def test_rollback_deprecate_and_their_refusals_over_http(admin, store):
    listed = admin.get("/api/admin/models", headers=_headers()).json()
    assert listed["champion"] == VERSIONS[2] and len(listed["versions"]) == 3
    r = admin.post("/api/admin/champion/rollback", json={"reason": "incident 7"}, headers=_headers())
    assert r.status_code == 200 and r.json()["champion"] == VERSIONS[1] and r.json()["previous"] == VERSIONS[2]
    r = admin.post("/api/admin/champion/rollback", json={"reason": "forward", "to": VERSIONS[2]}, headers=_headers())
    assert r.status_code == 409 and "not earlier than the champion" in r.json()["detail"]
    r = admin.post(f"/api/admin/models/{VERSIONS[1]}/deprecate", json={"reason": "the champion"}, headers=_headers())
    assert r.status_code == 409 and "is the champion" in r.json()["detail"]
    r = admin.post(f"/api/admin/models/{VERSIONS[0]}/deprecate", json={"reason": "leaky feature"}, headers=_headers())
    assert r.status_code == 200 and r.json()["actor"] == admin_actor(ADMIN)
    r = admin.post(f"/api/admin/models/{VERSIONS[0]}/promote", json={"reason": "try"}, headers=_headers())
    assert r.status_code == 410 and "deprecated" in r.json()["detail"]
    score = admin.post(
        "/api/score",
        json={"transactions": [{"transaction_id": "t1", **{f"V{i}": 0.0 for i in range(1, 29)}, "Amount": 1.0}]},
        headers={"x-model-version": VERSIONS[0]},
    )
    assert score.status_code == 410 and "cannot be pinned" in score.json()["detail"]
    assert admin.get("/api/admin/models/20991231T000000Z-ffffffff", headers=_headers()).status_code == 404
    r = admin.post("/api/admin/champion/rollback", json={"reason": "x"}, headers=_headers())
    assert r.status_code == 422  # a reason of fewer than three characters says nothing
    shown = admin.get(f"/api/admin/models/{VERSIONS[1]}", headers=_headers()).json()
    assert [h["act"] for h in shown["history"]] == ["promotion", "promotion", "rollback"]
    entries = AuditLog(store).entries()
    assert [e["act"] for e in entries][-2:] == ["rollback", "deprecation"]
    assert ADMIN not in json.dumps(entries) and entries[-1]["actor"] == admin_actor(ADMIN)
    verified = admin.get("/api/admin/audit/verify", headers=_headers()).json()
    assert verified["intact"] and verified["lines"] == len(entries)


def test_the_right_of_access_finds_exactly_the_customer_s_records(admin, store, settings, tmp_path, capsys):
    """Records of two customers through the real edges (the ETL, HTTP scoring, labels): access for one returns
    its rows everywhere and none of the other's; the clear id is in no record and no audit line."""
    from shared.domain.pseudonym import for_settings
    from shared.etl.labels import ingest_labels
    from shared.etl.service import run_etl
    from tests.conftest import clear_caches

    features = [f"V{i}" for i in range(1, 29)] + ["Amount"]
    header = ",".join(["Time", *features, "Class", "transaction_id", "customer_id"])
    rows = [
        f"{t},{','.join(['0.1'] * 28)},{a},0,etl-{t},{c}" for t, a, c in ((1, 5, "ann"), (2, 7, "ben"), (3, -1, "ann"))
    ]
    store.put_bytes("raw", "bank.csv", ("\n".join([header, *rows]) + "\n").encode())
    assert run_etl(store, settings, name="bank.csv").rows_quarantined == 1  # ann's negative amount
    txn = {**dict.fromkeys(features, 0.1), "Time": 5.0}
    answer = admin.post(
        "/api/score",
        json={
            "transactions": [
                {"transaction_id": "http-1", "customer_id": "ann", **txn},
                {"transaction_id": "http-2", "customer_id": "ben", **txn},
            ]
        },
    )
    assert answer.status_code == 200
    clear_caches()  # the recorder's shutdown flush: the predictions are written
    labels = "transaction_id,label,labelled_at,source\n" + "".join(
        f"{t},{y},2026-12-04T10:00:00Z,{src}\n" for t, y, src in (("http-1", 1, "chargeback"), ("http-2", 0, "review"))
    )
    store.put_bytes("raw", "labels/l.csv", labels.encode())
    ingest_labels(store, name="labels/l.csv")

    r = admin.post("/api/admin/gdpr/access", json={"customer_id": "ann"}, headers=_headers())
    assert r.status_code == 200, r.text
    found = r.json()
    ann = for_settings(settings)("ann")
    assert found["customer_pseudonym"] == ann
    places = {name.split("/")[0] for name in found["where"]}
    assert places == {"curated", "predictions", "quarantine"}, found["where"]
    records = [rec for recs in found["found"].values() for rec in recs]
    assert {rec.get("transaction_id") for rec in records if rec.get("customer_id") == ann} == {"etl-1", "http-1"}
    assert any(rec.get("label") == 1 and rec.get("transaction_id") == "http-1" for rec in records)  # the label
    assert "ben" not in r.text and for_settings(settings)("ben") not in r.text and "etl-2" not in r.text
    assert found["records"] == len(records) == 4  # etl-1, http-1, its label, the quarantined row
    page = admin.post(
        "/api/admin/gdpr/access", json={"customer_id": "ann"}, headers={**_headers(), "accept": "text/html"}
    )
    assert page.headers["content-type"].startswith("text/html") and f"Records about customer {ann}" in page.text
    [request, _] = [e for e in AuditLog(store).entries() if e["act"] == "access_request"]
    assert (
        request["details"]["customer"] == ann
        and request["details"]["records"] == 4
        and request["actor"] == admin_actor(ADMIN)
    )
    assert "ann" not in json.dumps([e for e in AuditLog(store).entries()]).replace(ann, "")
    # the same request from the command line: JSON and HTML where asked, a one-line summary last
    from cli.main import main

    capsys.readouterr()
    assert main(["gdpr", "access", "--customer", "ann", "--out", str(tmp_path / "ann.json")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["records"] == 4 and summary["where"] == found["where"]
    assert json.loads((tmp_path / "ann.json").read_text())["records"] == 4 and (tmp_path / "ann.html").exists()


def test_the_monthly_audit_report_counts_what_happened_and_holds_no_customer(admin, store, settings, capsys):
    from datetime import UTC, datetime

    from cli.main import main
    from shared.domain.pseudonym import for_settings
    from tests.conftest import clear_caches

    txn = {**dict.fromkeys([f"V{i}" for i in range(1, 29)] + ["Amount"], 0.1), "Time": 5.0}
    tx = [{"transaction_id": f"m-{i}", "customer_id": "zoe", **txn} for i in range(3)]
    assert admin.post("/api/score", json={"transactions": tx}).status_code == 200
    clear_caches()  # the shutdown flush
    store.put_bytes("raw", "labels/m.csv", b"transaction_id,label,labelled_at\nm-0,1,2026-12-04T10:00:00Z\n")
    from shared.etl.labels import ingest_labels

    ingest_labels(store, name="labels/m.csv")
    admin.post("/api/admin/champion/rollback", json={"reason": "incident 9"}, headers=_headers())
    admin.post("/api/admin/gdpr/access", json={"customer_id": "zoe"}, headers=_headers())
    month = datetime.now(UTC).strftime("%Y-%m")
    capsys.readouterr()
    assert main(["audit", "report", "--month", month]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["predictions"] == 3 and summary["model_changes"] == 4  # three promotions and the rollback
    assert summary["data_subject_requests"] == 1 and summary["audit_chain_intact"]
    report = json.loads(store.get_bytes("reports", f"audit/{month}.json")[0])
    [day] = report["predictions"]["per_day_and_version"]
    assert day["model_version"] == VERSIONS[2] and day["predictions"] == 3
    assert [c["act"] for c in report["model_changes"]][-1] == "rollback" and report["model_changes"][-1][
        "reason"
    ] == "incident 9"
    # three predictions and the label of one of them
    assert report["data_subject_requests"][0]["records"] == 4 and report["data_subject_requests"][0]["seconds"] >= 0
    total = report["realised"][-1]
    assert total["labelled"] == 1 and total["frauds"] == 1 and total["caught"] + total["missed"] == 1
    page = store.get_bytes("reports", f"audit/{month}.html")[0].decode()
    for text in (json.dumps(report), page):
        assert "zoe" not in text and for_settings(settings)("zoe") not in text
    assert main(["audit", "report", "--month", "2026-13"]) == 2
    assert "is not YYYY-MM" in capsys.readouterr().err
