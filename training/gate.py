"""The champion/challenger gate, for any candidate model: the retraining run's and each federated round's.

A candidate is judged on the curated data exactly as a retrained LightGBM model is: the
decision threshold of least business cost on the folds of the training window's dev rows,
metrics once on the test part (the newest rows), and promotion only if it costs less than the
champion on the test rows *neither has trained on* without losing more than
``PROMOTION_PR_AUC_MARGIN`` of PR-AUC. A champion refitted on every row of its window has seen
the test rows of its own data; it is compared only on rows from files it did not train on, and
when those hold fewer than ``MIN_UNSEEN_FRAUDS`` frauds the champion stays (no fair comparison
is possible until new labelled data arrives).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.adapters.model_store import ModelStore
from shared.domain.contract import DatasetContract
from shared.domain.contracts import get_contract
from shared.domain.documents.model import ModelManifest
from shared.domain.encoding import Encoding
from shared.domain.errors import BlobNotFoundError, ModelIntegrityError, ModelNotAvailableError, TrainingError
from shared.domain.verdicts import Judged, Skipped, Verdict
from training.evaluation import best_threshold, cost_curve, evaluate

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.domain.config import TrainingConfig

ChampionScorer = Callable[[str], tuple[np.ndarray, float] | None]  # version -> test-part probabilities, threshold

log = logging.getLogger(__name__)

MIN_UNSEEN_FRAUDS = 5


def decide_promotion(
    new: dict[str, float], champion: dict[str, float] | None, margin: float, *, baseline: dict[str, float]
) -> tuple[bool, str]:
    """Promote when cost is lower than the champion's and PR-AUC is not worse by more than ``margin``;
    with no champion, when PR-AUC is not worse than the logistic ``baseline``'s by more than ``margin``."""
    if champion is None:
        if new["pr_auc"] < baseline["pr_auc"] - margin:
            return False, (
                f"first model, but its PR-AUC {new['pr_auc']:.4f} is below the logistic baseline "
                f"({baseline['pr_auc']:.4f}, same training and test parts) by more than {margin}"
            )
        return True, (
            f"first model (no usable champion); PR-AUC {new['pr_auc']:.4f} against the logistic baseline "
            f"{baseline['pr_auc']:.4f}"
        )
    if new["cost"] >= champion["cost"]:
        return False, f"cost {new['cost']:g} is not lower than the champion's {champion['cost']:g}"
    if new["pr_auc"] < champion["pr_auc"] - margin:
        return False, (
            f"PR-AUC {new['pr_auc']:.4f} is worse than the champion's {champion['pr_auc']:.4f} by more than {margin}"
        )
    return True, f"cost {new['cost']:g} < champion's {champion['cost']:g}"


def champion_scores(
    models: ModelStore, champion: str, contract: DatasetContract, x_test: np.ndarray, encoding: Encoding | None = None
) -> tuple[np.ndarray, float] | None:
    """The champion's test-part probabilities and threshold (``x_test`` coded by ``encoding``, recoded in the
    champion's own categories); ``None`` when it cannot be scored."""
    from shared.domain.encoding import recode
    from shared.scoring.scorer import load_model

    try:
        model = load_model(models, champion, expected_features=contract.model_features, threads=2)
    except (ModelIntegrityError, ModelNotAvailableError) as exc:
        log.warning("champion %s cannot be scored (%s); the new model replaces it", champion, exc.reason)
        return None
    x = recode(x_test, encoding, model.encoding) if model.encoding is not None else x_test
    return model.predict_proba(x), model.threshold


def _unseen_by_champion(models: ModelStore, champion: str, test_files: np.ndarray | None) -> np.ndarray | None:
    """Which test rows come from files the champion did not train on (``None``: all of them)."""
    if test_files is None:
        return None
    try:
        trained = ModelManifest.model_validate(models.manifest(champion)).trained_on or []
    except (ModelIntegrityError, ModelNotAvailableError):
        return None
    if not trained:
        return None
    return np.asarray(~np.isin(test_files, np.asarray(trained, dtype=object)))


def _against_champion(
    models: ModelStore,
    champion: str,
    scored: tuple[np.ndarray, float],
    y_test: np.ndarray,
    test_probabilities: np.ndarray,
    metrics: dict[str, float],
    threshold: float,
    test_files: np.ndarray | None,
    baseline_metrics: dict[str, float],
    config: TrainingConfig,
) -> tuple[bool, str, dict[str, float] | None]:
    """Promote or not against a scored champion, on the test rows it never trained on, with the reason and the
    champion's metrics there (``None`` when too few of those rows hold frauds to compare fairly)."""
    costs = {"cost_fn": config.cost_fn, "cost_fp": config.cost_fp}
    unseen = _unseen_by_champion(models, champion, test_files)
    rows = unseen if unseen is not None else np.ones(y_test.size, dtype=bool)
    frauds = int(y_test[rows].sum())
    if frauds < MIN_UNSEEN_FRAUDS or frauds == int(rows.sum()):
        return (
            False,
            f"the champion {champion} was trained on the test rows: {int(rows.sum())} of {y_test.size} "
            f"are new to it, with {frauds} frauds (at least {MIN_UNSEEN_FRAUDS} are needed to compare fairly); "
            "it stays until new labelled data arrives",
            None,
        )
    champion_metrics = evaluate(y_test[rows], scored[0][rows], scored[1], **costs)
    candidate = evaluate(y_test[rows], test_probabilities[rows], threshold, **costs) if unseen is not None else metrics
    promote, reason = decide_promotion(
        candidate, champion_metrics, config.promotion_pr_auc_margin, baseline=baseline_metrics
    )
    if unseen is not None:
        reason += f" (on the {int(rows.sum())} test rows the champion never trained on, {frauds} frauds)"
    return promote, reason, champion_metrics


