"""The retraining pipeline that the timer function and ``fraudops train`` run, as named steps.

``prepare`` (window, layout, drift) -> ``fit`` (search, threshold, backtest, refit, baseline, comparison,
explanations) -> ``export`` (ONNX, parity) -> the gate's ``judge_scores`` (the one promotion rule,
shared with federated rounds) -> ``publish`` (version, conditional promotion, reports, MLflow), each
handing the next a typed value.

Backtest, then refit. Every choice is made on rows later than the rows it was fitted on: the
configuration and the boosting rounds by rolling-origin folds of the oldest 80 % of the window
(``dev``), the threshold of least business cost on those folds' out-of-fold probabilities. The
*backtest model*, that configuration fitted on all of dev, is measured once on the newest 20 %
(the test part): those are the figures the gate judges and the report shows. The *published model*
is the same configuration refitted on every row of the window, the newest included, so the served
model learns from all labelled data; it has no held-out figure of its own, and the manifest and the
report say which model each figure belongs to. A failed run leaves the champion untouched, writes a
failure report, and raises.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.adapters.model_store import ModelStore, new_version
from shared.domain import drift
from shared.domain.contract import DatasetContract, get_contract
from shared.domain.errors import (
    ConcurrentUpdateError,
    FraudOpsError,
    TrainingError,
)
from shared.domain.results import as_dict
from shared.domain.telemetry import PROBABILITY_BUCKETS, instruments, span
from shared.domain.verdicts import Judged
from training.evaluation import best_threshold, cost_curve, curves, evaluate, intervals, segments
from training.explain import Explanations
from training.families import FamilyResult
from training.gate import judge_scores
from training.monitoring import DriftReport, check_drift
from training.onnx_export import check_parity, to_onnx
from training.run import TrainingRun
from training.search import Model, SearchResult
from training.window import Layout, Window, layout, load_window, plan_window

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.domain.settings import Settings
    from training.distributed.submit import Submitted

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
    search_seconds: float = 180.0
    budget_seconds: float = 600.0
    window_rows: int | None = None
    window_days: float | None = None
    compare_families: bool = True
    max_bin: int = 4095
    search_rows: int = 250_000  # distributed runs: the search sample's rows

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
            settings.train_window_rows,
            settings.train_window_days,
            settings.train_compare_families,
            settings.train_max_bin,
            settings.train_search_rows,
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
        with span("train.run", dataset=settings.dataset_name):
            run = _run(store, settings, dataset_version=dataset_version, config=config)
    except Exception as exc:
        reason = exc.reason if isinstance(exc, FraudOpsError) else f"{type(exc).__name__}: {exc}"
        instruments().retrains.add(1, {"outcome": "failed"})
        _record_failure(store, settings, reason, started_at, dataset_version)
        _audit_outcome(store, "failed", reason, {"dataset_version": dataset_version})
        if isinstance(exc, FraudOpsError):
            raise
        raise TrainingError(f"training failed: {reason}") from exc
    outcome = "promoted" if run.promoted else "kept_champion"
    instruments().retrains.add(1, {"outcome": outcome})
    details = {"model": settings.model_name, "version": run.model_version, "dataset_version": run.dataset_version}
    _audit_outcome(store, outcome, run.promotion_reason, details)
    return run


def retrain(store: BlobStore, settings: Settings) -> TrainingRun | Submitted:
    """What the timer runs: the run here, or, with a Dask scheduler address, the run handed to that cluster
    (``training.distributed.submit``: it returns at once, the cluster finishes and publishes)."""
    from training.distributed.cluster import LOCAL

    if settings.dask_scheduler_address and settings.dask_scheduler_address != LOCAL:
        from shared.etl.manifest import files_of_version
        from training.distributed.submit import submit

        version, _ = files_of_version(store, settings.dataset_name)  # pinned now: the job trains on this version
        return submit(settings, version)
    return run_training(store, settings)


def _audit_outcome(store: BlobStore, outcome: str, reason: str, details: dict[str, Any]) -> None:
    """The retrain's outcome in the audit chain; a failure to write it is logged, never hides the run's own."""
    from shared.adapters.audit import AuditLog, service_actor
    from shared.domain.audit import Act

    try:
        AuditLog(store).record(
            Act("retrain_outcome", service_actor("retrain"), reason, {"outcome": outcome, **details})
        )
    except Exception:
        log.exception("could not write the retrain outcome (%s) to the audit chain", outcome)


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
            configured_root=settings.mlflow_artifact_root,
        )
    except Exception:
        log.exception("could not record the failure in MLflow")


def _run(store: BlobStore, settings: Settings, *, dataset_version: str | None, config: TrainConfig) -> TrainingRun:
    """The named steps: prepare, fit, export, judge, publish; on a Dask cluster when the window needs one."""
    from training.distributed.cluster import needed

    started = time.monotonic()
    contract = get_contract(settings.dataset_name)
    _, _, _, counts = plan_window(
        store, contract, dataset_version, max_rows=config.window_rows, max_days=config.window_days
    )
    deadline = started + config.budget_seconds
    if needed(settings, sum(max(c, 0) for c in counts)):
        from training.distributed.cluster import connect
        from training.distributed.run import DistributedSteps

        with connect(settings) as client:
            steps = DistributedSteps(client, store, settings, contract)
            with span("train.prepare", distributed=True):
                distributed = steps.prepare(dataset_version, config)
            with span("train.fit", rows=distributed.rows, distributed=True):
                fitted = steps.fit(distributed, config, deadline=deadline)
            return _finish(
                store, settings, contract, distributed, fitted, config, started, steps.champion_scorer(distributed)
            )
    with span("train.prepare"):
        prepared = prepare(store, settings, contract, dataset_version, config)
    with span("train.fit", rows=prepared.rows):
        fitted = fit(prepared, contract.feature_names, config, deadline=deadline)
    return _finish(store, settings, contract, prepared, fitted, config, started, None)


def _finish(
    store: BlobStore,
    settings: Settings,
    contract: DatasetContract,
    prepared: Prepared,
    fitted: Fitted,
    config: TrainConfig,
    started: float,
    score_champion: Callable[[str], tuple[np.ndarray, float] | None] | None,
) -> TrainingRun:
    """Export, judge and publish: the same for a run on one instance and one on a Dask cluster."""
    with span("train.export"):
        exported = export(fitted, prepared, contract.feature_names)
    models = ModelStore(store, settings.model_name)
    with span("train.judge"):
        verdict, champion_p = judge_scores(
            models,
            contract,
            dataset_version=prepared.dataset_version,
            split=prepared.split,
            threshold=fitted.threshold,
            y_test=prepared.y_test,
            test_probabilities=fitted.backtest_test_probabilities,
            x_test=prepared.x_test,
            baseline_metrics=fitted.baseline_metrics,
            settings=_gate_settings(settings, config),
            test_files=prepared.test_files,
            score_champion=score_champion,
        )
    with span("train.publish"):
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
    """The training window in time order, its layout (folds in dev, then the test part), and its drift."""

    window: Window
    plan: Layout
    split: dict[str, Any]
    drift: DriftReport

    @property
    def dataset_version(self) -> str:
        return self.window.dataset_version

    @property
    def files(self) -> list[str]:
        return self.window.files

    @property
    def x_dev(self) -> np.ndarray:
        return self.window.x[: self.plan.dev_stop]

    @property
    def y_dev(self) -> np.ndarray:
        return self.window.y[: self.plan.dev_stop]

    @property
    def x_test(self) -> np.ndarray:
        return self.window.x[self.plan.dev_stop :]

    @property
    def y_test(self) -> np.ndarray:
        return self.window.y[self.plan.dev_stop :]

    @property
    def rows(self) -> int:
        return self.window.rows

    @property
    def test_time(self) -> np.ndarray:
        return self.window.time[self.plan.dev_stop :]

    def test_column(self, features: list[str], name: str) -> np.ndarray | None:
        """The test part's column ``name`` (any case) of the contract's features, ``None`` when it has none."""
        return _column(self.x_test, features, name)

    def training_profile(self, features: list[str]) -> dict[str, Any]:
        """The drift reference: each feature's bins over the window."""
        return drift.profile(self.window.x, features)

    @property
    def test_files(self) -> np.ndarray:
        """Each test row's curated file (the gate compares a champion only on rows it never trained on)."""
        files: np.ndarray = np.asarray(self.window.files, dtype=object)
        return np.asarray(files[self.window.part[self.plan.dev_stop :]])


