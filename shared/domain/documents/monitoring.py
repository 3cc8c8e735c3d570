"""Monitoring's stored document: the daily run's report (``reports/monitoring/<day>.json``).

Written by ``shared.monitoring.service`` (the monitoring run's ``MonitorOutcome``, as ``as_dict`` renders
it) and read back by the page (``shared.monitoring.report.monitoring_html``), which is rebuilt from it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shared.domain.documents import StoredDocument


class MonitoringReport(StoredDocument):
    """One day judged: the verdicts, the figures behind them, the panels' series and the audit chain's head."""

    day: str  # the UTC day judged, ISO 8601
    window: list[str]  # the labelled window's first and last day
    champion: str | None = None
    level: str  # the worst verdict: "ok", "warning", "critical" or "no_data"
    verdicts: list[dict[str, Any]] = Field(default_factory=list)  # check, level, value, edges, message
    realised: list[dict[str, Any]] = Field(default_factory=list)  # per model version and day, then "all"
    served_today: int = 0
    share_flagged_today: float | None = None
    score_psi: float | None = None
    feature_psi: dict[str, float] = Field(default_factory=dict)
    new_categories: dict[str, int] = Field(default_factory=dict)  # values the champion never saw, per feature
    score_shares: dict[str, list[float]] = Field(default_factory=dict)
    history: dict[str, Any] = Field(default_factory=dict)  # the panels' per-day series, retrains and rounds
    report: str = ""  # ``reports/monitoring/<day>.json``
    audit_chain: dict[str, Any] = Field(default_factory=dict)  # intact, lines, head_seq, head_hash, broken
    behaviour_skew: dict[str, Any] = Field(default_factory=dict)  # sampled, differ, share, worst (behaviour only)
