"""The configuration search on rolling-origin folds: five far-apart starts (one with the linear score, one
with the products of interacting pairs), each with its fair share of the time, steered by the data,
deterministic by seed, stopped by its deadline."""

from __future__ import annotations

import time

import numpy as np
import pytest

from training.search import ADDITIVE, LARGER, SMOOTH, STARTS, search_lightgbm
from training.window import Window, layout


def _window(logit_of, n: int = 15_000, seed: int = 5) -> Window:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit_of(x)))).astype(np.int8)
    return Window("v", ["a.parquet"], 0, x, y, np.arange(n, dtype=np.float64), np.zeros(n, dtype=np.int32))


@pytest.fixture(scope="module")
def smooth() -> Window:
    return _window(lambda x: -5.0 + 2.0 * x[:, 0] - 1.5 * x[:, 1] + 0.5 * x[:, 2])


def _search(window: Window, **kwargs):
    options = {"seed": 7, "trials": 3, "deadline": time.monotonic() + 300, "num_boost_round": 80, **kwargs}
    return search_lightgbm(window.x, window.y, layout(window), [f"f{i}" for i in range(6)], **options)


def test_the_search_starts_from_the_far_apart_configurations_and_is_deterministic(smooth):
    first, second = _search(smooth, trials=len(STARTS)), _search(smooth, trials=len(STARTS))
    assert first.trials == len(STARTS) == 5 and first.stopped_by == "trials"
    assert [(h["num_leaves"], h["interactions"], h["linear"]) for h in first.history] == [
        (s["num_leaves"], s["interactions"], s["linear"]) for s in STARTS
    ]
    assert not any(h["cut_short"] for h in first.history)
    assert "interactions" not in first.params and "linear" not in first.params  # the pipeline's, not LightGBM's
    assert first.params == second.params and first.cv_pr_auc == second.cv_pr_auc
    assert np.array_equal(first.oof, second.oof)
    # the kept trial has the lowest mean fold log loss: nothing has to beat a favoured start
    assert first.cv_log_loss == pytest.approx(min(h["cv_log_loss"] for h in first.history), abs=1e-6)
    kept = next(h for h in first.history if h["kept"] and h["cv_log_loss"] == round(first.cv_log_loss, 6))
    assert kept["cv_pr_auc"] == pytest.approx(first.cv_pr_auc, abs=1e-5)
    plan = layout(smooth)
    assert first.oof.size == sum(f.valid_stop - f.train_stop for f in plan.folds)
    assert len(first.fold_pr_auc) == len(first.best_iterations) == len(plan.folds) == 3


def test_the_data_decides_whether_products_of_interacting_pairs_are_used(smooth):
    """Where fraud is the product of two features, the same small trees do better with products, and the
    search keeps them, also over bigger trees on the inputs alone."""
    interactions = _window(lambda x: -6.0 + 3.0 * x[:, 0] * x[:, 1] + 1.0 * x[:, 2], n=30_000)
    found = _search(interactions, trials=len(STARTS), num_boost_round=300)
    scores = {(h["num_leaves"], h["interactions"]): h["cv_pr_auc"] for h in found.history if not h["linear"]}
    losses = {(h["num_leaves"], h["interactions"]): h["cv_log_loss"] for h in found.history if not h["linear"]}
    assert found.interactions, (losses, scores)
    assert scores[(ADDITIVE["num_leaves"], True)] > scores[(SMOOTH["num_leaves"], False)] + 0.02, scores
    assert losses[(ADDITIVE["num_leaves"], True)] < losses[(LARGER["num_leaves"], False)], losses


def test_rounds_scale_sublinearly_with_the_rows_of_the_final_fit(smooth):
    found = _search(smooth)
    rows = found.fold_train_rows[-1]
    expected = np.mean(
        [b * np.sqrt(rows / n) for b, n in zip(found.best_iterations, found.fold_train_rows, strict=True)]
    )
    assert found.rounds_for(rows, cap=10_000) == round(expected)
    assert abs(found.rounds_for(4 * rows, cap=10_000) - 2 * expected) <= 1  # four times the rows: twice the rounds
    assert found.rounds_for(10**9, cap=50) == 50


def test_search_stops_at_its_deadline_with_a_usable_result(smooth):
    started = time.monotonic()
    result = _search(smooth, trials=10_000, deadline=started + 1.5, num_boost_round=100_000)
    assert result.stopped_by == "deadline" and result.trials < 10_000
    assert time.monotonic() - started < 30  # every fold stops boosting at the deadline
    assert np.all((result.oof >= 0) & (result.oof <= 1)) and result.cv_pr_auc > 0.05


def test_every_start_is_measured_when_the_budget_would_not_cover_the_first_alone():
    """On a slow or busy machine the first start alone could eat the whole budget and the others never
    run (on ``interactions`` the products start was never reached and the PR-AUC gap was 0.315): each
    start has its share of the time left, and one cut short competes as it is."""
    window = _window(lambda x: -5.0 + 2.0 * x[:, 0] - 1.5 * x[:, 1] + 0.5 * x[:, 2], n=60_000, seed=9)
    began = time.monotonic()
    _search(window, trials=1, num_boost_round=4000)
    alone = time.monotonic() - began  # the first start, uncut, on this machine now
    began = time.monotonic()
    found = _search(window, trials=len(STARTS), deadline=began + alone, num_boost_round=4000)
    took = time.monotonic() - began
    assert [(h["num_leaves"], h["interactions"], h["linear"]) for h in found.history] == [
        (s["num_leaves"], s["interactions"], s["linear"]) for s in STARTS
    ], found.history
    assert found.history[0]["cut_short"]  # its share was a fifth of what it needed
    assert took < 2 * alone + 10, (took, alone)
    assert found.cv_log_loss == pytest.approx(min(h["cv_log_loss"] for h in found.history), abs=1e-6)
