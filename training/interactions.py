"""Which feature pairs interact, read from the trees of a first fit, and the products that carry them.

A split on feature ``b`` directly under a split on feature ``a`` is the tree's way of saying that the
effect of ``b`` depends on ``a``. Summing the gain of every such parent-to-child split over a first,
unconstrained fit ranks the pairs by how much of the fit their interaction carries. The top
``PAIRS`` pairs become standardised products (``shared.scoring.derived.Derived``), measured on the
same training rows. Nothing here says whether products help: the search (``training.search``)
tries configurations with and without them on the same rolling-origin folds, and each fold detects
its pairs on its own training rows, so the comparison is as honest as the rest of the backtest.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.scoring.derived import Derived

if TYPE_CHECKING:
    import lightgbm as lgb

log = logging.getLogger(__name__)

PAIRS = 6
DETECTION_ROUNDS = 150
DETECTION: dict[str, Any] = {  # unconstrained trees deep enough to nest splits; not a served configuration
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_child_samples": 50,
    "lambda_l2": 1.0,
    "feature_fraction": 1.0,
    "bagging_fraction": 0.8,
}


def pair_gains(booster: lgb.Booster) -> dict[tuple[int, int], float]:
    """Summed gain of each split whose parent splits on another feature, by unordered feature pair."""
    gains: dict[tuple[int, int], float] = defaultdict(float)

    def walk(node: dict[str, Any], parent: int | None) -> None:
        if "split_feature" not in node:
            return
        feature = int(node["split_feature"])
        if parent is not None and parent != feature:
            gains[(min(parent, feature), max(parent, feature))] += float(node["split_gain"])
        walk(node["left_child"], feature)
        walk(node["right_child"], feature)

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"], None)
    return dict(gains)


def top_pairs(gains: dict[tuple[int, int], float], k: int = PAIRS) -> list[tuple[int, int]]:
    """The ``k`` pairs of largest gain (ties by feature index, so the order is reproducible)."""
    ranked = sorted(gains.items(), key=lambda item: (-item[1], item[0]))
    return [pair for pair, gain in ranked[:k] if gain > 0.0]


def detect(
    x: np.ndarray,
    y: np.ndarray,
    features: list[str],
    *,
    seed: int,
    dataset_params: dict[str, Any],
    deadline: float = math.inf,
    k: int = PAIRS,
) -> Derived | None:
    """Products of the ``k`` most interacting pairs in ``x`` (training rows), or ``None`` if the trees nest none.
    The first fit stops boosting at ``deadline`` (monotonic) and ranks the pairs of the trees it has."""
    import lightgbm as lgb

    from training.boosting import FIXED, dataset, deadline_callback
    from training.inputs import categorical_of

    data = dataset(x, y, features, dataset_params)
    booster = lgb.train(
        {**FIXED, **DETECTION, "seed": seed},
        data,
        num_boost_round=DETECTION_ROUNDS,
        callbacks=[deadline_callback(deadline)],
    )
    categorical = set(categorical_of(features))  # a product of category codes means nothing
    gains = {pair: g for pair, g in pair_gains(booster).items() if not categorical & set(pair)}
    pairs = top_pairs(gains, k)
    if not pairs:
        return None
    products = Derived.fit(x, pairs)
    log.info("interaction pairs on %d rows: %s", y.size, ", ".join(products.names(features)))
    return products
