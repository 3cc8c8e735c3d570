"""The logistic-regression baseline every LightGBM model is reported against.

Standardised features with ``log1p(Amount)``, balanced class weights, L2. If LightGBM cannot
beat this on the same test part, the search or the data is wrong, and the report shows it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def fit_logistic(x_train: np.ndarray, y_train: np.ndarray, feature_names: list[str], *, seed: int) -> Any:
    """A fitted scikit-learn pipeline; ``predict_proba(x)[:, 1]`` is the fraud probability."""
    return logistic_pipeline(feature_names, seed=seed).fit(x_train, y_train)


def logistic_pipeline(feature_names: list[str], *, seed: int) -> Any:
    """The baseline, unfitted (the model comparison fits it on every fold)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    skewed = [i for i, name in enumerate(feature_names) if name.lower() == "amount"]
    prepare = ColumnTransformer([("log_amount", FunctionTransformer(np.log1p), skewed)], remainder="passthrough")
    return make_pipeline(
        prepare,
        StandardScaler(),
        LogisticRegression(C=0.1, class_weight="balanced", max_iter=2000, random_state=seed),
    )
