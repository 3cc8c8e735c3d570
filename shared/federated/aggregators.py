"""The aggregation strategies a round can be configured with, chosen once by name (Flower-style thin classes).

Each is a guard, a conversion and one call into the pure functions of ``aggregate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from shared.federated import aggregate

Results = list[tuple[list[np.ndarray], float]]


class Aggregator(Protocol):
    @property
    def name(self) -> str: ...

    def __call__(self, results: Results) -> list[np.ndarray]: ...


@dataclass(frozen=True)
class FedAvg:
    """Example-weighted mean (the weights already capped by the round)."""

    name: str = "fedavg"

    def __call__(self, results: Results) -> list[np.ndarray]:
        return aggregate.fedavg(results)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Median:
    """Coordinate-wise median, unweighted: robust to a minority of hostile updates."""

    name: str = "median"

    def __call__(self, results: Results) -> list[np.ndarray]:
        return aggregate.median(results)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TrimmedMean:
    """Coordinate-wise mean after dropping the ``beta`` share of updates at each end."""

    beta: float
    name: str = "trimmed_mean"

    def __call__(self, results: Results) -> list[np.ndarray]:
        return aggregate.trimmed_mean(results, self.beta)  # type: ignore[arg-type]


def aggregator_for(name: str, *, trim_beta: float) -> Aggregator:
    """The strategy called ``name``; a reason naming the known ones otherwise."""
    if name == "fedavg":
        return FedAvg()
    if name == "median":
        return Median()
    if name == "trimmed_mean":
        return TrimmedMean(trim_beta)
    raise ValueError(f"unknown aggregator {name!r}; known: fedavg, median, trimmed_mean")
