"""Retraining's stored documents in ``reports``: each run's report and each drift check's report.

``training.records`` writes a ``TrainingReport`` per run (``training/<version>.json`` for a run that
published a version, ``training/failed-<time>.json`` for one that failed) and ``training.monitoring`` a
``DriftReport`` per drift check (``drift/<name>.json``); the daily monitor reads them back. A run's
outcome is its ``status`` ("promoted", "rejected": a version published but the champion kept, or
"failed"), never guessed from the report's name. Reports written before the status was explicit said
``"trained"``: they read as "promoted" or "rejected" from their ``promoted`` field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from shared.domain.documents import StoredDocument

TrainingStatus = Literal["promoted", "rejected", "failed"]


class TrainingReport(StoredDocument):
    """One retraining run's outcome; a run that published a version also carries its whole summary
    (metrics, split, search, comparison, curves...: kept as they are, beyond the fields named here)."""

    status: TrainingStatus
    model_version: str | None = None  # None: the run failed before publishing
    dataset_version: str | None = None
    promoted: bool = False
    promotion_reason: str | None = None
    reason: str | None = None  # why a run failed
    champion_before: str | None = None
    champion_after: str | None = None
    champion_untouched: bool | None = None  # a failed run: the champion pointer was not moved
    started_at: str | None = None  # ISO 8601, UTC
    finished_at: str | None = None  # a run that published a version
    failed_at: str | None = None  # a failed run
    auc: float | None = None
    pr_auc: float | None = None
    cost: float | None = None
    threshold: float | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    train_seconds: float | None = None
    report: str | None = None  # the HTML report, as ``reports/<name>``

    @model_validator(mode="before")
    @classmethod
    def _status_of_older_reports(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("status") == "trained":  # before the status was explicit
            return {**data, "status": "promoted" if data.get("promoted") else "rejected"}
        return data

    @property
    def succeeded(self) -> bool:
        """Whether the run published a version (promoted or not)."""
        return self.status != "failed"

    @property
    def at(self) -> str | None:
        """When the run ended (ISO 8601), when the report says."""
        return self.failed_at if self.status == "failed" else self.finished_at


class DriftReport(StoredDocument):
    """One drift check: the newest curated data against the champion's training profile."""

    checked: bool
    alert: bool
    message: str
    champion: str | None = None
    reference: str | None = None
    current: str | None = None
    rows_reference: int = 0
    rows_current: int = 0
    psi_threshold: float | None = None
    alert_share: float | None = None
    drifted_features: list[str] = Field(default_factory=list)
    drifted_share: float = 0.0
    features: dict[str, Any] = Field(default_factory=dict)
