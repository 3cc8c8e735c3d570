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


def test_the_admin_key_is_checked_before_the_body_is_read_and_refusals_are_counted(admin, telemetry, caplog):
    """Issue 39, finding 12: a large body with a wrong key was read and parsed first (422 after about 90 MB of
    allocations), and no refusal was logged or counted. Now 401 before the body; a body over the bound 413,
    declared or streamed; each refusal logged without the key and counted."""
    import logging

    from api.admin_gate import MAX_BODY_BYTES

    big = b"{" + b" " * (8 * 1024 * 1024) + b"nonsense"
    with caplog.at_level(logging.WARNING, logger="api.admin_gate"):
        r = admin.post(
            "/api/admin/gdpr/access", content=big, headers={**_headers("wrong-key"), "content-type": "application/json"}
        )
    assert r.status_code == 401 and "missing or wrong" in r.json()["detail"]
    assert "refused admin POST /api/admin/gdpr/access" in caplog.text and "wrong-key" not in caplog.text
    assert telemetry.total("fraudops.admin.refused", reason="key") >= 1
    r = admin.post("/api/admin/gdpr/access", content=big, headers={**_headers(), "content-type": "application/json"})
    assert r.status_code == 413 and f"at most {MAX_BODY_BYTES} bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: the bound holds as the body streams in
        for _ in range(100):
            yield b" " * 4096

    r = admin.post(
        "/api/admin/gdpr/access", content=chunks(), headers={**_headers(), "content-type": "application/json"}
    )
    assert r.status_code == 413
    assert telemetry.total("fraudops.admin.refused", reason="body") >= 2
    # a small body with the right key still reaches the route (and its own checks)
    r = admin.post("/api/admin/gdpr/access", json={"customer_id": ""}, headers=_headers())
    assert r.status_code in (400, 422)


