"""Closing a model round, as a pure function: the banks' updates in, the next global model out (no I/O).

Weights are the banks' example counts, each capped at ``max_weight_share`` of the total; with
differential privacy on, each step is clipped to ``clip_bound`` and the weights are equal, as the
noise calibration assumes (``privacy``). Updates are clipped, never refused, for being large.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shared.federated import aggregate, privacy
from shared.federated.aggregators import Aggregator

NDArrays = list[np.ndarray]


def capped_weights(counts: list[int], max_share: float) -> list[float]:
    """Example counts with no client above ``max_share`` of the total (iterated until it holds)."""
    weights = [float(c) for c in counts]
    if not all(math.isfinite(w) and w > 0 for w in weights) or not math.isfinite(sum(weights)):
        raise ValueError("example counts must be positive and their total finite")
    if len(weights) * max_share < 1:  # the cap cannot hold for every client: equal weights
        return [1.0] * len(weights)
    for _ in range(len(weights)):
        total = sum(weights)
        over = [i for i, w in enumerate(weights) if w > max_share * total + 1e-9]
        if not over:
            break
        rest = total - sum(weights[i] for i in over)
        cap = max_share * rest / (1 - max_share * len(over))
        for i in over:
            weights[i] = cap
    return weights


@dataclass(frozen=True)
class Merged:
    """The next global model, each bank's weight, whose steps were clipped, and the noise added (0 for none)."""

    params: NDArrays
    weights: list[float]
    clipped: list[bool]
    noise_std: float


def merge(
    reference: NDArrays,
    updates: list[tuple[NDArrays, int]],
    *,
    aggregator: Aggregator,
    max_weight_share: float,
    clip_bound: float | None = None,
    noise_multiplier: float | None = None,
) -> Merged:
    """Aggregate ``updates`` (parameters, example count) that start from ``reference``."""
    clipped: list[bool] = []
    steps: list[NDArrays] = []
    for params, _ in updates:
        if clip_bound is not None and aggregate.update_norm(params, reference) > clip_bound:
            params = aggregate.clip(params, reference, clip_bound)
            clipped.append(True)
        else:
            clipped.append(False)
        steps.append(params)
    if noise_multiplier is not None:
        weights = [1.0] * len(updates)
    else:
        weights = capped_weights([n for _, n in updates], max_weight_share)
    merged = aggregator([(p, w) for p, w in zip(steps, weights, strict=True)])
    std = 0.0
    if noise_multiplier is not None and clip_bound is not None:
        std = privacy.noise_std(noise_multiplier, clip_bound, len(updates))
        merged = privacy.add_noise(merged, std)
    return Merged(merged, weights, clipped, std)
