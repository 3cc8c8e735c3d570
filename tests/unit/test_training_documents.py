"""Retraining's reports as typed documents: today's reports and older ones read back, with an explicit status."""

from __future__ import annotations

import json

from shared.adapters import documents
from shared.adapters.memory_store import MemoryBlobStore
from shared.domain import layout
from shared.domain.documents.training import DriftReport, TrainingReport


def test_a_report_written_before_the_status_was_explicit_reads_as_its_outcome():
    old = {"model_version": "v1", "dataset_version": "d1", "promoted": True, "status": "trained", "auc": 0.9}
    kept = {**old, "promoted": False}
    assert documents.decode(TrainingReport, json.dumps(old).encode(), where="old").status == "promoted"
    rejected = documents.decode(TrainingReport, json.dumps(kept).encode(), where="old")
    assert rejected.status == "rejected" and rejected.succeeded and rejected.schema_version == 1


def test_a_failed_run_report_round_trips_and_keeps_what_it_does_not_name():
    store = MemoryBlobStore()
    store.ensure_containers((layout.REPORTS,))
    failed = TrainingReport(
        status="failed",
        reason="parity",
        started_at="2026-01-01T00:00:00+00:00",
        failed_at="2026-01-01T00:01:00+00:00",
        champion_untouched=True,
    )
    name = layout.training_report("failed-20260101T000000000000Z")
    documents.write(store, layout.REPORTS, name, failed)
    back, _ = documents.read(store, layout.REPORTS, name, TrainingReport)
    assert back.status == "failed" and not back.succeeded and back.at == "2026-01-01T00:01:00+00:00"
    summary = TrainingReport.model_validate({"status": "promoted", "model_version": "v2", "search": {"trials": 3}})
    assert summary.to_dict()["search"] == {"trials": 3}  # the summary's other keys travel unchanged


def test_a_drift_report_as_the_check_writes_it_reads_back():
    document = {
        "checked": True,
        "alert": False,
        "message": "no drift alert: 0 of 2 features shifted",
        "champion": "v1",
        "reference": "training data of champion v1",
        "current": "curated/creditcard/part.parquet",
        "rows_reference": 10,
        "rows_current": 5,
        "psi_threshold": 0.2,
        "alert_share": 0.3,
        "drifted_features": [],
        "drifted_share": 0.0,
        "features": {"V1": {"psi": 0.01}},
    }
    report = documents.decode(DriftReport, json.dumps(document).encode(), where="drift")
    assert report.features == {"V1": {"psi": 0.01}} and not report.alert
