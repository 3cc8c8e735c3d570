"""The gate's promotion rule, one home for retraining and federated rounds."""

from __future__ import annotations

from training.gate import decide_promotion


def test_a_challenger_must_cost_less_without_losing_more_than_the_margin_of_pr_auc():
    new = {"cost": 10.0, "pr_auc": 0.80}
    assert decide_promotion(new, {"cost": 20.0, "pr_auc": 0.805}, 0.01)[0]
    assert not decide_promotion(new, {"cost": 20.0, "pr_auc": 0.85}, 0.01)[0]  # cheaper, but PR-AUC too low
    assert not decide_promotion(new, {"cost": 10.0, "pr_auc": 0.5}, 0.01)[0]  # not cheaper
    promote, reason = decide_promotion(new, None, 0.01)
    assert promote and reason.startswith("first model")
