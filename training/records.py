"""What a retraining run leaves behind besides the model: its reports, its MLflow run, its audit entry.

MLflow and the audit chain are the record, not the source of truth: their failure is logged and never
fails a run (nor hides a failed run's own reason). The reports are ``TrainingReport`` documents
(``shared.domain.documents.training``) with an explicit ``status``.
"""

from __future__ import annotations

import json
import logging
import resource
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.adapters import documents
from shared.domain import layout
from shared.domain.documents.training import TrainingReport, TrainingStatus

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.domain.config import TrainingConfig
    from shared.domain.documents.model import ModelManifest
    from training.steps import Fitted

log = logging.getLogger(__name__)


def peak_rss_mb() -> int:
    """This process's peak resident memory: VmHWM on Linux (ru_maxrss also counts a forking parent's pages)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)


def audit_outcome(store: BlobStore, outcome: str, reason: str, details: dict[str, Any]) -> None:
    """The retrain's outcome in the audit chain; a failure to write it is logged, never hides the run's own."""
    from shared.adapters.audit import AuditLog, service_actor
    from shared.domain.audit import Act

    try:
        AuditLog(store).record(
            Act("retrain_outcome", service_actor("retrain"), reason, {"outcome": outcome, **details})
        )
    except Exception:
        log.exception("could not write the retrain outcome (%s) to the audit chain", outcome)


def record_failure(
    store: BlobStore, *, config: TrainingConfig, reason: str, started_at: datetime, dataset_version: str | None
) -> None:
    """A failed run's report (``training/failed-<time>.json``) and its FAILED MLflow run."""
    from training.tracking import log_failure

    log.error("training run failed; the champion is untouched: %s", reason)
    report = TrainingReport(
        status="failed",
        reason=reason,
        started_at=started_at.isoformat(),
        failed_at=datetime.now(UTC).isoformat(),
        dataset_version=dataset_version,
        champion_untouched=True,
    )
    try:
        name = layout.training_report(f"failed-{started_at:%Y%m%dT%H%M%S%f}Z")
        documents.write(store, layout.REPORTS, name, report)
    except Exception:  # storage may be what failed; the log line above still carries the reason
        log.exception("could not write the failure report")
    try:
        log_failure(
            tracking_uri=config.mlflow_tracking_uri,
            experiment=config.mlflow_experiment,
            reason=reason,
            context={"dataset_version": dataset_version or "latest"},
            configured_root=config.mlflow_artifact_root,
        )
    except Exception:
        log.exception("could not record the failure in MLflow")


def track(
    summary: dict[str, Any], onnx_bytes: bytes, manifest: ModelManifest, *, config: TrainingConfig, html: str
) -> dict[str, Any]:
    """Log to MLflow (``html``: the run's report, drawn once per run); MLflow is the record, not the source of
    truth, so its failure does not fail the run."""
    from shared.domain.model_card import markdown
    from training.tracking import log_training

    try:
        return log_training(
            tracking_uri=config.mlflow_tracking_uri,
            experiment=config.mlflow_experiment,
            registered_name=config.model_name,
            summary=summary,
            onnx_bytes=onnx_bytes,
            report_html=html,
            configured_root=config.mlflow_artifact_root,
            model_card=markdown(manifest),
        )
    except Exception as exc:
        log.exception("MLflow logging failed; the model is published and the decision stands")
        return {"error": f"{type(exc).__name__}: {exc}", "tracking_uri": config.mlflow_tracking_uri}


def write_reports(
    store: BlobStore, summary: dict[str, Any], fitted: Fitted, *, started_at: datetime, html: str
) -> None:
    """The run's report (JSON, and ``html`` as drawn for MLflow) and its comparison and explanation tables."""
    from training.explain import importance_csv
    from training.families import comparison_csv

    version = str(summary["model_version"])
    status: TrainingStatus = "promoted" if summary["promoted"] else "rejected"
    plain = json.loads(json.dumps(summary, default=str))  # numpy scalars as the report always wrote them
    report = TrainingReport.model_validate(
        {
            **plain,
            "status": status,
            "started_at": started_at.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
        }
    )
    documents.write(store, layout.REPORTS, layout.training_report(version), report)
    store.put_bytes(
        layout.REPORTS,
        layout.training_report(version, "html"),
        html.encode(),
        content_type="text/html; charset=utf-8",
    )
    store.put_bytes(
        layout.REPORTS,
        layout.training_report_file(version, "models_comparison.csv"),
        comparison_csv(fitted.comparison).encode(),
        content_type="text/csv",
    )
    store.put_bytes(
        layout.REPORTS,
        layout.training_report_file(version, "shap_importance.csv"),
        importance_csv(fitted.explanations).encode(),
        content_type="text/csv",
    )
