"""Aggregation of client updates: NumPy in, NumPy out, no I/O (Flower's ``aggregate.py`` signatures).

``results`` is a list of ``(parameters, num_examples)``; ``parameters`` is a list of arrays,
one per layer, the same shapes for every client.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

NDArrays = list[np.ndarray]
CHUNK = 4_096  # coordinates per block in the coordinate-wise aggregators


def _check(results: list[tuple[NDArrays, int]]) -> None:
    if not results:
        raise ValueError("no results to aggregate")
    shapes = [a.shape for a in results[0][0]]
    for params, n in results:
        if [a.shape for a in params] != shapes:
            raise ValueError("clients sent parameters of different shapes")
        if not n > 0:
            raise ValueError("every client needs a positive example count")
    if not np.isfinite(sum(float(n) for _, n in results)):
        raise ValueError("the example counts add up to more than a float can hold")


def fedavg(results: list[tuple[NDArrays, int]]) -> NDArrays:
    """Example-weighted average per layer; one running sum per layer, so memory is one model beyond the inputs."""
    _check(results)
    total = float(sum(n for _, n in results))
    out = [np.zeros(a.shape, dtype=np.float64) for a in results[0][0]]
    for params, n in results:
        weight = n / total
        for acc, layer in zip(out, params, strict=True):
            acc += weight * layer  # in place: no copy of the update
    return [a.astype(results[0][0][i].dtype, copy=False) for i, a in enumerate(out)]


def _coordinatewise(results: list[tuple[NDArrays, int]], reduce: Callable[[np.ndarray], np.ndarray]) -> NDArrays:
    """Apply ``reduce`` to blocks of ``CHUNK`` coordinates stacked as ``(coordinates, clients)``.

    Block by block, so the extra memory is one block, not a copy of every update, and each
    block's per-coordinate values sit side by side in memory for the selection.
    """
    out = []
    for i, first in enumerate(results[0][0]):
        flat = [p[i].reshape(-1) for p, _ in results]
        merged = np.empty(first.size, dtype=first.dtype)
        for start in range(0, first.size, CHUNK):
            block = np.stack([f[start : start + CHUNK] for f in flat], axis=-1)
            merged[start : start + CHUNK] = reduce(block)
        out.append(merged.reshape(first.shape))
    return out


# Both coordinate-wise aggregators sort each block's rows in place rather than partition them:
# NumPy's sort of contiguous float32 rows is vectorised (SIMD), and on 100 clients it measured
# about 9x faster than ``partition`` with the two pivots a trimmed mean (or an even median) needs.


def median(results: list[tuple[NDArrays, int]]) -> NDArrays:
    """Coordinate-wise median, unweighted (Flower's ``aggregate_median``)."""
    _check(results)
    n = len(results)

    def reduce(block: np.ndarray) -> np.ndarray:
        block.sort(axis=-1)
        if n % 2:
            return block[:, n // 2]
        return np.asarray((block[:, n // 2 - 1].astype(np.float64) + block[:, n // 2]) / 2)

    return _coordinatewise(results, reduce)


def trimmed_mean(results: list[tuple[NDArrays, int]], beta: float) -> NDArrays:
    """Coordinate-wise mean after dropping the ``beta`` fraction of lowest and of highest values (unweighted)."""
    _check(results)
    if not 0 <= beta < 0.5:
        raise ValueError("beta must be in [0, 0.5)")
    n = len(results)
    k = int(beta * n)

    def reduce(block: np.ndarray) -> np.ndarray:
        if k:
            block.sort(axis=-1)
            block = block[:, k : n - k]
        return np.asarray(block.mean(axis=-1))

    return _coordinatewise(results, reduce)


def update_norm(update: NDArrays, reference: NDArrays) -> float:
    """L2 distance of ``update`` from ``reference`` over all layers."""
    return float(
        np.sqrt(sum(float(np.sum((u.astype(np.float64) - r) ** 2)) for u, r in zip(update, reference, strict=True)))
    )


def clip(update: NDArrays, reference: NDArrays, bound: float) -> NDArrays:
    """Scale the step from ``reference`` so its L2 norm is at most ``bound``."""
    norm = update_norm(update, reference)
    if norm <= bound or norm == 0.0:
        return update
    scale = bound / norm
    return [(r + (u - r) * scale).astype(u.dtype, copy=False) for u, r in zip(update, reference, strict=True)]