@dataclass(frozen=True)
class Fitted:
    """The chosen configuration, its cost-chosen threshold, the backtest and published boosters, and the
    figures beside them: the logistic baseline, the family comparison and the explanations."""

    found: SearchResult
    threshold: float
    curve: list[dict[str, float]]
    backtest: Model
    backtest_rounds: int
    backtest_test_probabilities: np.ndarray
    published: Model
    published_rounds: int
    baseline_metrics: dict[str, float]
    baseline_test_probabilities: np.ndarray
    comparison: list[FamilyResult]
    explanations: Explanations


@dataclass(frozen=True)
class Exported:
    """The published booster as ONNX and its parity with LightGBM on the test part."""

    onnx_bytes: bytes
    parity: float


def prepare(
    store: BlobStore,
    settings: Settings,
    contract: DatasetContract,
    dataset_version: str | None,
    config: TrainConfig | None = None,
) -> Prepared:
    """Load the window, lay it out by time (refusing a part with one class), and check drift."""
    config = config or TrainConfig.from_settings(settings)
    from shared.adapters.erasures import erased

    window = load_window(
        store,
        contract,
        dataset_version,
        max_rows=config.window_rows,
        max_days=config.window_days,
        erased=erased(store),  # customers who asked to be erased: never back in a model
    )
    plan = layout(window)
    split = {**plan.describe(window.time), "column": contract.time_column.name if contract.time_column else None}
    split["files"], split["files_left_out"] = len(window.files), window.left_out
    drift_result = check_drift(store, settings, files=window.files)
    return Prepared(window, plan, split, drift_result)


