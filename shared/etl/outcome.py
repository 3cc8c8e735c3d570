"""What the ETL did with one landed file: the typed result the service returns (its report, as stored, is
``shared.domain.documents.etl.EtlReport``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class EtlOutcome:
    """What the ETL did with one landed file (also its JSON report, through ``as_dict``)."""

    status: Literal["processed", "rejected"]
    reason: str | None
    source: str
    source_etag: str
    sha256: str
    dataset: str
    input_bytes: int
    rows_in: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_erased: int = 0
    parquet_bytes: int = 0
    outputs: list[str] = field(default_factory=list)
    parts: int = 0
    quarantine: str | None = None
    report: str = ""
    dataset_version: str | None = None
    read_mode: str | None = None
    text_batches: int = 0
    dropped_columns: list[str] = field(default_factory=list)
    schema: list[dict[str, str]] = field(default_factory=list)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    columns: dict[str, Any] = field(default_factory=dict)
    fraud_rate: float | None = None  # share of the valid rows labelled fraud (None: the file has no label)
    # each feature's valid rows in the champion's training deciles, with the PSI the drift check computes
    reference_drift: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    etl_seconds: float = 0.0

    @property
    def rejected(self) -> bool:
        return self.status == "rejected"
