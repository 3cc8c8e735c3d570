"""MLflow: one run per retraining, the ONNX model registered with ``champion`` / ``challenger`` aliases.

MLflow is the record; the Blob model store stays the source the scorer reads, and the
promotion decision is made there (ETag-conditional) before MLflow hears of it. The tracking
URI comes from ``MLFLOW_TRACKING_URI``; the default is an embedded SQLite file, with artifacts
in an ``artifacts/`` folder beside it, so nothing needs a server. In Azure it is the PostgreSQL
Flexible Server of ``infra/modules/mlflow.bicep`` reached with the app's Entra ID identity (the URI
holds ``{entra_token}`` where a password would be), with artifacts in the ``mlflow`` Blob container
(``MLFLOW_ARTIFACT_ROOT``).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.domain import layout

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from shared.domain.documents.model import ModelManifest

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"


ENTRA_TOKEN = "{entra_token}"
POSTGRES_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"


def resolve(tracking_uri: str, *, credential: Any | None = None) -> str:
    """The URI to open: ``{entra_token}`` (the password of an Azure Database for PostgreSQL URI) replaced by a
    fresh Entra ID access token of the app's identity, so the database needs no password anywhere.

    A token lasts about an hour and a run ten minutes; each run resolves its own. The resolved URI is
    never logged or returned: summaries keep ``tracking_uri`` as configured.
    """
    if ENTRA_TOKEN not in tracking_uri:
        return tracking_uri
    import os
    from urllib.parse import quote

    if credential is None:
        from shared.adapters.identity import build_credential

        credential = build_credential(os.environ.get("AZURE_CLIENT_ID") or None)
    token = credential.get_token(POSTGRES_SCOPE).token
    return tracking_uri.replace(ENTRA_TOKEN, quote(token, safe=""))


def artifact_root(tracking_uri: str, configured: str | None = None) -> str | None:
    """Where new experiments keep artifacts: ``configured`` (``MLFLOW_ARTIFACT_ROOT``, Blob in Azure) when set;
    for a ``sqlite:///path/db`` URI, ``path/artifacts`` (created with the database folder); else the server's."""
    if configured:
        return configured.rstrip("/")
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db = Path(tracking_uri.removeprefix("sqlite:///")).resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    return (db.parent / "artifacts").as_uri()


@lru_cache(maxsize=4)
def get_client(tracking_uri: str) -> MlflowClient:
    """One client per tracking URI (the SQLite schema is created on first use)."""
    import mlflow

    artifact_root(tracking_uri)  # the SQLite folder must exist before the store opens it
    mlflow.set_tracking_uri(tracking_uri)
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def experiment_id(client: MlflowClient, name: str, tracking_uri: str, configured_root: str | None = None) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    root = artifact_root(tracking_uri, configured_root)
    return str(client.create_experiment(name, artifact_location=f"{root}/{name}" if root else None))


