"""The federated model family, as the server uses it: the bank package's math, one definition for both sides.

Logistic regression on standardised features, trained by full-batch gradient descent; see
``fraudops_bank.model`` (which banks install on their own, so the math lives there).
"""

from __future__ import annotations

from fraudops_bank.model import (
    initial,
    log_loss,
    predict_proba,
    scaler_from,
    stats_template,
    sufficient_statistics,
    train_local,
)

__all__ = [
    "initial",
    "log_loss",
    "predict_proba",
    "scaler_from",
    "stats_template",
    "sufficient_statistics",
    "train_local",
]