def test_rollback_deprecate_and_their_refusals_over_http(admin, store):
    listed = admin.get("/api/admin/models", headers=_headers()).json()
    assert listed["champion"] == VERSIONS[2] and len(listed["versions"]) == 3
    unnamed = admin.post("/api/admin/champion/rollback", json={"reason": "incident 7"}, headers=_headers())
    assert unnamed.status_code == 422 and "to" in unnamed.text  # the target must be named
    rollback = {"reason": "incident 7", "to": VERSIONS[1]}
    r = admin.post("/api/admin/champion/rollback", json=rollback, headers=_headers())
    assert r.status_code == 200 and r.json()["champion"] == VERSIONS[1] and r.json()["previous"] == VERSIONS[2]
    replayed = admin.post("/api/admin/champion/rollback", json=rollback, headers=_headers())
    assert replayed.status_code == 409  # the same request again moves nothing further back
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
    r = admin.post("/api/admin/champion/rollback", json={"reason": "x", "to": VERSIONS[0]}, headers=_headers())
    assert r.status_code == 422  # a reason of fewer than three characters says nothing
    shown = admin.get(f"/api/admin/models/{VERSIONS[1]}", headers=_headers()).json()
    assert [h["act"] for h in shown["history"]] == ["promotion", "promotion", "rollback"]
    entries = AuditLog(store).entries()
    assert [e.act for e in entries if e.act != "admin_call"][-2:] == ["rollback", "deprecation"]
    reads = [e.reason for e in entries if e.act == "admin_call"]  # who looked at what, refusals aside
    assert reads == [
        "listed the model versions",
        "looked at model version 20991231T000000Z-ffffffff",  # the unknown one too: an attempt is an access
        f"looked at model version {VERSIONS[1]}",
    ]
    assert ADMIN not in json.dumps([e.to_dict() for e in entries]) and entries[-1].actor == admin_actor(ADMIN)
    verified = admin.get("/api/admin/audit/verify", headers=_headers()).json()
    assert verified["intact"] and verified["lines"] == len(entries) + 1  # the check is itself an admin call


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
    assert run_etl(store, settings.etl, name="bank.csv").rows_quarantined == 1  # ann's negative amount
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
    assert places == {"curated", "predictions", "quarantine", "raw"}, found["where"]
    records = [rec for recs in found["found"].values() for rec in recs]
    assert {rec.get("transaction_id") for rec in records if rec.get("customer_id") == ann} == {"etl-1", "http-1"}
    assert any(rec.get("label") == 1 and rec.get("transaction_id") == "http-1" for rec in records)  # the label
    assert "ben" not in r.text and for_settings(settings)("ben") not in r.text and "etl-2" not in r.text
    # etl-1, http-1, its label, the quarantined row; and the bank's own files as landed: ann's two lines of
    # bank.csv (by the clear id) and the verdict line of labels/l.csv (by her transaction)
    assert found["where"]["raw/bank.csv"] == 2 and found["where"]["raw/labels/l.csv"] == 1
    assert found["records"] == len(records) == 7
    page = admin.post(
        "/api/admin/gdpr/access", json={"customer_id": "ann"}, headers={**_headers(), "accept": "text/html"}
    )
    assert page.headers["content-type"].startswith("text/html") and f"Records about customer {ann}" in page.text
    [request, _] = [e for e in AuditLog(store).entries() if e.act == "access_request"]
    assert (
        request.details["customer"] == ann and request.details["records"] == 7 and request.actor == admin_actor(ADMIN)
    )
    assert "ann" not in json.dumps([e.to_dict() for e in AuditLog(store).entries()]).replace(ann, "")
    # the same request from the command line: JSON and HTML where asked, a one-line summary last
    from cli.main import main

    capsys.readouterr()
    assert main(["gdpr", "access", "--customer", "ann", "--out", str(tmp_path / "ann.json")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["records"] == 7 and summary["where"] == found["where"]
    assert json.loads((tmp_path / "ann.json").read_text())["records"] == 7 and (tmp_path / "ann.html").exists()


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
    rollback = {"reason": "incident 9", "to": VERSIONS[1]}
    assert admin.post("/api/admin/champion/rollback", json=rollback, headers=_headers()).status_code == 200
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
    # three predictions, the label, and the landed labels file's line (by zoe's transaction m-0)
    assert report["data_subject_requests"][0]["records"] == 5 and report["data_subject_requests"][0]["seconds"] >= 0
    total = report["realised"][-1]
    assert total["labelled"] == 1 and total["frauds"] == 1 and total["caught"] + total["missed"] == 1
    page = store.get_bytes("reports", f"audit/{month}.html")[0].decode()
    for text in (json.dumps(report), page):
        assert "zoe" not in text and for_settings(settings)("zoe") not in text
    assert main(["audit", "report", "--month", "2026-13"]) == 2
    assert "is not YYYY-MM" in capsys.readouterr().err


def _two_customers(admin, store, settings) -> None:
    """ann and ben through the real edges: an ETL file (one of ann's rows refused), HTTP scoring, labels."""
    from shared.etl.labels import ingest_labels
    from shared.etl.service import run_etl
    from tests.conftest import clear_caches

    features = [f"V{i}" for i in range(1, 29)] + ["Amount"]
    header = ",".join(["Time", *features, "Class", "transaction_id", "customer_id"])
    rows = [
        f"{t},{','.join(['0.1'] * 28)},{a},0,etl-{t},{c}"
        for t, a, c in ((1, 5, "ann"), (2, 7, "ben"), (3, -1, "ann"), (4, 9, "ann"))
    ]
    store.put_bytes("raw", "bank.csv", ("\n".join([header, *rows]) + "\n").encode())
    run_etl(store, settings.etl, name="bank.csv")
    txn = {**dict.fromkeys(features, 0.1), "Time": 5.0}
    tx = [{"transaction_id": f"http-{c}", "customer_id": c, **txn} for c in ("ann", "ben")]
    assert admin.post("/api/score", json={"transactions": tx}).status_code == 200
    clear_caches()  # the recorder's shutdown flush
    labels = "transaction_id,label,labelled_at\nhttp-ann,1,2026-12-04T10:00:00Z\nhttp-ben,0,2026-12-04T10:00:00Z\n"
    store.put_bytes("raw", "labels/l.csv", labels.encode())
    ingest_labels(store, name="labels/l.csv")


def _holding(store, needle: str) -> list[str]:
    """Blobs holding ``needle`` (Parquet by its values), leaving out the audit chain and the erasure markers (which
    hold the pseudonym by design)."""
    from tests.test_cli import _blobs_holding

    skip = ("audit/", "curated/_erasures/")
    return [n for n in _blobs_holding(store, needle.encode()) if not n.startswith(skip)]


def _manifest_points_only_at_existing_parts(store) -> bool:
    from shared.etl.manifest import read_manifest

    listed = [f.path for f in read_manifest(store, "creditcard")[0].files]
    return bool(listed) and all(store.list_names("curated", path) == [path] for path in listed)


def test_erasure_removes_every_record_and_keeps_the_customer_out(admin, store, settings):
    from shared.adapters.erasures import erased
    from shared.domain.pseudonym import for_settings
    from shared.etl.manifest import read_manifest
    from shared.etl.service import run_etl

    _two_customers(admin, store, settings)
    bank_file = store.get_bytes("raw", "bank.csv")[0]
    ann, ben = (for_settings(settings)(c) for c in ("ann", "ben"))
    before = read_manifest(store, "creditcard")[0].version
    assert len(_holding(store, ann)) == 3  # the curated part, the quarantined row, the prediction
    assert len(_holding(store, "http-ann")) == 3  # the prediction, the curated label and the landed labels file
    assert _holding(store, ",ann\n") == ["raw/bank.csv"]  # the clear id: only in the bank's own upload
    store.put_bytes("raw", "late.csv", bank_file)  # landed, its ETL not run yet
    r = admin.post("/api/admin/gdpr/erase", json={"customer_id": "ann"}, headers=_headers())
    assert r.status_code == 202, r.text  # accepted: it runs in the background, and says where to look
    assert r.json()["status"] == "requested" and r.json()["location"] == f"/api/admin/gdpr/erasures/{ann}"
    done = _until_done(admin, r.json()["location"])
    # two curated rows, the quarantined line, the prediction, the label of its transaction
    assert done["records"] == 5 and done["places"] == 4
    assert done["raw_deleted"] == 2  # the processed bank file and labels file
    assert done["raw_pending"] == ["late.csv"]  # not processed: named, to erase again after its ETL
    assert _holding(store, ",ann\n") == ["raw/late.csv"] and store.list_names("raw") == ["late.csv"]
    store.delete("raw", "late.csv")
    assert read_manifest(store, "creditcard")[0].version != before and _manifest_points_only_at_existing_parts(store)
    assert _holding(store, ann) == [] and _holding(store, "http-ann") == []
    assert (
        len(_holding(store, ben)) == 2 and len(_holding(store, "http-ben")) == 2
    )  # ben's rows, prediction, label stay
    found = admin.post("/api/admin/gdpr/access", json={"customer_id": "ann"}, headers=_headers()).json()
    assert found["records"] == 0
    assert erased(store) == {ann}  # the exclusion list: the pseudonym alone
    [request] = [e for e in AuditLog(store).entries() if e.act == "erasure_request"]
    assert request.details["customer"] == ann and request.details["records"] == 5
    # the bank sends the same file again: ann's rows are dropped before anything is written
    store.put_bytes("raw", "bank-again.csv", bank_file)
    again = run_etl(store, settings.etl, name="bank-again.csv")
    assert again.rows_erased == 3 and _holding(store, ann) == []  # two valid rows and the refused one


def _until_done(admin, location: str, seconds: float = 60.0) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = admin.get(location, headers=_headers())
        assert status.status_code == 200, status.text
        if status.json()["status"] == "done":
            return status.json()
        time.sleep(0.1)
    raise AssertionError(f"the erasure at {location} did not finish in {seconds} s: {status.json()}")


def test_two_erasures_asked_for_at_once_both_take_effect(admin, store, settings):
    """Issue 39, finding 2: two erasures rewriting the same part each kept the other's customer, and the audit
    chain recorded the second as done with 0 records. Now they run one at a time (a claim) and each checks again
    after its commit; both customers are gone, each audited with its own records."""
    from shared.domain.pseudonym import for_settings

    _two_customers(admin, store, settings)
    ann, ben = (for_settings(settings)(c) for c in ("ann", "ben"))
    assert _holding(store, ann) and _holding(store, ben)
    locations = [
        admin.post("/api/admin/gdpr/erase", json={"customer_id": c}, headers=_headers()).json()["location"]
        for c in ("ann", "ben")
    ]
    assert admin.get("/api/admin/gdpr/erasures/" + "cust_" + "0" * 32, headers=_headers()).status_code == 404
    outcomes = [_until_done(admin, where) for where in locations]
    assert _holding(store, ann) == [] and _holding(store, ben) == []
    assert [o["records"] for o in outcomes] == [5, 3]  # ben: one curated row, the prediction, its label
    audited = {
        e.details["customer"]: e.details["records"] for e in AuditLog(store).entries() if e.act == "erasure_request"
    }
    assert audited == {ann: 5, ben: 3} and _manifest_points_only_at_existing_parts(store)
    assert "_erasure.lock" not in store.list_names("curated")  # released


def test_an_erasure_waits_for_the_running_one_and_erases_what_landed_while_it_ran(store, settings, monkeypatch):
    """Issue 39, finding 2 at the library's level: while one erasure holds the claim another is refused with why
    (the route's background run waits and retries); a part that lands while an erasure runs (an ETL that read
    the exclusion list before the request) is found again after the commit and erased too."""
    from shared.domain.errors import ErasureBusyError
    from shared.domain.pseudonym import for_settings
    from shared.etl.service import run_etl
    from shared.governance.gdpr import erase

    features = [f"V{i}" for i in range(1, 29)] + ["Amount"]
    header = ",".join(["Time", *features, "Class", "transaction_id", "customer_id"])

    def upload(name: str, rows: list[tuple[int, str]]) -> None:
        lines = [f"{t},{','.join(['0.1'] * 28)},5,0,{name}-{t},{c}" for t, c in rows]
        store.put_bytes("raw", name, ("\n".join([header, *lines]) + "\n").encode())
        run_etl(store, settings.etl, name=name)

    upload("one.csv", [(1, "ann"), (2, "ben")])
    p = for_settings(settings)

    class Interleaved:
        """The store, but while ann's erasure rewrites its first part, ben's erasure is asked for and a file the
        ETL accepted before the request lands (an ETL run that read the exclusion list first)."""

        def __init__(self, inner) -> None:
            self.inner, self.busy = inner, None

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def put_bytes(self, container, name, data, **kwargs):
            if "-erased-" in name and self.busy is None:
                with pytest.raises(ErasureBusyError) as refused:
                    erase(self.inner, p, "ben", actor="test", dataset="creditcard")
                self.busy = str(refused.value)
                with monkeypatch.context() as m:  # an ETL run that read the exclusion list before the request
                    m.setattr("shared.etl.service.erased", lambda _store: frozenset())
                    upload("two.csv", [(3, "ann")])
            return self.inner.put_bytes(container, name, data, **kwargs)

    interleaved = Interleaved(store)
    first = erase(interleaved, p, "ann", actor="test", dataset="creditcard")
    assert "another erasure is running" in interleaved.busy and "runs after it" in interleaved.busy
    assert first.records_removed == 2 and _holding(store, p("ann")) == []  # the part that landed meanwhile too
    second = erase(store, p, "ben", actor="test", dataset="creditcard")
    assert second.records_removed == 1 and _holding(store, p("ben")) == []


def test_an_erasure_the_instance_lost_is_resumed_and_counted_as_pending_until_then(admin, store, settings, capsys):
    """Issue 39, finding 5: an erasure interrupted was never resumed or reported. A request accepted and never run
    (the instance recycled) is pending: listed by the monthly report, finished by ``fraudops gdpr resume`` (the
    daily monitor runs the same), which says it could not search the landing zone without the clear id."""
    from cli.main import main
    from shared.adapters.erasures import requested
    from shared.domain.pseudonym import for_settings
    from shared.governance.gdpr import request_erasure
    from shared.governance.report import audit_report

    _two_customers(admin, store, settings)
    ann = for_settings(settings)("ann")
    assert request_erasure(store, for_settings(settings), "ann", dataset="creditcard") == ann  # and then nothing ran
    assert requested(store) == [ann]
    month = time.strftime("%Y-%m", time.gmtime())
    assert audit_report(store, settings.governance, month).erasures_pending == 1
    status = admin.get(f"/api/admin/gdpr/erasures/{ann}", headers=_headers()).json()
    assert status["status"] == "requested"
    assert main(["gdpr", "resume"]) == 0
    out = json.loads(capsys.readouterr().out)
    [finished] = out["finished"]
    assert finished["records"] == 5 and out["still_pending"] == []
    assert "was not searched" in finished["raw_pending"][0]
    assert _holding(store, ann) == [] and audit_report(store, settings.governance, month).erasures_pending == 0


def test_an_erasure_that_crashed_midway_resumes_and_never_leaves_the_manifest_dangling(admin, store, settings):
    from shared.domain.pseudonym import for_settings
    from shared.governance.gdpr import erase

    class Crashing:
        """The store, but the first delete of an old curated part fails (the instance died there)."""

        def __init__(self, inner) -> None:
            self.inner, self.crashed = inner, False

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def delete(self, container, name, **kwargs):
            if container == "curated" and not self.crashed:
                self.crashed = True
                raise ConnectionError("the instance was recycled")
            return self.inner.delete(container, name, **kwargs)

    _two_customers(admin, store, settings)
    p = for_settings(settings)
    with pytest.raises(ConnectionError):
        erase(Crashing(store), p, "ann", actor="test", dataset="creditcard")
    assert _manifest_points_only_at_existing_parts(store)  # committed before any delete
    assert not [e for e in AuditLog(store).entries() if e.act == "erasure_request"]  # not done: not claimed
    outcome = erase(store, p, "ann", actor="test", dataset="creditcard")
    assert outcome.resumed and _manifest_points_only_at_existing_parts(store)
    assert _holding(store, p("ann")) == [] and _holding(store, "http-ann") == [] and len(_holding(store, p("ben"))) == 2


def test_a_customers_rights_on_a_dataset_without_a_customer_column_are_refused_with_why(store, settings, monkeypatch):
    from tests.conftest import clear_caches

    monkeypatch.setenv("ADMIN_KEY", ADMIN)
    monkeypatch.setenv("DATASET_NAME", "home_credit")  # loan applications: no customer column declared
    clear_caches()
    try:
        with running_server() as url, httpx.Client(base_url=url, timeout=60) as http:
            for route in ("/api/admin/gdpr/access", "/api/admin/gdpr/erase"):
                r = http.post(route, json={"customer_id": "ann"}, headers=_headers())
                assert r.status_code == 400, (route, r.text)
                assert "home_credit declares no customer column" in r.json()["detail"], r.text
    finally:
        clear_caches()
