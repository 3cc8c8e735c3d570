"""The retraining pipeline that the timer function and ``fraudops train`` run, as named steps.

``prepare`` (load, split, drift) -> ``fit`` (search, threshold, baseline) -> ``export`` (ONNX, parity)
-> the gate's ``judge_scores`` (the one promotion rule, shared with federated rounds) -> ``publish``
(version, conditional promotion, reports, MLflow), each handing the next a typed value.

Load a curated dataset version, check drift against the champion, split by time (never
randomly: fraud drifts), search LightGBM hyperparameters within the time budget, fit the
logistic-regression baseline, choose the threshold of least business cost on the validation
part, evaluate once on the test part, export to ONNX and check parity, publish, promote only
if the new model beats the champion on the same test part, and record it all in reports/ and
MLflow. A failed run leaves the champion untouched, writes a failure report, and raises.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import resource
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.adapters.model_store import ModelStore, new_version
from shared.domain.contract import DatasetContract, get_contract
from shared.domain.errors import (
    ConcurrentUpdateError,
    FraudOpsError,
    TrainingError,
)
from shared.domain.results import as_dict
from shared.domain.verdicts import Judged
from training import drift
from training.data import load_dataset, matrix, time_split
from training.evaluation import best_threshold, cost_curve, curves, evaluate
from training.gate import judge_scores
from training.monitoring import DriftReport, check_drift
from training.onnx_export import check_parity, onnx_probabilities, to_onnx
from training.run import TrainingRun
from training.search import SearchResult

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.domain.settings import Settings

log = logging.getLogger(__name__)

RESERVE_FRACTION = 0.25  # of the time budget, kept for export, parity, evaluation, publishing and MLflow


@dataclass(frozen=True)
class TrainConfig:
    """What a run needs from settings; explicit so tests can vary it."""

    cost_fn: float = 10.0
    cost_fp: float = 1.0
    seed: int = 42
    num_boost_round: int = 1500
    pr_auc_margin: float = 0.01
    search_trials: int = 20
    search_seconds: float = 75.0
    budget_seconds: float = 600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> TrainConfig:
        return cls(
            settings.cost_fn,
            settings.cost_fp,
            settings.train_seed,
            settings.train_num_boost_round,
            settings.promotion_pr_auc_margin,
            settings.train_search_trials,
            settings.train_search_seconds,
            settings.train_time_budget_seconds,
        )


def _peak_rss_mb() -> int:
    """This process's peak resident memory: VmHWM on Linux (ru_maxrss also counts a forking parent's pages)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)


def run_training(
    store: BlobStore, settings: Settings, *, dataset_version: str | None = None, config: TrainConfig | None = None
) -> TrainingRun:
    """One retraining run; returns its summary (also written to ``reports/training/``).

    Any failure writes ``reports/training/failed-<time>.json``, is logged as a FAILED MLflow run,
    and raises (``TrainingError`` for a failed run, the storage error for an outage).
    """
    config = config or TrainConfig.from_settings(settings)
    started_at = datetime.now(UTC)
    try:
        return _run(store, settings, dataset_version=dataset_version, config=config)
    except Exception as exc:
        reason = exc.reason if isinstance(exc, FraudOpsError) else f"{type(exc).__name__}: {exc}"
        _record_failure(store, settings, reason, started_at, dataset_version)
        if isinstance(exc, FraudOpsError):
            raise
        raise TrainingError(f"training failed: {reason}") from exc


def _record_failure(
    store: BlobStore, settings: Settings, reason: str, started_at: datetime, dataset_version: str | None
) -> None:
    from training.tracking import log_failure

    log.error("training run failed; the champion is untouched: %s", reason)
    report = {
        "status": "failed",
        "reason": reason,
        "started_at": started_at.isoformat(),
        "failed_at": datetime.now(UTC).isoformat(),
        "dataset_version": dataset_version,
        "champion_untouched": True,
    }
    try:
        store.put_bytes(
            "reports",
            f"training/failed-{started_at:%Y%m%dT%H%M%S%f}Z.json",
            json.dumps(report, indent=1).encode(),
            content_type="application/json",
        )
    except Exception:  # storage may be what failed; the log line above still carries the reason
        log.exception("could not write the failure report")
    try:
        log_failure(
            tracking_uri=settings.mlflow_tracking_uri,
            experiment=settings.mlflow_experiment,
            reason=reason,
            context={"dataset_version": dataset_version or "latest"},
        )
    except Exception:
        log.exception("could not record the failure in MLflow")


