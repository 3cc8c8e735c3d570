"""Round 0: each bank's sufficient statistics, checked one by one, and the shared scaler combined robustly.

A bank sends ``count``, ``sum`` and ``sumsq`` per feature. Before they are accepted they must be
what real rows could give: a whole, positive count equal to the examples it claims, finite sums, and a
sum of squares no smaller than the sum allows (Cauchy-Schwarz: a variance is never negative). The
scaler is then combined from each bank's *mean* and *variance* with the round's own aggregator
(capped example weights for FedAvg, coordinate-wise for the median or the trimmed mean), not by
summing raw totals, so one bank's numbers cannot move the shared mean further than its weight allows.
"""

from __future__ import annotations

import numpy as np

from shared.federated.aggregators import Aggregator
from shared.federated.params import BadParametersError

MIN_SCALE = 1e-6


def check_statistics(stats: dict[str, np.ndarray], examples: int) -> None:
    """``BadParametersError`` with the reason when ``stats`` could not come from ``examples`` real rows."""
    count = float(stats["count"][0])
    if not count.is_integer() or count < 1:
        raise BadParametersError(f"the statistics' count must be a whole number of rows, got {count:g}")
    if abs(count - examples) > max(1.0, examples * 1e-6):  # float32 holds counts to 7 digits
        raise BadParametersError(f"the statistics count {count:g} rows but X-FL-Examples says {examples}")
    sums, squares = stats["sum"].astype(np.float64), stats["sumsq"].astype(np.float64)
    if (squares < 0).any():
        raise BadParametersError("a sum of squares is negative")
    mean = sums / count
    variance = squares / count - mean * mean
    slack = 1e-4 * np.maximum(squares / count, 1.0)  # float32 rounding of the sums
    if (variance < -slack).any():
        raise BadParametersError("the sums of squares are smaller than the sums allow (a negative variance)")


def bank_moments(stats: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One bank's per-feature mean and variance (float64)."""
    count = float(stats["count"][0])
    mean = stats["sum"].astype(np.float64) / count
    return mean, np.maximum(stats["sumsq"].astype(np.float64) / count - mean * mean, 0.0)


def combine(banks: list[dict[str, np.ndarray]], weights: list[float], aggregator: Aggregator) -> dict[str, np.ndarray]:
    """The shared scaler: the aggregate of the banks' means, and of their spreads around that mean."""
    moments = [bank_moments(s) for s in banks]
    mean = aggregator([([m], w) for (m, _), w in zip(moments, weights, strict=True)])[0]
    spread = aggregator([([v + (m - mean) ** 2], w) for (m, v), w in zip(moments, weights, strict=True)])[0]
    scale = np.sqrt(np.maximum(spread, MIN_SCALE**2))
    scaler = {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32)}
    check_scaler(scaler)
    return scaler


def check_scaler(scaler: dict[str, np.ndarray]) -> None:
    """``BadParametersError`` when a stored or derived scaler cannot standardise anything."""
    if not (np.isfinite(scaler["mean"]).all() and np.isfinite(scaler["scale"]).all() and (scaler["scale"] > 0).all()):
        raise BadParametersError("the shared scaler has NaN, infinite or non-positive values")