def _flat_metrics(summary: dict[str, Any]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for prefix, block in (
        ("test", summary.get("metrics")),
        ("baseline", summary.get("baseline_metrics")),
        ("champion", summary.get("champion_metrics")),
    ):
        for key, value in (block or {}).items():
            if isinstance(value, int | float):
                metrics[f"{prefix}_{key}"] = float(value)
    search = summary.get("search") or {}
    drift = summary.get("drift") or {}
    extra = {
        "threshold": summary.get("threshold"),
        "parity_max_abs_diff": summary.get("parity_max_abs_diff"),
        "train_seconds": summary.get("train_seconds"),
        "search_trials": search.get("trials"),
        "cv_log_loss": search.get("cv_log_loss"),
        "cv_pr_auc": search.get("cv_pr_auc"),
        "drifted_share": drift.get("drifted_share"),
        "peak_rss_mb": summary.get("peak_rss_mb"),
    }
    metrics.update({k: float(v) for k, v in extra.items() if isinstance(v, int | float)})
    return metrics


def log_training(
    *,
    tracking_uri: str,
    experiment: str,
    registered_name: str,
    summary: dict[str, Any],
    onnx_bytes: bytes,
    report_html: str,
    configured_root: str | None = None,
    model_card: str | None = None,
) -> dict[str, Any]:
    """Log the run (the model card with it), register the ONNX model, and point ``champion`` or ``challenger``
    at it."""
    import mlflow
    import onnx

    opened = resolve(tracking_uri)
    client = get_client(opened)
    mlflow.set_tracking_uri(opened)  # the fluent API below uses the process-wide URI
    mlflow.set_registry_uri(opened)
    exp = experiment_id(client, experiment, opened, configured_root)
    params = {f"hp_{k}": v for k, v in summary["hyperparameters"].items()}
    params.update(
        {
            "dataset_version": summary["dataset_version"],
            "model_version": summary["model_version"],
            "cost_fn": summary["cost_fn"],
            "cost_fp": summary["cost_fp"],
            "split_column": summary["split"]["column"],
        }
    )
    params.update({f"split_{part}": summary["split"][part] for part in ("dev", "test", "window_rows")})
    params["split_folds"] = len(summary["split"]["folds"])
    with mlflow.start_run(experiment_id=exp, run_name=summary["model_version"]) as run:
        mlflow.set_tags(
            {
                "promoted": str(summary["promoted"]),
                "promotion_reason": summary["promotion_reason"],
                "blob_model_version": summary["model_version"],
            }
        )
        mlflow.log_params(params)
        mlflow.log_metrics(_flat_metrics(summary))
        mlflow.log_dict(
            {"cost_fn": summary["cost_fn"], "cost_fp": summary["cost_fp"], "curve": summary["cost_curve"]},
            "cost_curve.json",
        )
        mlflow.log_dict(summary["feature_importance"], "feature_importance.json")
        mlflow.log_dict(
            {"figures": summary.get("figures"), "families": summary.get("models_comparison")}, "models_comparison.json"
        )
        if summary.get("explanations"):
            mlflow.log_dict(summary["explanations"], "explanations.json")
        if summary.get("drift"):
            mlflow.log_dict(summary["drift"], "drift.json")
        mlflow.log_text(report_html, "training_report.html")
        if model_card:
            mlflow.log_text(model_card, "model_card.md")
        # the flavour's own requirements (onnx, onnxruntime, pinned as installed): what MLflow would infer, without
        # the child Python it starts to infer them (seconds a run)
        info = mlflow.onnx.log_model(
            onnx.load_from_string(onnx_bytes),
            name="model",
            registered_model_name=registered_name,
            pip_requirements=mlflow.onnx.get_default_pip_requirements(),
        )
    version = str(info.registered_model_version)
    client.set_model_version_tag(registered_name, version, "blob_model_version", summary["model_version"])
    alias = CHAMPION if summary["promoted"] else CHALLENGER
    client.set_registered_model_alias(registered_name, alias, version)
    log.info("mlflow: run %s, registered %s version %s as %s", run.info.run_id, registered_name, version, alias)
    return {
        "run_id": run.info.run_id,
        "registered_model": registered_name,
        "registered_version": version,
        "alias": alias,
        "tracking_uri": tracking_uri,
    }


def log_federated(
    *,
    tracking_uri: str,
    experiment: str,
    manifest: ModelManifest,
    model_card: str,
    promoted: bool,
    configured_root: str | None = None,
) -> str:
    """A run for a published federated model: its round, banks and privacy parameters, its metrics when judged,
    and its model card. The run's id."""
    published = manifest
    opened = resolve(tracking_uri)
    client = get_client(opened)
    exp = experiment_id(client, experiment, opened, configured_root)
    tags = {"kind": layout.FEDERATED_KIND, "blob_model_version": published.version, "promoted": str(promoted)}
    run = client.create_run(exp, run_name=published.version, tags=tags)
    run_id = run.info.run_id
    keys = ("experiment", "round", "aggregator", "clip_bound", "noise_multiplier", "epsilon", "dp_delta", "threshold")
    for key in keys:
        value = getattr(published, key)
        if value is not None:
            client.log_param(run_id, key, value)
    client.log_param(run_id, "participants", ",".join(published.participants or []))
    for key, value in published.metrics.items():
        if isinstance(value, int | float):
            client.log_metric(run_id, f"test_{key}", float(value))
    client.log_text(run_id, model_card, "model_card.md")
    client.set_terminated(run_id)
    return str(run_id)


def log_failure(
    *, tracking_uri: str, experiment: str, reason: str, context: dict[str, Any], configured_root: str | None = None
) -> str:
    """A FAILED run with the reason, so a failed night shows up in MLflow too."""

    opened = resolve(tracking_uri)
    client = get_client(opened)
    exp = experiment_id(client, experiment, opened, configured_root)
    run = client.create_run(exp, run_name="failed", tags={"failure_reason": reason[:5000]})
    for key, value in context.items():
        client.log_param(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id, status="FAILED")
    return str(run.info.run_id)
