"""Global and local explanations of a trained LightGBM model for the training report, by TreeSHAP (the
serving explainer's, ``shared.scoring.explain``).

Global: the mean absolute SHAP value of each feature over a sample of rows, in log-odds. Local: the
contributions, largest first, from the model's base value to its score (a waterfall), for a caught fraud and
for a false alarm of the test part. The worked example is never one transaction: it is the feature-wise median
of the ``EXAMPLE_ROWS`` most confident ones (a report and MLflow keep it for as long as the model, long after
an erasure; one customer's payment would be personal data there). A group with fewer rows shows no example.
A model with derived products is explained on the contract's features, half of each product's share to each
of its two features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.scoring.explain import Explainer

if TYPE_CHECKING:
    from training.model import Model

SAMPLE_ROWS = 20_000
TOP_FEATURES = 30
WATERFALL_FEATURES = 12
EXAMPLE_ROWS = 10  # the worked example is the median of at least this many transactions, never one


@dataclass(frozen=True)
class Explanations:
    """Mean |SHAP| per feature (largest first) and up to two worked examples."""

    rows: int
    importance: list[dict[str, float | str]]
    examples: dict[str, dict[str, Any]]


def _example(explainer: Explainer, rows: np.ndarray, label: int) -> dict[str, Any]:
    """The waterfall of the feature-wise median of ``rows`` (a composite: no one transaction's values)."""
    import warnings

    with warnings.catch_warnings():  # a column missing in every row stays NaN, as the model takes it
        warnings.simplefilter("ignore", RuntimeWarning)
        composite = np.nanmedian(rows, axis=0).astype(np.float32)
    [explained] = explainer.explain(composite[None, :], top_k=WATERFALL_FEATURES)
    shown = sum(c["contribution"] for c in explained["contributions"])
    return {
        "rows": int(rows.shape[0]),
        "probability": round(float(1.0 / (1.0 + np.exp(-explained["raw_score"]))), 6),
        "label": label,
        "base_log_odds": round(explained["base_value"], 5),
        "log_odds": round(explained["raw_score"], 5),
        "steps": [
            {"feature": c["feature"], "value": round(c["value"], 5), "shap": round(c["contribution"], 5)}
            for c in explained["contributions"]
        ],
        "others": round(explained["raw_score"] - explained["base_value"] - shown, 5),
    }


def explain(
    model: Model,
    features: list[str],
    x_test: np.ndarray,
    y_test: np.ndarray,
    probabilities: np.ndarray,
    threshold: float,
    *,
    seed: int,
) -> Explanations:
    """Global importance on up to ``SAMPLE_ROWS`` test rows; the median of the most confident caught frauds and of
    the most confident false alarms (``EXAMPLE_ROWS`` each, or no example)."""
    explainer = Explainer(model.booster, features, model.derived)  # on the contract's features
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(y_test.size, size=min(SAMPLE_ROWS, y_test.size), replace=False))
    mean_abs = np.abs(explainer.contributions(x_test[sample])[:, :-1]).mean(axis=0)
    order = np.argsort(-mean_abs)
    importance = [{"feature": features[i], "mean_abs_shap": round(float(mean_abs[i]), 6)} for i in order]
    flagged = probabilities >= threshold
    examples: dict[str, dict[str, Any]] = {}
    for name, mask in (("caught fraud", flagged & (y_test == 1)), ("false alarm", flagged & (y_test == 0))):
        rows = np.flatnonzero(mask)
        if rows.size >= EXAMPLE_ROWS:
            confident = rows[np.argsort(-probabilities[rows], kind="stable")[:EXAMPLE_ROWS]]
            examples[name] = _example(explainer, x_test[confident], int(y_test[confident[0]]))
    return Explanations(int(sample.size), importance, examples)


def importance_csv(explanations: Explanations) -> str:
    """``feature,mean_abs_shap`` for every feature, largest first."""
    lines = ["feature,mean_abs_shap", *(f"{r['feature']},{r['mean_abs_shap']}" for r in explanations.importance)]
    return "\n".join(lines) + "\n"
