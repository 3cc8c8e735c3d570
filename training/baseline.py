"""The logistic-regression baseline every LightGBM model is reported against.

Standardised features with ``log1p`` of the contract's amount, missing numbers imputed by the median
(with an indicator of which were missing), categories one-hot (the most frequent, the rest together),
balanced class weights, L2. If LightGBM cannot beat this on the same test part, the search or the data
is wrong, and the report shows it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training.inputs import amount_of, categorical_of


def fit_logistic(x_train: np.ndarray, y_train: np.ndarray, feature_names: list[str], *, seed: int) -> Any:
    """A fitted scikit-learn pipeline; ``predict_proba(x)[:, 1]`` is the fraud probability."""
    return logistic_pipeline(feature_names, seed=seed).fit(x_train, y_train)


def logistic_pipeline(feature_names: list[str], *, seed: int) -> Any:
    """The baseline, unfitted (the model comparison fits it on every fold)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        prepared_columns(feature_names),
        LogisticRegression(C=0.1, class_weight="balanced", max_iter=2000, random_state=seed),
    )


def prepared_columns(features: list[str]) -> Any:
    """Standardised numbers (``log1p`` of the amount, missing ones imputed and flagged) and one-hot categories:
    what a linear model or a network needs of the contract's features (``training.inputs.Features``)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    categorical, amount = set(categorical_of(features)), amount_of(features)
    plain = [i for i in range(len(features)) if i not in categorical and i != amount]
    parts: list[tuple[str, Any, list[int]]] = []
    if amount is not None:
        log_amount = make_pipeline(SimpleImputer(strategy="median"), FunctionTransformer(np.log1p), StandardScaler())
        parts.append(("log_amount", log_amount, [amount]))
    if plain:
        parts.append(
            ("numbers", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), plain)
        )
    if categorical:
        one_hot = OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=30, sparse_output=False)
        parts.append(
            (
                "categories",
                make_pipeline(SimpleImputer(strategy="constant", fill_value=-1), one_hot),
                sorted(categorical),
            )
        )
    return ColumnTransformer(parts)
