"""The linear score a derived column can carry: a regularised logistic regression's log-odds over every
standardised input, fitted on the training rows of the fit that uses it.

Where fraud shifts many features a little in one direction at once (frauds that look almost
legitimate on each feature), the signal lies along a weighted sum no single feature follows; a tree
approximates it with a staircase of splits across many features and needs far more frauds to do it
than one split on the sum. The search (``training.search``) decides on the rolling-origin folds
whether the column is used at all; where fraud has no linear direction (interactions of features, say)
the folds leave it out. The transform itself (``shared.scoring.derived.Linear``) is what the ONNX graph
computes, in float32, in the same order.
"""

from __future__ import annotations

import logging

import numpy as np

from shared.scoring.derived import Linear

log = logging.getLogger(__name__)

L2 = 1.0  # scikit-learn's default regularisation (C) on standardised inputs: not tuned to any data
MAX_ITER = 1000


def fit_linear(x: np.ndarray, y: np.ndarray, *, seed: int) -> Linear:
    """The logistic regression of ``y`` on ``x`` standardised by ``x``'s own mean and deviation."""
    from sklearn.linear_model import LogisticRegression

    start = Linear.standardising(x)
    model = LogisticRegression(C=L2, max_iter=MAX_ITER, random_state=seed)
    model.fit(start.standardise(x), y)
    linear = start.with_weights(model.coef_[0], float(model.intercept_[0]))
    log.info("linear score on %d rows: %d inputs, intercept %.3f", y.size, len(linear.weights), linear.intercept)
    return linear
