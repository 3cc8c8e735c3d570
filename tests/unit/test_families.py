"""The model comparison: every family on the same folds, its own cost threshold, skipped past the budget."""

from __future__ import annotations

import time

import numpy as np
import pytest

from training.families import FAMILIES, LIGHTGBM, compare, comparison_csv, lightgbm_row, winner
from training.window import Window, layout

COSTS = {"cost_fn": 10.0, "cost_fp": 1.0}


@pytest.fixture(scope="module")
def linear() -> Window:
    """Fraud linear in the features: logistic regression is the right model here."""
    rng = np.random.default_rng(3)
    n = 12_000
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-4.0 + 2.0 * x[:, 0] - 1.5 * x[:, 1])))).astype(np.int8)
    return Window("v", ["a"], 0, x, y, np.arange(n, dtype=np.float64), np.zeros(n, dtype=np.int32))


def test_every_family_is_judged_on_the_same_later_rows(linear):
    plan = layout(linear)
    results, oof = compare(
        linear.x, linear.y, plan, ["a", "b", "c", "d"], seed=1, costs=COSTS, deadline=time.monotonic() + 300
    )
    assert [r.family for r in results] == list(FAMILIES)
    validation_rows = sum(f.valid_stop - f.train_stop for f in plan.folds)
    for r in results:
        assert oof[r.family].shape == (validation_rows,)
        assert r.pr_auc is not None and 0.0 < r.pr_auc <= 1.0 and r.auc is not None and r.auc > 0.8, r
        assert r.threshold is not None and 0.05 <= r.threshold <= 0.95
        assert r.fit_seconds is not None and r.fit_seconds > 0 and r.score_ms_per_1k is not None
    by = {r.family: r for r in results}
    assert by["logistic_regression"].pr_auc >= by["extra_trees"].pr_auc  # the right model for linear log-odds


def test_the_winner_is_named_and_the_table_is_a_csv(linear):
    plan = layout(linear)
    results, oof = compare(
        linear.x,
        linear.y,
        plan,
        ["a", "b", "c", "d"],
        seed=1,
        costs=COSTS,
        deadline=time.monotonic() + 300,
        families=("logistic_regression",),
    )
    served = lightgbm_row(
        linear.y, plan, oof["logistic_regression"] * 0.5, fit_seconds=1.0, score_ms_per_1k=2.0, costs=COSTS
    )
    assert served.family == LIGHTGBM and served.pr_auc == pytest.approx(results[0].pr_auc)  # ranks are unchanged
    noisy = lightgbm_row(
        linear.y,
        plan,
        np.random.default_rng(0).random(oof["logistic_regression"].size),
        fit_seconds=1.0,
        score_ms_per_1k=2.0,
        costs=COSTS,
    )
    assert winner([r.row() for r in (noisy, *results)])["family"] == "logistic_regression"
    lines = comparison_csv([noisy, *results]).splitlines()
    assert lines[0] == "family,pr_auc,pr_auc_sd,auc,cost,threshold,fit_seconds,score_ms_per_1k,fit_rows,note"
    assert lines[1].startswith("lightgbm,") and lines[2].startswith("logistic_regression,")


def test_families_past_the_budget_are_listed_as_skipped_not_fitted(linear):
    results, oof = compare(
        linear.x, linear.y, layout(linear), ["a", "b", "c", "d"], seed=1, costs=COSTS, deadline=time.monotonic() - 1
    )
    skipped = [r for r in results if r.family != "logistic_regression"]
    assert skipped and all(r.pr_auc is None and "skipped" in r.note for r in skipped)
    assert set(oof) == {"logistic_regression"}  # the baseline the gate needs always runs
    assert winner([r.row() for r in results])["family"] == "logistic_regression"
