"""A retraining run's typed result: what was trained, how it scored, and what was decided."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from training.monitoring import DriftReport


@dataclass(frozen=True)
class TrainingRun:
    """The summary of one retraining run (its JSON report and MLflow record render it with ``as_dict``)."""

    model_version: str
    dataset_version: str
    auc: float
    pr_auc: float
    threshold: float
    cost: float
    promoted: bool
    promotion_reason: str
    champion_before: str | None
    champion_after: str | None
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    parity_max_abs_diff: float
    split: dict[str, Any]
    search: dict[str, Any]
    hyperparameters: dict[str, Any]
    feature_importance: dict[str, float]
    cost_curve: list[dict[str, float]]
    curves: dict[str, Any]
    cost_fn: float
    cost_fp: float
    drift: DriftReport
    drift_alert: bool
    sha256: str
    train_seconds: float
    peak_rss_mb: int
    report: str
    figures: dict[str, Any] = field(default_factory=dict)
    models_comparison: list[dict[str, Any]] = field(default_factory=list)
    explanations: dict[str, Any] = field(default_factory=dict)
    derived_features: list[dict[str, Any]] = field(default_factory=list)
    model_card: list[str] = field(default_factory=list)  # its blobs: models/<name>/<version>/model_card.md, .html
    mlflow: dict[str, Any] = field(default_factory=dict)
    status: Literal["trained"] = "trained"
