"""Model families compared on the same rolling-origin folds as the LightGBM search.

Logistic regression (the baseline), LightGBM (the searched configuration's own out-of-fold
figures), scikit-learn's HistGradientBoosting, extra-trees and a small MLP: each is fitted on every
fold's training rows and scored on its validation block, so every family is judged on the same
later-than-training rows. Each family's threshold is its own cost-optimal one on its pooled
out-of-fold probabilities. The served family stays LightGBM (ONNX export, TreeSHAP); the table says
whether another family would have won on these folds.

The slower families (extra-trees, the MLP) are fitted on at most ``MAX_FIT_ROWS`` of each fold's
newest training rows, and a family that would start after ``deadline`` is reported as skipped, so
the comparison never holds a retrain past its budget (the logistic baseline, cheap and needed by the
gate, always runs). Fit time is per fold, scoring time per
thousand rows.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from training.evaluation import best_threshold, cost_curve, evaluate

if TYPE_CHECKING:
    from training.window import Layout

log = logging.getLogger(__name__)

MAX_FIT_ROWS = 120_000
LIGHTGBM = "lightgbm"
LOGISTIC = "logistic_regression"


def _logistic(features: list[str], seed: int) -> Any:
    from training.baseline import logistic_pipeline

    return logistic_pipeline(features, seed=seed)


def _hist_gradient_boosting(_features: list[str], seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        learning_rate=0.08,
        max_iter=400,
        max_leaf_nodes=15,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.15,
        n_iter_no_change=30,
        random_state=seed,
    )


def _extra_trees(_features: list[str], seed: int) -> Any:
    from sklearn.ensemble import ExtraTreesClassifier

    return ExtraTreesClassifier(n_estimators=150, min_samples_leaf=10, max_features="sqrt", n_jobs=2, random_state=seed)


def _mlp(features: list[str], seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline

    from training.baseline import prepared_columns

    # No early stopping: its random validation share holds a handful of frauds and stops the fit at once.
    network = MLPClassifier(
        hidden_layer_sizes=(64, 32),
        alpha=1e-3,
        batch_size=512,
        learning_rate_init=1e-3,
        max_iter=30,
        tol=0.0,
        random_state=seed,
    )
    return make_pipeline(prepared_columns(features), network)


# name -> (factory, fitted on at most MAX_FIT_ROWS rows per fold)
FAMILIES: dict[str, tuple[Callable[[list[str], int], Any], bool]] = {
    LOGISTIC: (_logistic, False),
    "hist_gradient_boosting": (_hist_gradient_boosting, False),
    "extra_trees": (_extra_trees, True),
    "mlp": (_mlp, True),
}


@dataclass(frozen=True)
class FamilyResult:
    """One family's figures on the folds (``None`` values when it was skipped)."""

    family: str
    pr_auc: float | None
    pr_auc_sd: float | None
    auc: float | None
    cost: float | None
    threshold: float | None
    fit_seconds: float | None
    score_ms_per_1k: float | None
    fit_rows: int | None
    note: str = ""

    def row(self) -> dict[str, Any]:
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _summarise(
    family: str,
    y_blocks: list[np.ndarray],
    p_blocks: list[np.ndarray],
    *,
    fit_seconds: float,
    score_seconds: float,
    fit_rows: int,
    costs: dict[str, float],
    note: str = "",
) -> tuple[FamilyResult, np.ndarray]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    pr = [float(average_precision_score(y, p)) for y, p in zip(y_blocks, p_blocks, strict=True)]
    auc = [float(roc_auc_score(y, p)) for y, p in zip(y_blocks, p_blocks, strict=True)]
    y_all, p_all = np.concatenate(y_blocks), np.concatenate(p_blocks)
    threshold = best_threshold(cost_curve(y_all, p_all, cost_fn=costs["cost_fn"], cost_fp=costs["cost_fp"]))
    pooled = evaluate(y_all, p_all, threshold, **costs)
    rows = sum(y.size for y in y_blocks)
    result = FamilyResult(
        family,
        float(np.mean(pr)),
        float(np.std(pr)),
        float(np.mean(auc)),
        float(pooled["cost"]),
        threshold,
        fit_seconds / len(y_blocks),
        1e6 * score_seconds / rows,  # milliseconds per 1,000 rows
        fit_rows,
        note,
    )
    return result, p_all


