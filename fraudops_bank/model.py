"""The federated model family: logistic regression on standardised features, trained by full-batch gradient descent.

Parameters are ``coef`` (one per feature) and ``intercept``; the scaler (``mean``, ``scale``) is
derived in round 0 from every bank's sufficient statistics (count, sum, sum of squares per
feature), so no bank shares rows or even its own means. This module is the reference the Spark
engine is tested against: same constants, same order of operations, float64 throughout.
"""

from __future__ import annotations

import numpy as np

STEPS = 50
LEARNING_RATE = 0.5
L2 = 1e-4
Z_CLIP = 40.0  # the logit is clipped to [-Z_CLIP, Z_CLIP] before the sigmoid
P_CLIP = 1e-7  # probabilities are clipped to [P_CLIP, 1 - P_CLIP] in the log loss


def initial(n_features: int) -> dict[str, np.ndarray]:
    return {"coef": np.zeros(n_features, np.float32), "intercept": np.zeros(1, np.float32)}


def stats_template(n_features: int) -> dict[str, np.ndarray]:
    return {
        "count": np.zeros(1, np.float32),
        "sum": np.zeros(n_features, np.float32),
        "sumsq": np.zeros(n_features, np.float32),
    }


def sufficient_statistics(x: np.ndarray) -> dict[str, np.ndarray]:
    """Round 0's update: row count, and per feature the sum and the sum of squares (summed in float64)."""
    x64 = np.asarray(x, dtype=np.float64)
    return {
        "count": np.array([x64.shape[0]], np.float32),
        "sum": x64.sum(axis=0).astype(np.float32),
        "sumsq": (x64 * x64).sum(axis=0).astype(np.float32),
    }


def scaler_from(stats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Global mean and standard deviation from summed statistics."""
    n = float(stats["count"][0])
    mean = stats["sum"].astype(np.float64) / n
    var = np.maximum(stats["sumsq"].astype(np.float64) / n - mean * mean, 1e-12)
    return {"mean": mean.astype(np.float32), "scale": np.sqrt(var).astype(np.float32)}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -Z_CLIP, Z_CLIP))))


def predict_proba(params: dict[str, np.ndarray], scaler: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    z = ((np.asarray(x, np.float64) - scaler["mean"]) / scaler["scale"]) @ params["coef"].astype(np.float64)
    return _sigmoid(z + float(params["intercept"][0]))


def train_local(
    params: dict[str, np.ndarray],
    scaler: dict[str, np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    *,
    steps: int = STEPS,
    learning_rate: float = LEARNING_RATE,
    l2: float = L2,
) -> dict[str, np.ndarray]:
    """Full-batch gradient descent on the log loss from the given parameters (warm start); deterministic."""
    xs = (np.asarray(x, np.float64) - scaler["mean"]) / scaler["scale"]
    yf = np.asarray(y, np.float64)
    w = params["coef"].astype(np.float64).copy()
    b = float(params["intercept"][0])
    n = xs.shape[0]
    for _ in range(steps):
        err = _sigmoid(xs @ w + b) - yf
        w -= learning_rate * (xs.T @ err / n + l2 * w)
        b -= learning_rate * float(err.mean())
    return {"coef": w.astype(np.float32), "intercept": np.array([b], np.float32)}


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean log loss of probabilities ``p`` for labels ``y`` (``p`` clipped to ``[P_CLIP, 1 - P_CLIP]``)."""
    p = np.clip(p, P_CLIP, 1 - P_CLIP)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """The area under the ROC curve (ties count half: the Mann-Whitney statistic); ``None`` without both classes."""
    y = np.asarray(y, np.float64)
    positives, negatives = float(y.sum()), float(len(y) - y.sum())
    if positives == 0 or negatives == 0:
        return None
    _, inverse, counts = np.unique(np.asarray(p, np.float64), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]  # average rank of each tie group, from 1
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))
