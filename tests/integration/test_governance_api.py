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
