"""The ETL's stored documents: the dataset manifest and the run report of each landed file.

The dataset manifest (``curated/<dataset>/_manifest.json``, ``layout.dataset_manifest``) lists every
curated part and the history of versions; it is written by the ETL (``shared.etl.manifest``), the
labels' feedback (``shared.monitoring.feedback``) and an erasure (``shared.governance.gdpr``), and
read by training (the window, the drift check, the distributed source). The run report
(``reports/etl/<dataset>/<tag>.json``, ``layout.etl_report``) says what the ETL did with one raw
file: read by people (its HTML page) and by the GDPR access and erasure (which raw files were
processed, ``shared.etl.reports.processed_files``).

The entries of the manifest (a file, a version) are written back exactly as they were read: a key
an older writer did not write is not added on rewrite (a legacy entry stays legacy).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from shared.domain import layout
from shared.domain.documents import StoredDocument


class _Entry(BaseModel):
    """An entry of a stored list: typed, unknown keys kept, and written back with only the keys it was given."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @model_serializer(mode="wrap")
    def _as_stored(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        unset = set(type(self).model_fields) - self.model_fields_set
        return {k: v for k, v in data.items() if k not in unset}


class ManifestFile(_Entry):
    """One curated Parquet file of the dataset: its blob name in ``curated``, size, digest and origin."""

    path: str
    rows: int = 0
    bytes: int = 0
    sha256: str
    source_blob: str = ""  # ``raw/<name>`` (or the curated labels file the labelled rows came from)
    source_etag: str = ""
    ingested_at: str = ""  # ISO 8601, UTC
    replaces: str | None = None  # the part an erasure rewrote into this one


class DatasetVersion(_Entry):
    """One version of the dataset: the first ``files_count`` files of the manifest."""

    version: str
    created_at: str = ""
    files_count: int | None = None
    files: list[str] | None = None  # a version written before versions were counted lists its files


class DatasetManifest(StoredDocument):
    """The dataset's curated files (append-only, except an erasure's replacement) and its versions."""

    dataset: str
    files: list[ManifestFile] = Field(default_factory=list)
    versions: list[DatasetVersion] = Field(default_factory=list)
    version: str | None = None  # the latest
    updated_at: str | None = None

    def files_of(self, version: DatasetVersion) -> list[str]:
        """The curated paths of one of this manifest's versions, sorted."""
        if version.files is not None:
            return list(version.files)
        return sorted(f.path for f in self.files[: version.files_count])


class EtlReport(StoredDocument):
    """What the ETL did with one landed file (``shared.etl.service.EtlOutcome``, as stored)."""

    status: Literal["processed", "rejected"]
    reason: str | None = None
    source: str = ""  # ``raw/<name>``
    source_etag: str = ""
    sha256: str = ""
    dataset: str = ""
    input_bytes: int = 0
    rows_in: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_erased: int = 0
    parquet_bytes: int = 0
    outputs: list[str] = Field(default_factory=list)  # ``curated/<part>``
    parts: int = 0
    quarantine: str | None = None  # ``quarantine/<rows or file>``
    report: str = ""  # ``reports/etl/<dataset>/<tag>.json``
    dataset_version: str | None = None
    read_mode: str | None = None
    text_batches: int = 0
    dropped_columns: list[str] = Field(default_factory=list)
    schema_: list[dict[str, str]] = Field(default_factory=list, alias="schema")
    quarantine_reasons: dict[str, int] = Field(default_factory=dict)
    columns: dict[str, Any] = Field(default_factory=dict)
    fraud_rate: float | None = None
    reference_drift: dict[str, Any] = Field(default_factory=dict)
    timing: dict[str, float] = Field(default_factory=dict)
    etl_seconds: float = 0.0

    @property
    def raw_name(self) -> str:
        """The landed file's name in ``raw`` (``source`` without its container)."""
        return self.source.removeprefix(layout.display(layout.RAW, ""))
