"""Every stored document as today's code wrote it (tests/fixtures/documents/, before the typed homes) still reads.

Each fixture is read through its typed home, keeps every key it had, and survives a write and a read
back through the one reader/writer (``shared.adapters.documents``) with its values unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.adapters import documents
from shared.adapters.memory_store import MemoryBlobStore
from shared.domain import layout
from shared.domain.documents import StoredDocument
from shared.domain.documents.etl import DatasetManifest, EtlReport
from shared.domain.documents.federated import FederatedReport, LatestRound, RoundState
from shared.domain.documents.governance import AuditLine, AuditReport, ErasureMarker
from shared.domain.documents.model import ChampionPointer, Deprecation, ModelManifest
from shared.domain.documents.monitoring import MonitoringReport
from shared.domain.documents.streaming import StreamProgress
from shared.domain.documents.training import DriftReport, TrainingReport
from shared.domain.errors import CorruptDocumentError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "documents"
HOMES: dict[str, type[StoredDocument]] = {
    "model_manifest.json": ModelManifest,
    "model_manifest_federated.json": ModelManifest,
    "model_manifest_synthetic.json": ModelManifest,
    "champion_pointer.json": ChampionPointer,
    "deprecation_record.json": Deprecation,
    "dataset_manifest.json": DatasetManifest,
    "etl_report.json": EtlReport,
    "labels_etl_report.json": EtlReport,
    "training_report.json": TrainingReport,
    "training_failed_report.json": TrainingReport,
    "drift_report.json": DriftReport,
    "monitoring_report.json": MonitoringReport,
    "federated_round_state.json": RoundState,
    "federated_round_state_open.json": RoundState,
    "federated_round_state_statistics.json": RoundState,
    "federated_latest_round.json": LatestRound,
    "federated_round_report.json": FederatedReport,
    "audit_monthly_report.json": AuditReport,
    "erasure_plan.json": ErasureMarker,
    "erasure_marker.json": ErasureMarker,
    "stream_ledger.json": StreamProgress,
    "stream_ledger_pending.json": StreamProgress,
}


def test_every_fixture_has_a_typed_home():
    stored = {p.name for p in FIXTURES.glob("*.json")}
    assert stored == set(HOMES)


@pytest.mark.parametrize("name", sorted(HOMES))
def test_todays_document_reads_and_round_trips(name):
    data = (FIXTURES / name).read_bytes()
    original = json.loads(data)
    cls = HOMES[name]

    doc = documents.decode(cls, data, where=name)
    assert doc.schema_version == 1  # written before the field existed
    kept = doc.to_dict()
    assert set(original) <= set(kept)  # no key dropped, known or not

    store = MemoryBlobStore()
    store.ensure_containers()
    documents.write(store, layout.REPORTS, f"fixture/{name}", doc, overwrite=False)
    again, _ = documents.read(store, layout.REPORTS, f"fixture/{name}", cls)
    assert again.to_dict() == kept
    assert {k: again.to_dict()[k] for k in original} == {k: kept[k] for k in original}


def test_todays_audit_lines_read_as_typed_lines():
    lines = (FIXTURES / "audit_chain.jsonl").read_text().splitlines()
    assert len(lines) >= 2
    parsed = [documents.decode(AuditLine, line.encode(), where="audit_chain.jsonl") for line in lines]
    assert [p.seq for p in parsed] == sorted(p.seq for p in parsed)
    assert all(p.hash == json.loads(line)["hash"] for p, line in zip(parsed, lines, strict=True))


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "champion.json is not a readable ChampionPointer"),
        (b'{"manifest_sha256": "x"}', "version"),
        (b'{"version": ["a list"]}', "version"),
    ],
)
def test_an_unreadable_document_is_refused_with_where_and_why(body, says):
    with pytest.raises(CorruptDocumentError) as caught:
        documents.decode(ChampionPointer, body, where="models/fraud/champion.json")
    assert says in caught.value.reason
    assert "models/fraud/champion.json" in caught.value.reason
