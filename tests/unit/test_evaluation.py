"""Cost curve and threshold choice against a direct count."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation import best_threshold, cost_curve, evaluate


def test_cost_curve_counts_and_best_threshold():
    rng = np.random.default_rng(2)
    y = rng.random(2_000) < 0.05
    p = np.clip(y * 0.6 + rng.random(2_000) * 0.5, 0, 1)
    curve = cost_curve(y, p, cost_fn=10, cost_fp=1)
    assert curve[0]["threshold"] == 0.05 and curve[-1]["threshold"] == 0.95 and len(curve) == 91
    for point in curve[::10]:
        t = point["threshold"]
        assert point["fn"] == int(np.sum(y & (p < t))) and point["fp"] == int(np.sum(~y & (p >= t)))
    best = best_threshold(curve)
    assert min(c["cost"] for c in curve) == next(c["cost"] for c in curve if c["threshold"] == best)
    m = evaluate(y, p, best, cost_fn=10, cost_fp=1)
    assert m["frauds_caught"] + m["frauds_missed"] == int(y.sum())
    assert m["cost"] == 10 * m["frauds_missed"] + m["false_alarms"]


@pytest.mark.slow
def test_paired_auc_gap_is_the_difference_and_its_noise_shrinks_with_more_rows():
    from sklearn.metrics import roc_auc_score

    from training.evaluation import paired_auc_gap

    def draw(n: int, seed: int):
        rng = np.random.default_rng(seed)
        y = rng.random(n) < 0.05
        truth = y * 1.0 + rng.normal(size=n)
        return y.astype(int), truth, truth + rng.normal(scale=0.5, size=n)  # a noisier model of the truth

    y, truth, model = draw(2_000, 1)
    gap, sd = paired_auc_gap(y, truth, model)
    assert gap == pytest.approx(roc_auc_score(y, truth) - roc_auc_score(y, model)) and gap > 0
    _, sd_big = paired_auc_gap(*draw(50_000, 2))
    assert 0 < sd_big < sd / 2  # 25 times the rows: about a fifth of the spread
    assert paired_auc_gap(y, truth, truth) == (0.0, 0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_resample_scored_by_its_counts_is_scikit_learns_figure_on_the_drawn_rows(seed: int) -> None:
    """The bootstrap sorts the scores once and weighs each resample by how often each row was drawn: the very
    ROC-AUC and average precision scikit-learn gives on the drawn rows, with many tied scores."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    from training.evaluation import _Ranked

    rng = np.random.default_rng(seed)
    n = 3000
    y = (rng.random(n) < 0.05).astype(int)
    scores = np.round(rng.random(n) * 0.4 + y * rng.random(n) * 0.6, 2)  # ties on purpose
    ranked = _Ranked(y, scores)
    for _ in range(20):
        rows = rng.integers(0, n, n)
        got = ranked.metrics(np.bincount(rows, minlength=n).astype(np.float64))
        assert got[0] == pytest.approx(roc_auc_score(y[rows], scores[rows]), abs=1e-12)
        assert got[1] == pytest.approx(average_precision_score(y[rows], scores[rows]), abs=1e-12)