def fit(prepared: Prepared, features: list[str], config: TrainConfig, *, deadline: float) -> Fitted:
    """Search on the folds, choose the threshold out of fold, fit the backtest and published models, the
    baseline and the other families, and explain the published model."""
    from training.explain import explain
    from training.families import lightgbm_row
    from training.search import fit_model

    p, w = prepared, prepared.window
    costs = {"cost_fn": config.cost_fn, "cost_fp": config.cost_fp}
    fits_deadline = deadline - RESERVE_FRACTION * config.budget_seconds
    found, oof_y, curve, threshold = search_and_threshold(w, p.plan, features, config, fits_deadline=fits_deadline)
    backtest_rounds = found.rounds_for(p.plan.dev_stop, config.num_boost_round)
    backtest = fit_model(
        found, p.x_dev, p.y_dev, features, rounds=backtest_rounds, deadline=fits_deadline, seed=config.seed
    )
    began = time.perf_counter()
    backtest_p = backtest.predict(p.x_test)
    score_ms = 1e6 * (time.perf_counter() - began) / max(p.y_test.size, 1)  # per thousand rows
    published_rounds = found.rounds_for(w.rows, config.num_boost_round)
    published = fit_model(found, w.x, w.y, features, rounds=published_rounds, deadline=fits_deadline, seed=config.seed)
    comparison = [
        lightgbm_row(w.y, p.plan, found.oof, fit_seconds=found.fold_fit_seconds, score_ms_per_1k=score_ms, costs=costs)
    ]
    others, baseline, baseline_threshold = families_and_baseline(
        w, p.plan, features, config, p.x_dev, p.y_dev, oof_y=oof_y, threshold=threshold, fits_deadline=fits_deadline
    )
    comparison.extend(others)
    baseline_p = baseline.predict_proba(p.x_test)[:, 1]
    explanations = explain(
        published, features, p.x_test, p.y_test, published.predict(p.x_test), threshold, seed=config.seed
    )
    return Fitted(
        found,
        threshold,
        curve,
        backtest,
        backtest_rounds,
        backtest_p,
        published,
        published_rounds,
        evaluate(p.y_test, baseline_p, baseline_threshold, **costs),
        baseline_p,
        comparison,
        explanations,
    )


