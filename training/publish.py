"""The last step of a run: publish the version, promote it if the gate said so, and record the run.

The published version's manifest describes the *published* model (refitted on every row of the window)
beside the *backtest* model's figures (fitted on the dev rows, measured on the test part): ``figures``
says which model each figure belongs to. Promotion is conditional on the champion pointer's ETag the
gate read, so a concurrent promotion wins and this run reports that it did not promote.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.adapters.model_store import ModelStore, new_version
from shared.domain import drift, layout
from shared.domain.contract import DatasetContract
from shared.domain.contracts import get_contract
from shared.domain.documents.model import LIGHTGBM, ModelDescription
from shared.domain.errors import ConcurrentUpdateError
from shared.domain.results import as_dict
from shared.domain.telemetry import PROBABILITY_BUCKETS
from training.evaluation import curves, intervals, segments
from training.records import peak_rss_mb, track, write_reports
from training.run import TrainingRun

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.domain.config import TrainingConfig
    from shared.domain.verdicts import Judged
    from training.search import SearchResult
    from training.steps import Exported, Fitted, Prepared

log = logging.getLogger(__name__)


def publish(
    store: BlobStore,
    models: ModelStore,
    prepared: Prepared,
    fitted: Fitted,
    exported: Exported,
    verdict: Judged,
    champion_p: np.ndarray | None,
    *,
    config: TrainingConfig,
    features: list[str],
    started: float,
    started_at: datetime,
) -> TrainingRun:
    """Publish the version, promote it if the gate said so (ETag-conditional), and write the reports and MLflow."""
    p, found = prepared, fitted.found
    contract = get_contract(config.dataset_name)
    reason = verdict.reason + (f"; {p.drift.message}" if p.drift.alert else "")
    promote = verdict.promote
    model_version = new_version(salt=p.dataset_version)
    published = fitted.published
    names = published.feature_names(features)
    importance = dict(zip(names, published.booster.feature_importance("gain").round(3).tolist(), strict=True))
    derived = published.derived.to_manifest(features) if published.derived is not None else []
    search = _search(found)
    figures = {
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
    manifest = models.publish(
        model_version,
        exported.onnx_bytes,
        ModelDescription(
            kind=LIGHTGBM,
            feature_names=features,
            categories=p.window.encoding.to_manifest() if p.window.encoding is not None else {},
            input_name="features",
            threshold=fitted.threshold,
            metrics=verdict.metrics,
            baseline_metrics=fitted.baseline_metrics,
            figures=figures,
            dataset=config.dataset_name,
            contract_sha256=contract.sha256,
            contract_input_sha256=contract.input_sha256,
            dataset_version=p.dataset_version,
            trained_on=p.files,
            split=p.split,
            hyperparameters={
                **found.params,
                "num_boost_round": fitted.published_rounds,
                "max_bin": found.max_bin,
                "interactions": found.interactions,
                "linear": found.linear,
            },
            derived_features=derived,
            search={k: v for k, v in search.items() if k != "history"},
            models_comparison=comparison,
            feature_importance=importance,
            shap_importance=explanations["importance"][:30],
            parity_max_abs_diff=exported.parity,
            metric_intervals=intervals(p.y_test, fitted.backtest_test_probabilities),
            segments=segments(
                p.y_test,
                fitted.backtest_test_probabilities,
                fitted.threshold,
                amount=p.test_amount(features),
                seconds=p.test_time,
                time_zone=contract.time_zone if _timestamped(contract) else None,
                cost_fn=verdict.cost_fn,
                cost_fp=verdict.cost_fp,
            ),
            drift_at_training={"checked": p.drift.checked, "alert": p.drift.alert, "message": p.drift.message},
            cost_fn=verdict.cost_fn,
            cost_fp=verdict.cost_fp,
            training_profile=p.training_profile(features),
            # the scores live traffic should resemble: the backtest model on rows it never saw
            score_profile=drift.score_profile(fitted.backtest_test_probabilities, PROBABILITY_BUCKETS),
            training_seconds=round(time.monotonic() - started, 3),
        ),
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
        figures=figures,
        models_comparison=comparison,
        explanations=explanations,
        derived_features=derived,
        cost_curve=fitted.curve,
        curves=plotted,
        cost_fn=verdict.cost_fn,
        cost_fp=verdict.cost_fp,
        drift=p.drift,
        drift_alert=p.drift.alert,
        sha256=manifest.sha256,
        train_seconds=round(time.monotonic() - started, 3),
        peak_rss_mb=peak_rss_mb(),
        report=layout.display(layout.REPORTS, layout.training_report(model_version, "html")),
    )
    run = dataclasses.replace(run, model_card=card)
    from training.report import training_html

    html = training_html(as_dict(run))  # drawn once: the report never reads the MLflow entry added next
    run = dataclasses.replace(run, mlflow=track(as_dict(run), exported.onnx_bytes, manifest, config=config, html=html))
    write_reports(store, as_dict(run), fitted, started_at=started_at, html=html)
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


def _timestamped(contract: DatasetContract) -> bool:
    """Whether the event time is a timestamp (hours of the day in the contract's zone), not seconds from a start."""
    return contract.time_column is not None and contract.time_column.dtype == "timestamp"


def _search(found: SearchResult) -> dict[str, Any]:
    """What the search did, for the manifest (without its history) and the report."""
    return {
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
