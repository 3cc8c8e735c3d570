"""Feature drift by the population stability index (PSI), NumPy in, plain dicts out.

A model's training data is summarised once, at training time, as a *profile*: per feature,
the decile edges of its training part and the share of rows in each bin. The profile lives
in the model's manifest, so checking drift later needs the champion's manifest and the new
data, never the old rows. PSI per feature is ``sum((a - e) * ln(a / e))`` over the bins, with
``e`` the training shares and ``a`` the new shares (both floored at ``EPSILON``). The usual
reading: below 0.1 stable, 0.1-0.25 moderate shift, above 0.25 a major shift.

A categorical feature (its values are the codes of ``shared.domain.encoding``) is profiled by the
share of each category instead of bins; missing values (NaN: for a category, also one the model never
saw) have a bin of their own, the last, for every feature.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

BINS = 10
EPSILON = 1e-4


def profile(
    x: np.ndarray, feature_names: list[str], bins: int = BINS, *, categorical: Sequence[int] = ()
) -> dict[str, Any]:
    """Per feature: inner quantile edges of ``x`` (or, for a ``categorical`` position, its categories) and the
    share of rows in each bin, the missing values' bin last."""
    features: dict[str, Any] = {}
    for j, name in enumerate(feature_names):
        column = np.asarray(x[:, j], dtype=np.float64)
        present = column[~np.isnan(column)]
        if j in categorical:
            size = int(present.max()) + 1 if present.size else 0
            features[name] = {"kind": "categorical", "categories": size, "shares": _shares(column, None, size)}
            continue
        inner = np.linspace(0, 1, bins + 1)[1:-1]
        edges = np.unique(np.quantile(present, inner)) if present.size else np.zeros(0)
        features[name] = {"edges": edges.tolist(), "shares": _shares(column, edges, 0), "missing_bin": True}
    return {"rows": int(x.shape[0]), "bins": bins, "features": features}


def _shares(column: np.ndarray, edges: np.ndarray | None, categories: int) -> list[float]:
    """The share of ``column`` in each bin (by ``edges``, or per category code), the missing values last."""
    missing = np.isnan(column)
    present = column[~missing]
    if edges is None:
        codes = present.astype(np.int64)
        counts = np.bincount(codes[codes < categories], minlength=categories)
        counts = np.append(counts, missing.sum() + (codes >= categories).sum())
    else:
        counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=edges.size + 1)
        counts = np.append(counts, missing.sum())
    return [float(v) for v in counts / max(column.size, 1)]


def score_profile(probabilities: np.ndarray, edges: tuple[float, ...]) -> dict[str, Any]:
    """The share of fraud probabilities in each band (``edges`` inner): the reference for live score drift."""
    p = np.asarray(probabilities, dtype=np.float64)
    counts = np.bincount(np.searchsorted(np.asarray(edges), p, side="right"), minlength=len(edges) + 1)
    return {"rows": int(p.size), "edges": list(edges), "shares": (counts / max(p.size, 1)).tolist()}


def psi(expected: np.ndarray, actual: np.ndarray, epsilon: float = EPSILON) -> float:
    """Population stability index of two share vectors over the same bins."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    a = np.maximum(np.asarray(actual, dtype=np.float64), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def compare(
    reference: dict[str, Any], x: np.ndarray, feature_names: list[str], *, psi_threshold: float, alert_share: float
) -> dict[str, Any]:
    """PSI of each feature of ``x`` against ``reference`` (a ``profile``); the share drifted; the verdict."""
    missing = [f for f in feature_names if f not in reference["features"]]
    if missing:
        raise ValueError(f"the reference profile has no {', '.join(missing)}")
    features: dict[str, Any] = {}
    for j, name in enumerate(feature_names):
        ref = reference["features"][name]
        column = np.asarray(x[:, j], dtype=np.float64)
        if ref.get("kind") == "categorical":
            shares = np.asarray(_shares(column, None, int(ref["categories"])))
        elif ref.get("missing_bin"):
            shares = np.asarray(_shares(column, np.asarray(ref["edges"], dtype=np.float64), 0))
        else:  # a profile written before missing values had a bin of their own
            edges = np.asarray(ref["edges"], dtype=np.float64)
            counts = np.bincount(np.searchsorted(edges, column, side="right"), minlength=edges.size + 1)
            shares = counts / max(column.size, 1)
        value = psi(np.asarray(ref["shares"]), shares)
        features[name] = {
            "psi": round(value, 5),
            "drifted": value > psi_threshold,
            "expected": [round(s, 5) for s in ref["shares"]],
            "actual": [round(float(s), 5) for s in shares],
        }
    drifted = sorted((n for n, f in features.items() if f["drifted"]), key=lambda n: -features[n]["psi"])
    share = len(drifted) / max(len(features), 1)
    return {
        "rows_reference": reference["rows"],
        "rows_current": int(x.shape[0]),
        "psi_threshold": psi_threshold,
        "alert_share": alert_share,
        "drifted_features": drifted,
        "drifted_share": round(share, 4),
        "alert": share >= alert_share,
        "features": features,
    }
