"""Governance's and monitoring's stored documents read what today's code wrote before they were typed: audit lines
(byte for byte: the chain's hashes must hold), erasure markers, monthly audit and daily monitoring reports."""

from __future__ import annotations

import hashlib
import json

from shared.adapters import documents
from shared.domain.audit import GENESIS, Act, seal, verify
from shared.domain.documents.governance import AuditLine, AuditReport, ErasureDone, ErasureMarker, ErasurePlan
from shared.domain.documents.monitoring import MonitoringReport


def _legacy_line(doc: dict) -> bytes:
    """An audit line as the code before the typed line wrote it: canonical JSON of the dict, hash included."""
    body = {k: v for k, v in doc.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode()
    sealed = {**body, "hash": hashlib.sha256(canonical).hexdigest()}
    return json.dumps(sealed, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode() + b"\n"


def test_a_sealed_line_is_byte_for_byte_the_legacy_line_and_both_verify():
    act = Act("promotion", "cli:ops (é)", "better recall", {"model": "m", "version": "v1", "previous": None, "x": 1.5})
    line = seal(act, seq=0, prev=GENESIS)
    legacy = _legacy_line(
        {
            "seq": 0,
            "id": act.id,
            "at": act.at,
            "act": act.act,
            "actor": act.actor,
            "reason": act.reason,
            "details": act.details,
            "prev": GENESIS,
        }
    )
    assert line.to_json() == legacy
    assert AuditLine.parse(legacy) == line
    second = seal(Act("rollback", "cli:ops", "bad"), seq=1, prev=line.hash)
    report = verify([("chain/2026-11.jsonl", legacy + second.to_json())])
    assert report.intact and report.lines == 2 and report.head_hash == second.hash


def test_erasure_markers_as_written_before_read_back():
    started = {
        "pseudonym": "cust_ab",
        "status": "started",
        "started_at": "2026-12-01T00:00:00+00:00",
        "plan": {"curated/a.parquet": "curated/a-erased-ab.parquet"},
        "transactions": ["t1"],
        "raw": ["bank.csv"],
        "raw_pending": [],
    }
    older = {k: v for k, v in started.items() if k not in ("raw", "raw_pending")}  # before raw files were erased
    done = {"pseudonym": "cust_ab", "status": "done", "started_at": "x", "erased_at": "y"}
    for doc in (started, older, done):
        marker = documents.decode(ErasureMarker, json.dumps(doc, indent=1).encode(), where="test")
        assert marker.status == doc["status"] and marker.schema_version == 1
    assert documents.decode(ErasureMarker, json.dumps(older).encode(), where="t").raw == []
    written = json.loads(ErasureDone(pseudonym="cust_ab", started_at="x", erased_at="y").to_json())
    # a finished marker keeps the pseudonym, the times and what was done (counts, the files left), no record
    assert set(written) == {*done, "schema_version", "records", "places", "raw_deleted", "raw_pending"}
    plan = ErasurePlan(**{k: v for k, v in started.items() if k != "status"})
    assert json.loads(plan.to_json())["plan"] == started["plan"]


def test_reports_as_written_before_read_back():
    audit = {
        "month": "2026-11",
        "predictions": {"total": 0, "per_day_and_version": []},
        "model_changes": [],
        "data_subject_requests": [],
        "key_changes": [],
        "retrains": {"promoted": 1},
        "round_transitions": 0,
        "realised": [],
        "audit_chain": {"intact": True, "lines": 0, "head_seq": None, "head_hash": GENESIS, "broken": None},
    }
    assert documents.decode(AuditReport, json.dumps(audit, indent=1).encode(), where="t").retrains == {"promoted": 1}
    monitoring = {
        "day": "2026-12-03",
        "window": ["2026-11-04", "2026-12-03"],
        "champion": None,
        "level": "no_data",
        "verdicts": [],
        "realised": [],
        "served_today": 0,
        "share_flagged_today": None,
        "score_psi": None,
        "feature_psi": {},
        "score_shares": {},
        "history": {},
        "report": "reports/monitoring/2026-12-03.json",
        "audit_chain": {},
    }
    report = documents.decode(MonitoringReport, json.dumps(monitoring, indent=1).encode(), where="t")
    assert report.level == "no_data" and report.schema_version == 1