def search_and_threshold(
    w: Window, plan: Layout, features: list[str], config: TrainConfig, *, fits_deadline: float
) -> tuple[SearchResult, np.ndarray, list[dict[str, float]], float]:
    """The configuration searched on the folds of ``plan`` (rows of ``w``), and the threshold of least cost on its
    out-of-fold probabilities: (search result, the folds' labels, the cost curve, the threshold)."""
    from training.search import search_lightgbm

    found = search_lightgbm(
        w.x,
        w.y,
        plan,
        features,
        seed=config.seed,
        trials=config.search_trials,
        deadline=min(time.monotonic() + config.search_seconds, fits_deadline),
        num_boost_round=config.num_boost_round,
        max_bin=config.max_bin,
    )
    oof_y = np.concatenate([w.y[f.train_stop : f.valid_stop] for f in plan.folds])
    curve = cost_curve(oof_y, found.oof, cost_fn=config.cost_fn, cost_fp=config.cost_fp)
    return found, oof_y, curve, best_threshold(curve)


def families_and_baseline(
    w: Window,
    plan: Layout,
    features: list[str],
    config: TrainConfig,
    x_dev: np.ndarray,
    y_dev: np.ndarray,
    *,
    oof_y: np.ndarray,
    threshold: float,
    fits_deadline: float,
) -> tuple[list[FamilyResult], Any, float]:
    """The other families on the same folds, the logistic baseline fitted on the dev rows, and the baseline's own
    threshold of least cost out of fold (the model's, when the comparison did not run it)."""
    from training.baseline import fit_logistic
    from training.families import FAMILIES, LOGISTIC, compare

    costs = {"cost_fn": config.cost_fn, "cost_fp": config.cost_fp}
    families = tuple(FAMILIES) if config.compare_families else (LOGISTIC,)
    others, oof = compare(
        w.x, w.y, plan, features, seed=config.seed, costs=costs, deadline=fits_deadline, families=families
    )
    baseline = fit_logistic(x_dev, y_dev, features, seed=config.seed)
    baseline_threshold = (
        best_threshold(cost_curve(oof_y, oof[LOGISTIC], cost_fn=config.cost_fn, cost_fp=config.cost_fp))
        if LOGISTIC in oof
        else threshold
    )
    return others, baseline, baseline_threshold


