"""The champion/challenger gate, for any candidate model: the retraining run's and each federated round's.

A candidate is judged on the curated data exactly as a retrained LightGBM model is: the
decision threshold of least business cost on the validation part, metrics once on the test
part (same time split), and promotion only if it costs less than the champion on that same
test part without losing more than ``PROMOTION_PR_AUC_MARGIN`` of PR-AUC.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.adapters.model_store import ModelStore
from shared.domain.contract import DatasetContract, get_contract
from shared.domain.errors import BlobNotFoundError, ModelIntegrityError, ModelNotAvailableError
from shared.domain.verdicts import Judged, Skipped, Verdict
from training.evaluation import best_threshold, cost_curve, evaluate

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.domain.settings import Settings

log = logging.getLogger(__name__)


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
    models: ModelStore, champion: str, contract: DatasetContract, x_test: np.ndarray
) -> tuple[np.ndarray, float] | None:
    """The champion's test-part probabilities and threshold; ``None`` when it cannot be scored."""
    from shared.scoring.scorer import load_model

    try:
        model = load_model(models, champion, expected_features=contract.feature_names, threads=2)
    except (ModelIntegrityError, ModelNotAvailableError) as exc:
        log.warning("champion %s cannot be scored (%s); the new model replaces it", champion, exc.reason)
        return None
    return model.predict_proba(x_test), model.threshold


def judge_scores(
    models: ModelStore,
    contract: DatasetContract,
    *,
    dataset_version: str,
    split: dict[str, Any],
    threshold: float,
    y_test: np.ndarray,
    test_probabilities: np.ndarray,
    x_test: np.ndarray,
    baseline_metrics: dict[str, float],
    settings: Settings,
) -> tuple[Judged, np.ndarray | None]:
    """The gate's one rule for a candidate already scored on the test part: its metrics beside the champion's
    on the same rows, and whether to promote; also the champion's test probabilities (``None`` without one)."""
    costs = {"cost_fn": settings.cost_fn, "cost_fp": settings.cost_fp}
    metrics = evaluate(y_test, test_probabilities, threshold, **costs)
    champion, pointer_etag = models.champion()
    scored = champion_scores(models, champion, contract, x_test) if champion else None
    champion_metrics = evaluate(y_test, scored[0], scored[1], **costs) if scored else None
    promote, reason = decide_promotion(
        metrics, champion_metrics, settings.promotion_pr_auc_margin, baseline=baseline_metrics
    )
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
        cost_fn=settings.cost_fn,
        cost_fp=settings.cost_fp,
    )
    return verdict, (scored[0] if scored else None)


def judge(store: BlobStore, settings: Settings, onnx_bytes: bytes) -> Verdict:
    """Threshold, test metrics and the promotion decision for an ONNX candidate (``features`` input).

    ``Skipped`` with the reason when there is no curated data to judge on; otherwise ``Judged``, with the
    champion pointer's ETag to promote with.
    """
    from training.baseline import fit_logistic
    from training.data import load_dataset, matrix, time_split
    from training.onnx_export import onnx_probabilities

    contract = get_contract(settings.dataset_name)
    label, time_col = contract.label, contract.time_column
    if label is None or time_col is None:
        return Skipped(f"dataset {contract.name} has no label or time column")
    try:
        version, _, frame = load_dataset(store, contract)
    except BlobNotFoundError as exc:
        return Skipped(f"no curated data to judge on ({exc.reason})")
    train, valid, test, split = time_split(frame, time_col.name)
    y_train, y_valid, y_test = (p[label.name].to_numpy(dtype=np.int8) for p in (train, valid, test))
    if any(len(np.unique(y)) < 2 for y in (y_train, y_valid, y_test)):
        return Skipped("the training, validation or test part has only one class")
    x_train, x_valid, x_test = (matrix(p, contract.feature_names) for p in (train, valid, test))
    cost_fn, cost_fp = settings.cost_fn, settings.cost_fp
    threshold = best_threshold(
        cost_curve(y_valid, onnx_probabilities(onnx_bytes, x_valid), cost_fn=cost_fn, cost_fp=cost_fp)
    )
    baseline = fit_logistic(x_train, y_train, contract.feature_names, seed=settings.train_seed)
    baseline_threshold = best_threshold(
        cost_curve(y_valid, baseline.predict_proba(x_valid)[:, 1], cost_fn=cost_fn, cost_fp=cost_fp)
    )
    baseline_metrics = evaluate(
        y_test, baseline.predict_proba(x_test)[:, 1], baseline_threshold, cost_fn=cost_fn, cost_fp=cost_fp
    )
    verdict, _ = judge_scores(
        ModelStore(store, settings.model_name),
        contract,
        dataset_version=version,
        split=split,
        threshold=threshold,
        y_test=y_test,
        test_probabilities=onnx_probabilities(onnx_bytes, x_test),
        x_test=x_test,
        baseline_metrics=baseline_metrics,
        settings=settings,
    )
    return verdict
