"""The fitting steps both engines share: the search and its threshold, the other families and the baseline.

They run in this process on a window (every row on one instance; the search sample on a Dask cluster),
so the single-node and Dask engines (``training.engines``) call the same code for them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from training.evaluation import best_threshold, cost_curve

if TYPE_CHECKING:
    from training.config import TrainConfig
    from training.families import FamilyResult
    from training.search import SearchResult
    from training.window import Layout, Window

RESERVE_FRACTION = 0.25  # of the time budget, kept for export, parity, evaluation, publishing and MLflow


def deadline_of_fits(deadline: float, config: TrainConfig) -> float:
    """When the fits must stop (monotonic): the run's deadline less the reserve for what follows them."""
    return deadline - RESERVE_FRACTION * config.budget_seconds


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