def export(fitted: Fitted, prepared: Prepared, features: list[str]) -> Exported:
    """The published booster as ONNX, checked against LightGBM on the test part."""
    model = fitted.published
    onnx_bytes = to_onnx(model.booster, features, model.derived)
    return Exported(onnx_bytes, check_parity(model.booster, onnx_bytes, prepared.x_test, derived=model.derived))


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
    published = fitted.published
    names = published.feature_names(features)
    importance = dict(zip(names, published.booster.feature_importance("gain").round(3).tolist(), strict=True))
    derived = published.derived.to_manifest(features) if published.derived is not None else []
    search = {
        "trials": found.trials,
        "interactions": found.interactions,
        "linear": found.linear,
        "max_bin": found.max_bin,
        "pruned": found.pruned,
        "stopped_by": found.stopped_by,
        "seconds": found.seconds,
        "cv_log_loss": round(found.cv_log_loss, 6),
        "cv_pr_auc": round(found.cv_pr_auc, 5),
        "fold_pr_auc": [round(s, 5) for s in found.fold_pr_auc],
        "best_iterations": found.best_iterations,
        "history": found.history,
    }
    models_figures = {
        "metrics": "backtest model: the chosen configuration fitted on the dev rows, measured on the test part",
        "published": "refitted on every row of the window (test part included); no held-out figure of its own",
        "backtest_rows": p.plan.dev_stop,
        "backtest_boost_rounds": fitted.backtest_rounds,
        "published_rows": p.rows,
        "published_boost_rounds": fitted.published_rounds,
        "threshold": "cost-optimal on the folds' out-of-fold probabilities",
    }
    comparison = [r.row() for r in fitted.comparison]
    explanations = dataclasses.asdict(fitted.explanations)
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
            "figures": models_figures,
            "dataset": settings.dataset_name,
            "dataset_version": p.dataset_version,
            "trained_on": p.files,
            "split": p.split,
            "hyperparameters": {
                **found.params,
                "num_boost_round": fitted.published_rounds,
                "max_bin": found.max_bin,
                "interactions": found.interactions,
                "linear": found.linear,
            },
            "derived_features": derived,
            "search": {k: v for k, v in search.items() if k != "history"},
            "models_comparison": comparison,
            "feature_importance": importance,
            "shap_importance": explanations["importance"][:30],
            "parity_max_abs_diff": exported.parity,
            "metric_intervals": intervals(p.y_test, fitted.backtest_test_probabilities),
            "segments": segments(
                p.y_test,
                fitted.backtest_test_probabilities,
                fitted.threshold,
                amount=p.test_column(features, "amount"),
                seconds=p.test_time,
                cost_fn=verdict.cost_fn,
                cost_fp=verdict.cost_fp,
            ),
            "drift_at_training": {"checked": p.drift.checked, "alert": p.drift.alert, "message": p.drift.message},
            **costs,
            "training_profile": p.training_profile(features),
            # the scores live traffic should resemble: the backtest model on rows it never saw
            "score_profile": drift.score_profile(fitted.backtest_test_probabilities, PROBABILITY_BUCKETS),
            "training_seconds": round(time.monotonic() - started, 3),
        },
        extra_files={"model.txt": published.booster.model_to_string().encode()},
    )
    card = models.write_card(manifest)
    if promote:
        from shared.adapters.audit import service_actor

        try:
            models.promote(
                model_version, expected_etag=verdict.pointer_etag, reason=reason, actor=service_actor("retrain")
            )
        except ConcurrentUpdateError as exc:
            promote, reason = False, exc.reason
    plotted = {
        "new model (backtest)": curves(p.y_test, fitted.backtest_test_probabilities),
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
        hyperparameters={**found.params, "num_boost_round": fitted.published_rounds},
        feature_importance=importance,
        figures=models_figures,
        models_comparison=comparison,
        explanations=explanations,
        derived_features=derived,
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
    run = dataclasses.replace(run, model_card=card)
    run = dataclasses.replace(run, mlflow=_track(settings, as_dict(run), exported.onnx_bytes, manifest))
    _write_reports(store, as_dict(run), fitted)
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


def _column(x: np.ndarray, features: list[str], name: str) -> np.ndarray | None:
    """The column of ``x`` named ``name`` (any case), ``None`` when the contract has none."""
    index = next((i for i, f in enumerate(features) if f.lower() == name), None)
    return None if index is None else np.asarray(x[:, index], dtype=np.float64)


def _track(settings: Settings, summary: dict[str, Any], onnx_bytes: bytes, manifest: dict[str, Any]) -> dict[str, Any]:
    """Log to MLflow; MLflow is the record, not the source of truth, so its failure does not fail the run."""
    from shared.domain.model_card import markdown
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
            configured_root=settings.mlflow_artifact_root,
            model_card=markdown(manifest),
        )
    except Exception as exc:
        log.exception("MLflow logging failed; the model is published and the decision stands")
        return {"error": f"{type(exc).__name__}: {exc}", "tracking_uri": settings.mlflow_tracking_uri}


def _write_reports(store: BlobStore, summary: dict[str, Any], fitted: Fitted) -> None:
    from training.explain import importance_csv
    from training.families import comparison_csv
    from training.report import training_html

    name = f"training/{summary['model_version']}"
    store.put_bytes(
        "reports", f"{name}.json", json.dumps(summary, indent=1, default=str).encode(), content_type="application/json"
    )
    store.put_bytes("reports", f"{name}.html", training_html(summary).encode(), content_type="text/html; charset=utf-8")
    store.put_bytes(
        "reports", f"{name}/models_comparison.csv", comparison_csv(fitted.comparison).encode(), content_type="text/csv"
    )
    store.put_bytes(
        "reports", f"{name}/shap_importance.csv", importance_csv(fitted.explanations).encode(), content_type="text/csv"
    )
