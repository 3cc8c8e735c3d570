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