def judge_scores(
    models: ModelStore,
    *,
    dataset_version: str,
    split: dict[str, Any],
    threshold: float,
    y_test: np.ndarray,
    test_probabilities: np.ndarray,
    baseline_metrics: dict[str, float],
    config: TrainingConfig,
    score_champion: ChampionScorer,
    test_files: np.ndarray | None = None,
) -> tuple[Judged, np.ndarray | None]:
    """The gate's one rule for a candidate already scored on the test part: its metrics beside the champion's
    on the test rows the champion never trained on, and whether to promote; also the champion's test
    probabilities (``None`` without one). ``test_files`` names each test row's curated file.
    ``score_champion`` (version -> probabilities on the test part and threshold) scores the champion where
    the test rows are: here (``champion_scores``), or on the Dask workers for a distributed run."""
    costs = {"cost_fn": config.cost_fn, "cost_fp": config.cost_fp}
    metrics = evaluate(y_test, test_probabilities, threshold, **costs)
    champion, pointer_etag = models.champion()
    scored = score_champion(champion) if champion else None
    champion_metrics = None
    if scored and champion:
        promote, reason, champion_metrics = _against_champion(
            models,
            champion,
            scored,
            y_test,
            test_probabilities,
            metrics,
            threshold,
            test_files,
            baseline_metrics,
            config,
        )
    else:
        promote, reason = decide_promotion(metrics, None, config.promotion_pr_auc_margin, baseline=baseline_metrics)
    verdict = Judged(
        dataset_version=dataset_version,
        split=split,
        threshold=threshold,
        metrics=metrics,
        champion=champion,
        champion_metrics=champion_metrics,
        baseline_metrics=baseline_metrics,
        promote=promote,
        reason=reason,
        pointer_etag=pointer_etag,
        cost_fn=config.cost_fn,
        cost_fp=config.cost_fp,
    )
    return verdict, (scored[0] if scored else None)


def judge(store: BlobStore, onnx_bytes: bytes, *, config: TrainingConfig) -> Verdict:
    """Threshold, test metrics and the promotion decision for an ONNX candidate (``features`` input).

    The same window and layout as a retraining run: the threshold of least cost on the folds' validation
    blocks, the logistic baseline's out of fold the same way, metrics on the test part. ``Skipped`` with
    the reason when there is no curated data to judge on; otherwise ``Judged``, with the champion
    pointer's ETag to promote with.
    """
    from training.baseline import fit_logistic, logistic_pipeline
    from training.onnx_export import onnx_probabilities
    from training.window import layout, load_window

    contract = get_contract(config.dataset_name)
    if contract.label is None or contract.time_column is None:
        return Skipped(f"dataset {contract.name} has no label or time column")
    try:
        from shared.adapters.erasures import erased

        window = load_window(
            store,
            contract,
            max_rows=config.train_window_rows,
            max_days=config.train_window_days,
            erased=erased(store),
        )
        plan = layout(window)
    except BlobNotFoundError as exc:
        return Skipped(f"no curated data to judge on ({exc.reason})")
    except TrainingError as exc:
        return Skipped(exc.reason)
    features = contract.model_features
    costs = {"cost_fn": config.cost_fn, "cost_fp": config.cost_fp}
    x, y, dev = window.x, window.y, plan.dev_stop
    blocks = [slice(f.train_stop, f.valid_stop) for f in plan.folds]
    y_oof = np.concatenate([y[b] for b in blocks])
    candidate_oof = np.concatenate([onnx_probabilities(onnx_bytes, x[b]) for b in blocks])
    threshold = best_threshold(cost_curve(y_oof, candidate_oof, cost_fn=costs["cost_fn"], cost_fp=costs["cost_fp"]))
    baseline_oof = np.concatenate(
        [
            logistic_pipeline(features, seed=config.train_seed)
            .fit(x[: f.train_stop], y[: f.train_stop])
            .predict_proba(x[b])[:, 1]
            for f, b in zip(plan.folds, blocks, strict=True)
        ]
    )
    baseline = fit_logistic(x[:dev], y[:dev], features, seed=config.train_seed)
    baseline_metrics = evaluate(
        y[dev:],
        baseline.predict_proba(x[dev:])[:, 1],
        best_threshold(cost_curve(y_oof, baseline_oof, cost_fn=costs["cost_fn"], cost_fp=costs["cost_fp"])),
        **costs,
    )
    models = ModelStore(store, config.model_name)
    x_test = x[dev:]
    verdict, _ = judge_scores(
        models,
        dataset_version=window.dataset_version,
        split=plan.describe(window.time),
        threshold=threshold,
        y_test=y[dev:],
        test_probabilities=onnx_probabilities(onnx_bytes, x_test),
        baseline_metrics=baseline_metrics,
        config=config,
        score_champion=lambda version: champion_scores(models, version, contract, x_test),
        test_files=np.asarray(window.files, dtype=object)[window.part[dev:]],
    )
    return verdict
