"""The ETL's stored documents: today's reports and manifests still read; the reports say which files were handled."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from shared.adapters import documents
from shared.domain.documents.etl import DatasetManifest, EtlReport
from shared.domain.results import as_dict
from shared.etl.labels import ingest_labels
from shared.etl.reports import processed_files
from shared.etl.service import EtlOutcome

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
LABELS = b"transaction_id,label,labelled_at\nt1,1,2026-12-03T10:00:00Z\nt2,7,2026-12-03T10:00:00Z\n"


def _outcome() -> EtlOutcome:
    return EtlOutcome(
        status="processed",
        reason=None,
        source="raw/bank.csv",
        source_etag='"0x1"',
        sha256="ab" * 32,
        dataset="creditcard",
        input_bytes=120,
        rows_in=3,
        rows_valid=2,
        rows_quarantined=1,
        outputs=["curated/creditcard/ingest_date=2026-12-04/bank-0123456789abcdef.parquet"],
        parts=1,
        quarantine="quarantine/creditcard/rows/bank-abababababababab.csv",
        report="reports/etl/creditcard/bank-abababababababab.json",
        dataset_version="0123456789abcdef",
        schema=[{"name": "Amount", "type": "double"}],
        quarantine_reasons={"wrong field count": 1},
        columns={"Amount": {"count": 2, "empty": 0, "min": 1.0, "max": 2.0, "mean": 1.5}},
        timing={"read_validate_write_seconds": 0.1},
    )


def test_a_report_as_written_before_the_schema_version_still_reads():
    outcome = _outcome()
    written_today = json.dumps(as_dict(outcome), indent=1, default=str).encode()  # what the ETL used to write
    report = documents.decode(EtlReport, written_today, where="reports/etl/creditcard/bank.json")
    assert report.schema_version == 1 and report.raw_name == "bank.csv"
    assert {k: v for k, v in report.to_dict().items() if k != "schema_version"} == as_dict(outcome)


def test_a_report_keeps_every_key_of_the_outcome():
    stored = json.loads(EtlReport.model_validate(as_dict(_outcome())).to_json())
    assert stored == {**as_dict(_outcome()), "schema_version": 1}


def test_a_manifest_as_written_before_the_schema_version_still_reads():
    written_today = {
        "dataset": "creditcard",
        "files": [
            {
                "path": "creditcard/a.parquet",
                "rows": 3,
                "bytes": 10,
                "sha256": "0" * 64,
                "source_blob": "raw/a.csv",
                "source_etag": "e",
                "ingested_at": "2026-12-04T00:00:00+00:00",
            }
        ],
        "version": "v",
        "updated_at": "2026-12-04T00:00:00+00:00",
        "versions": [{"version": "v", "created_at": "2026-12-04T00:00:00+00:00", "files_count": 1}],
    }
    m = documents.decode(DatasetManifest, json.dumps(written_today).encode(), where="curated/creditcard/_manifest.json")
    assert (m.version, m.files[0].rows, m.files_of(m.versions[0])) == ("v", 3, ["creditcard/a.parquet"])
    assert json.loads(m.to_json()) == {**written_today, "schema_version": 1}


def test_processed_files_lists_every_handled_raw_file_with_what_became_of_it(memory_store):
    memory_store.put_bytes("raw", "labels/l.csv", LABELS)
    memory_store.put_bytes("raw", "labels/big.txt", b"\xff\xfe not text")
    kept = ingest_labels(memory_store, name="labels/l.csv", now=NOW)
    refused = ingest_labels(memory_store, name="labels/big.txt", now=NOW)
    found = {r.raw_name: r for r in processed_files(memory_store)}
    assert set(found) == {"labels/l.csv", "labels/big.txt"}
    assert found["labels/l.csv"].status == "processed" and found["labels/big.txt"].status == "rejected"
    for outcome in (kept, refused):
        report = found[outcome.source.removeprefix("raw/")]
        assert (report.source, report.source_etag, report.input_bytes) == (
            outcome.source,
            outcome.source_etag,
            outcome.input_bytes,
        )
        assert (report.outputs, report.quarantine, report.report) == (
            outcome.outputs,
            outcome.quarantine,
            outcome.report,
        )
    assert [r.raw_name for r in processed_files(memory_store, "labels")] == sorted(found)
    assert processed_files(memory_store, "creditcard") == []
