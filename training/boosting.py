"""LightGBM's settings every fit of a run shares: the fixed parameters, the binning, the deadline, one fit.

The search (``training.search``), the interaction detection (``training.interactions``) and the fits of
the chosen configuration (``training.model``) all build on these, so none of them imports another for them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from training.inputs import categorical_of

if TYPE_CHECKING:
    import lightgbm as lgb

FIXED: dict[str, Any] = {
    "objective": "binary",
    "metric": "binary_logloss",
    "bagging_freq": 1,
    "deterministic": True,
    "num_threads": 2,
    "verbose": -1,
}
MAX_BIN = 4095


def dataset_params(max_bin: int = MAX_BIN) -> dict[str, Any]:
    """How every LightGBM dataset of a run is binned."""
    return {"feature_pre_filter": False, "max_bin": max_bin, "verbose": -1}


DATASET_PARAMS = dataset_params()


def dataset(x: np.ndarray, y: np.ndarray, names: list[str], params: dict[str, Any], **kwargs: Any) -> lgb.Dataset:
    """A LightGBM dataset of ``x``; the categorical positions of ``names`` (``training.inputs``) are categories."""
    import lightgbm as lgb

    categorical = list(categorical_of(names))
    return lgb.Dataset(x, y, feature_name=names, categorical_feature=categorical or "auto", params=params, **kwargs)


def deadline_callback(deadline: float) -> Any:
    """Stop boosting (keeping the trees so far) once ``deadline`` (monotonic) passes."""
    import lightgbm as lgb

    def callback(env: lgb.callback.CallbackEnv) -> None:
        if time.monotonic() > deadline:
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list or [])

    callback.order = 40  # type: ignore[attr-defined]  # after LightGBM's own early stopping (30)
    return callback


def fit_booster(
    params: dict[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    features: list[str],
    *,
    rounds: int,
    deadline: float,
    max_bin: int = MAX_BIN,
) -> lgb.Booster:
    """One fit of a chosen configuration for a fixed number of rounds (no validation rows needed)."""
    import lightgbm as lgb

    data = dataset(x, y, features, dataset_params(max_bin))
    return lgb.train(params, data, num_boost_round=rounds, callbacks=[deadline_callback(deadline)])
