"""The gate's promotion rule, one home for retraining and federated rounds."""

from __future__ import annotations

from training.gate import decide_promotion

BASELINE = {"cost": 30.0, "pr_auc": 0.70}


def test_a_challenger_must_cost_less_without_losing_more_than_the_margin_of_pr_auc():
    new = {"cost": 10.0, "pr_auc": 0.80}
    assert decide_promotion(new, {"cost": 20.0, "pr_auc": 0.805}, 0.01, baseline=BASELINE)[0]
    assert not decide_promotion(new, {"cost": 20.0, "pr_auc": 0.85}, 0.01, baseline=BASELINE)[0]  # PR-AUC too low
    assert not decide_promotion(new, {"cost": 10.0, "pr_auc": 0.5}, 0.01, baseline=BASELINE)[0]  # not cheaper
    promote, reason = decide_promotion(new, None, 0.01, baseline=BASELINE)
    assert promote and reason.startswith("first model")


def test_a_first_model_worse_than_the_logistic_baseline_is_not_promoted():
    """Finding 8: with no champion, a poisoned model used to be promoted as "first model"."""
    poisoned = {"cost": 90.0, "pr_auc": 0.05}
    promote, reason = decide_promotion(poisoned, None, 0.01, baseline=BASELINE)
    assert not promote
    assert "below the logistic baseline (0.7000" in reason
    # within the margin of the baseline is still a first model
    assert decide_promotion({"cost": 31.0, "pr_auc": 0.695}, None, 0.01, baseline=BASELINE)[0]