def lightgbm_row(
    y: np.ndarray, plan: Layout, oof: np.ndarray, *, fit_seconds: float, score_ms_per_1k: float, costs: dict[str, float]
) -> FamilyResult:
    """The searched LightGBM configuration's row, from the search's own out-of-fold probabilities."""
    y_blocks, p_blocks, at = [], [], 0
    for fold in plan.folds:
        n = fold.valid_stop - fold.train_stop
        y_blocks.append(y[fold.train_stop : fold.valid_stop])
        p_blocks.append(oof[at : at + n])
        at += n
    result, _ = _summarise(
        LIGHTGBM,
        y_blocks,
        p_blocks,
        fit_seconds=0.0,
        score_seconds=0.0,
        fit_rows=plan.folds[-1].train_stop,
        costs=costs,
        note="the searched configuration (the served family)",
    )
    return FamilyResult(**{**result.__dict__, "fit_seconds": fit_seconds, "score_ms_per_1k": score_ms_per_1k})


def compare(
    x: np.ndarray,
    y: np.ndarray,
    plan: Layout,
    features: list[str],
    *,
    seed: int,
    costs: dict[str, float],
    deadline: float,
    families: tuple[str, ...] = tuple(FAMILIES),
) -> tuple[list[FamilyResult], dict[str, np.ndarray]]:
    """Every family in ``families`` on the folds; also each fitted family's pooled out-of-fold probabilities."""
    results, oof = [], {}
    for family in families:
        factory, capped = FAMILIES[family]
        if time.monotonic() > deadline and family != LOGISTIC:  # the baseline is cheap and always needed
            results.append(
                FamilyResult(family, None, None, None, None, None, None, None, None, "skipped: time budget spent")
            )
            continue
        y_blocks, p_blocks, fit_seconds, score_seconds, fit_rows = [], [], 0.0, 0.0, 0
        for fold in plan.folds:
            start = max(0, fold.train_stop - MAX_FIT_ROWS) if capped else 0
            x_fit, y_fit = x[start : fold.train_stop], y[start : fold.train_stop]
            began = time.perf_counter()
            with warnings.catch_warnings():  # the MLP's fixed epoch budget is deliberate, not a failure to converge
                warnings.filterwarnings("ignore", message=".*Maximum iterations.*")
                model = factory(features, seed).fit(x_fit, y_fit)
            fit_seconds += time.perf_counter() - began
            began = time.perf_counter()
            p = model.predict_proba(x[fold.train_stop : fold.valid_stop])[:, 1]
            score_seconds += time.perf_counter() - began
            y_blocks.append(y[fold.train_stop : fold.valid_stop])
            p_blocks.append(np.asarray(p, dtype=np.float64))
            fit_rows = max(fit_rows, y_fit.size)
        note = f"newest {MAX_FIT_ROWS:,} training rows per fold" if capped and fit_rows == MAX_FIT_ROWS else ""
        result, oof[family] = _summarise(
            family,
            y_blocks,
            p_blocks,
            fit_seconds=fit_seconds,
            score_seconds=score_seconds,
            fit_rows=fit_rows,
            costs=costs,
            note=note,
        )
        results.append(result)
        log.info("comparison: %s mean fold PR-AUC %.4f (%.1fs a fold)", family, result.pr_auc, result.fit_seconds)
    return results, oof


COLUMNS = (
    "family",
    "pr_auc",
    "pr_auc_sd",
    "auc",
    "cost",
    "threshold",
    "fit_seconds",
    "score_ms_per_1k",
    "fit_rows",
    "note",
)


def comparison_csv(results: list[FamilyResult]) -> str:
    """``models_comparison.csv``: one row per family, the figures of ``FamilyResult``."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for result in results:
        writer.writerow(result.row())
    return out.getvalue()


def winner(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The row (``FamilyResult.row()``) of the highest mean fold PR-AUC; skipped families do not compete."""
    ranked = [r for r in rows if r.get("pr_auc") is not None]
    return max(ranked, key=lambda r: float(r["pr_auc"])) if ranked else None