def _run(store: BlobStore, settings: Settings, *, dataset_version: str | None, config: TrainConfig) -> TrainingRun:
    """The named steps: prepare, fit, export, judge, publish."""
    started = time.monotonic()
    contract = get_contract(settings.dataset_name)
    prepared = prepare(store, settings, contract, dataset_version)
    fitted = fit(prepared, contract.feature_names, config, deadline=started + config.budget_seconds)
    exported = export(fitted, prepared, contract.feature_names)
    models = ModelStore(store, settings.model_name)
    verdict, champion_p = judge_scores(
        models,
        contract,
        dataset_version=prepared.dataset_version,
        split=prepared.split,
        threshold=fitted.threshold,
        y_test=prepared.y_test,
        test_probabilities=exported.test_probabilities,
        x_test=prepared.x_test,
        baseline_metrics=fitted.baseline_metrics,
        settings=_gate_settings(settings, config),
    )
    return publish(
        store,
        settings,
        models,
        prepared,
        fitted,
        exported,
        verdict,
        champion_p,
        features=contract.feature_names,
        started=started,
    )


@dataclass(frozen=True)
class Prepared:
    """The dataset version in its time split, as float32 matrices, and its drift against the champion."""

    dataset_version: str
    files: list[str]
    split: dict[str, Any]
    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    drift: DriftReport


@dataclass(frozen=True)
class Fitted:
    """The searched booster with its cost-chosen threshold, and the logistic baseline judged beside it."""

    found: SearchResult
    threshold: float
    curve: list[dict[str, float]]
    baseline_metrics: dict[str, float]
    baseline_test_probabilities: np.ndarray


@dataclass(frozen=True)
class Exported:
    """The booster as ONNX, its parity with LightGBM, and the ONNX model's test-part probabilities."""

    onnx_bytes: bytes
    parity: float
    test_probabilities: np.ndarray


def prepare(store: BlobStore, settings: Settings, contract: DatasetContract, dataset_version: str | None) -> Prepared:
    """Load the version, split it by time, refuse a part with one class, and check drift."""
    label, time_col = contract.label, contract.time_column
    if label is None or time_col is None:
        raise TrainingError(f"dataset {contract.name} has no label or time column to train on")
    version, files, frame = load_dataset(store, contract, dataset_version)
    train, valid, test, split = time_split(frame, time_col.name)
    for part, name in ((train, "train"), (valid, "validation"), (test, "test")):
        if part[label.name].nunique() < 2:
            raise TrainingError(f"the {name} part has only one class; more data is needed to train")
    features = contract.feature_names
    x_train, x_valid, x_test = (matrix(p, features) for p in (train, valid, test))
    y_train, y_valid, y_test = (p[label.name].to_numpy(dtype=np.int8) for p in (train, valid, test))
    del frame, train, valid, test
    drift_result = check_drift(store, settings, files=files)
    return Prepared(version, files, split, x_train, y_train, x_valid, y_valid, x_test, y_test, drift_result)


def fit(prepared: Prepared, features: list[str], config: TrainConfig, *, deadline: float) -> Fitted:
    """Search LightGBM within the time left, choose its threshold by cost on validation, fit the baseline."""
    from training.baseline import fit_logistic
    from training.search import search_lightgbm

    p = prepared
    search_deadline = min(time.monotonic() + config.search_seconds, deadline - RESERVE_FRACTION * config.budget_seconds)
    found = search_lightgbm(
        p.x_train,
        p.y_train,
        p.x_valid,
        p.y_valid,
        features,
        seed=config.seed,
        trials=config.search_trials,
        deadline=search_deadline,
        num_boost_round=config.num_boost_round,
    )
    costs = {"cost_fn": config.cost_fn, "cost_fp": config.cost_fp}
    curve = cost_curve(
        p.y_valid, np.asarray(found.booster.predict(p.x_valid)), cost_fn=config.cost_fn, cost_fp=config.cost_fp
    )
    baseline = fit_logistic(p.x_train, p.y_train, features, seed=config.seed)
    baseline_threshold = best_threshold(
        cost_curve(p.y_valid, baseline.predict_proba(p.x_valid)[:, 1], cost_fn=config.cost_fn, cost_fp=config.cost_fp)
    )
    baseline_p = baseline.predict_proba(p.x_test)[:, 1]
    return Fitted(
        found, best_threshold(curve), curve, evaluate(p.y_test, baseline_p, baseline_threshold, **costs), baseline_p
    )


def export(fitted: Fitted, prepared: Prepared, features: list[str]) -> Exported:
    """ONNX, checked against LightGBM on the test part, and scored there by ONNX Runtime."""
    onnx_bytes = to_onnx(fitted.found.booster, features)
    parity = check_parity(fitted.found.booster, onnx_bytes, prepared.x_test)
    return Exported(onnx_bytes, parity, onnx_probabilities(onnx_bytes, prepared.x_test))


def _gate_settings(settings: Settings, config: TrainConfig) -> Settings:
    """The settings the gate reads, with the run's own costs and margin (a test's ``TrainConfig`` wins)."""
    return settings.model_copy(
        update={"cost_fn": config.cost_fn, "cost_fp": config.cost_fp, "promotion_pr_auc_margin": config.pr_auc_margin}
    )


