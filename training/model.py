"""A fitted model of the chosen configuration: the booster and the derived columns it was trained with.

``derive`` measures the derived columns a configuration asks for (the products of interacting pairs,
``training.interactions``; the linear score, ``training.linear``) on a fit's own training rows;
``training.search.fit_model`` fits the configuration the search chose with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import lightgbm as lgb

    from shared.scoring.derived import Derived

Choice = tuple[bool, bool]  # (products of interacting pairs, linear score): which derived columns a fit appends


def derive(
    x: np.ndarray,
    y: np.ndarray,
    features: list[str],
    choice: Choice,
    *,
    seed: int,
    binning: dict[str, Any],
    deadline: float,
) -> Derived | None:
    """The derived columns ``choice`` asks for, measured on ``x`` (a fit's training rows), or ``None``."""
    from shared.scoring.derived import Derived
    from training.interactions import detect
    from training.linear import fit_linear

    interactions, linear = choice
    products = detect(x, y, features, seed=seed, dataset_params=binning, deadline=deadline) if interactions else None
    score = fit_linear(x, y, seed=seed) if linear else None
    if score is None:
        return products  # a fold whose trees nest no two features keeps its inputs alone
    return Derived(products.pairs, products.mean, products.scale, score) if products else Derived((), (), (), score)


@dataclass(frozen=True)
class Model:
    """A fitted booster and the derived columns it was trained with (``None``: the contract's inputs alone)."""

    booster: lgb.Booster
    derived: Derived | None

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """What the booster takes: ``x`` (the contract's features) with the derived columns appended."""
        return x if self.derived is None else self.derived.apply(x)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(self.inputs(x)))

    def feature_names(self, features: list[str]) -> list[str]:
        return features if self.derived is None else features + self.derived.names(features)
