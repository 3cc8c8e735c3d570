"""The alert bands, in one place, and the verdict each check gives on a monitoring run's figures.

Each check has a warning and a critical band; a verdict says which was crossed, by what value, and
in words a person on call can act on. ``no_data`` is a verdict too (no labels yet, no traffic): it
is never silently "ok". The same bands are deployed as Azure Monitor alert rules on the metrics the
app exports (``infra/modules/alerts.bicep``), so what the monitoring run reports and what pages
someone agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["ok", "warning", "critical", "no_data"]
LEVEL_VALUE: dict[Level, int] = {"ok": 0, "warning": 1, "critical": 2, "no_data": -1}


@dataclass(frozen=True)
class Band:
    """Warning and critical edges; ``lower_is_worse`` for figures that alarm when they fall (recall)."""

    warning: float
    critical: float
    lower_is_worse: bool = False
    unit: str = ""

    def level(self, value: float) -> Level:
        if self.lower_is_worse:
            return "critical" if value < self.critical else "warning" if value < self.warning else "ok"
        return "critical" if value > self.critical else "warning" if value > self.warning else "ok"


BANDS: dict[str, Band] = {
    "recall": Band(0.80, 0.60, lower_is_worse=True),
    "missed_frauds": Band(10, 25, unit="frauds"),
    "score_drift_psi": Band(0.1, 0.3),
    "feature_drift_psi": Band(0.1, 0.3),
    "latency_p95_ms": Band(250, 1000, unit="ms"),
    "deadletter_rate": Band(0.01, 0.05),
    "api_error_share": Band(0.01, 0.05),
    "hours_since_retrain": Band(36, 72, unit="hours"),
    "hours_round_overdue": Band(0, 24, unit="hours"),
    # the share of sampled served rows whose behavioural features differ from the offline builder's
    "behaviour_skew_share": Band(0.005, 0.01),
    # a day without one recorded prediction while a champion serves: no traffic, or a recorder not writing
    "predictions_today": Band(1, 0, lower_is_worse=True, unit="recorded"),
}

WHAT_TO_DO = {
    "recall": "fewer labelled frauds are caught than the band allows: check drift, then retrain or roll back",
    "missed_frauds": "frauds went through unflagged: review them, consider lowering the threshold or retraining",
    "score_drift_psi": "the scores served differ from the champion's at training: traffic or the model changed",
    "feature_drift_psi": "live transactions differ from the training data: check the sources, then retrain",
    "latency_p95_ms": "scoring is slow: check instance load, model size and storage latency",
    "deadletter_rate": "stream events are being dead-lettered: read deadletter/ for the reasons",
    "api_error_share": "the API is failing requests (5xx): the logs and Application Insights have the exceptions",
    "retrain": "the champion is untouched; the failure report names the reason (and MLflow has the run)",
    "hours_since_retrain": "no retraining has succeeded for a while: read reports/training/failed-*.json",
    "hours_round_overdue": "a federated round is past its deadline: banks have not sent their updates",
    "audit_chain": "the audit trail no longer holds what it held: `fraudops audit verify` names the break; compare "
    "with the head recorded in earlier monitoring reports and treat it as an incident (who can write to audit/?)",
    "predictions_today": "no prediction was recorded today while a champion is deployed: either nothing was "
    "scored (check the callers and the stream's consumer group) or the recorder cannot write (the logs say "
    "'could not be recorded'; PREDICTIONS_RECORD may be off)",
    "behaviour_skew_share": "served behavioural features differ from what the offline builder computes from the "
    "same records: the report names a transaction and a feature; check the online store (lateness, a store "
    "restored from another dataset, instances on different contracts), then fill it again (fraudops behaviour "
    "materialise)",
}


@dataclass(frozen=True)
class Verdict:
    """One check's outcome."""

    check: str
    level: Level
    value: float | None
    warning: float | None
    critical: float | None
    message: str


def judge(check: str, value: float | None, *, detail: str = "", why_no_data: str = "") -> Verdict:
    """The verdict of ``check`` for ``value`` (None: no data, with the reason)."""
    band = BANDS[check]
    if value is None:
        return Verdict(check, "no_data", None, band.warning, band.critical, why_no_data or "no data to judge")
    level = band.level(value)
    shown = f"{value:.4g}{' ' + band.unit if band.unit else ''}"
    side = "<" if band.lower_is_worse else ">"
    edges = f"warning {side} {band.warning:g}, critical {side} {band.critical:g}"
    message = f"{check} = {shown} ({edges})" + (f"; {detail}" if detail else "")
    if level != "ok":
        message += f". {WHAT_TO_DO[check]}"
    return Verdict(check, level, round(float(value), 6), band.warning, band.critical, message)


def failed(check: str, message: str) -> Verdict:
    """A check that is critical by its nature (the last retrain failed)."""
    return Verdict(check, "critical", None, None, None, f"{message}. {WHAT_TO_DO.get(check, '')}".strip())


def worst(verdicts: list[Verdict]) -> Level:
    levels = [v.level for v in verdicts if v.level != "no_data"]
    return max(levels, key=lambda lv: LEVEL_VALUE[lv], default="ok")