def publish(
    store: BlobStore,
    settings: Settings,
    models: ModelStore,
    prepared: Prepared,
    fitted: Fitted,
    exported: Exported,
    verdict: Judged,
    champion_p: np.ndarray | None,
    *,
    features: list[str],
    started: float,
) -> TrainingRun:
    """Publish the version, promote it if the gate said so (ETag-conditional), and write the reports and MLflow."""
    p, found = prepared, fitted.found
    reason = verdict.reason + (f"; {p.drift.message}" if p.drift.alert else "")
    promote = verdict.promote
    model_version = new_version(salt=p.dataset_version)
    importance = dict(zip(features, found.booster.feature_importance("gain").round(3).tolist(), strict=True))
    search = {
        "trials": found.trials,
        "pruned": found.pruned,
        "stopped_by": found.stopped_by,
        "seconds": found.seconds,
        "best_pr_auc": round(found.best_value, 5),
        "history": found.history,
    }
    costs = {"cost_fn": verdict.cost_fn, "cost_fp": verdict.cost_fp}
    manifest = models.publish(
        model_version,
        exported.onnx_bytes,
        {
            "kind": "lightgbm",
            "feature_names": features,
            "input_name": "features",
            "threshold": fitted.threshold,
            "metrics": verdict.metrics,
            "baseline_metrics": fitted.baseline_metrics,
            "dataset": settings.dataset_name,
            "dataset_version": p.dataset_version,
            "trained_on": p.files,
            "split": p.split,
            "hyperparameters": found.params,
            "search": {k: v for k, v in search.items() if k != "history"},
            "feature_importance": importance,
            "parity_max_abs_diff": exported.parity,
            **costs,
            "training_profile": drift.profile(p.x_train, features),
            "training_seconds": round(time.monotonic() - started, 3),
        },
        extra_files={"model.txt": found.booster.model_to_string().encode()},
    )
    if promote:
        try:
            models.promote(model_version, expected_etag=verdict.pointer_etag, reason=reason)
        except ConcurrentUpdateError as exc:
            promote, reason = False, exc.reason
    plotted = {
        "new model": curves(p.y_test, exported.test_probabilities),
        "logistic baseline": curves(p.y_test, fitted.baseline_test_probabilities),
    }
    if champion_p is not None:
        plotted[f"champion {verdict.champion}"] = curves(p.y_test, champion_p)
    run = TrainingRun(
        model_version=model_version,
        dataset_version=p.dataset_version,
        auc=verdict.metrics["auc"],
        pr_auc=verdict.metrics["pr_auc"],
        threshold=fitted.threshold,
        cost=verdict.metrics["cost"],
        promoted=promote,
        promotion_reason=reason,
        champion_before=verdict.champion,
        champion_after=model_version if promote else verdict.champion,
        metrics=verdict.metrics,
        baseline_metrics=fitted.baseline_metrics,
        champion_metrics=verdict.champion_metrics,
        parity_max_abs_diff=exported.parity,
        split=p.split,
        search=search,
        hyperparameters=found.params,
        feature_importance=importance,
        cost_curve=fitted.curve,
        curves=plotted,
        cost_fn=verdict.cost_fn,
        cost_fp=verdict.cost_fp,
        drift=p.drift,
        drift_alert=p.drift.alert,
        sha256=manifest["sha256"],
        train_seconds=round(time.monotonic() - started, 3),
        peak_rss_mb=_peak_rss_mb(),
        report=f"reports/training/{model_version}.html",
    )
    run = dataclasses.replace(run, mlflow=_track(settings, as_dict(run), exported.onnx_bytes))
    _write_reports(store, as_dict(run))
    log.info(
        "trained %s on %s: auc=%.4f pr_auc=%.4f threshold=%.2f promoted=%s (%s)",
        model_version,
        p.dataset_version,
        run.auc,
        run.pr_auc,
        run.threshold,
        promote,
        reason,
    )
    return run


def _track(settings: Settings, summary: dict[str, Any], onnx_bytes: bytes) -> dict[str, Any]:
    """Log to MLflow; MLflow is the record, not the source of truth, so its failure does not fail the run."""
    from training.report import training_html
    from training.tracking import log_training

    try:
        return log_training(
            tracking_uri=settings.mlflow_tracking_uri,
            experiment=settings.mlflow_experiment,
            registered_name=settings.model_name,
            summary=summary,
            onnx_bytes=onnx_bytes,
            report_html=training_html(summary),
        )
    except Exception as exc:
        log.exception("MLflow logging failed; the model is published and the decision stands")
        return {"error": f"{type(exc).__name__}: {exc}", "tracking_uri": settings.mlflow_tracking_uri}


def _write_reports(store: BlobStore, summary: dict[str, Any]) -> None:
    from training.report import training_html

    name = f"training/{summary['model_version']}"
    store.put_bytes(
        "reports", f"{name}.json", json.dumps(summary, indent=1, default=str).encode(), content_type="application/json"
    )
    store.put_bytes("reports", f"{name}.html", training_html(summary).encode(), content_type="text/html; charset=utf-8")
