"""Explanations: per-transaction feature contributions by TreeSHAP (LightGBM ``pred_contrib``).

Loaded only when a request asks for them: LightGBM and the booster text (``model.txt``, saved
beside the ONNX file) stay out of the plain scoring path. Contributions are in log-odds;
with the base value they sum to the model's raw score, and ``sigmoid(raw score)`` is the
probability the ONNX model returns. A model with derived features (``shared.scoring.derived``, listed
in its manifest) is explained on the contract's inputs: each product's share goes half to each of its
two features.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.domain.errors import FraudOpsError, ModelNotAvailableError
from shared.scoring.derived import Derived

if TYPE_CHECKING:
    from shared.adapters.model_store import ModelStore

TOP_K = 5


class CannotExplainError(FraudOpsError):
    """The model has no LightGBM booster to explain its scores with (a federated model, say)."""


class Explainer:
    """TreeSHAP for one model version."""

    def __init__(self, booster: Any, feature_names: list[str], derived: Derived | None = None) -> None:
        self.booster = booster
        self.feature_names = feature_names
        self.derived = derived

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """SHAP values in log-odds: one column per input feature, then the base value."""
        if self.derived is None:
            return np.asarray(self.booster.predict(np.asarray(x, dtype=np.float64), pred_contrib=True))
        wide = self.derived.apply(x).astype(np.float64)
        contributions = np.asarray(self.booster.predict(wide, pred_contrib=True))
        return self.derived.fold(contributions, len(self.feature_names), x)

    def explain(self, x: np.ndarray, top_k: int = TOP_K) -> list[dict[str, Any]]:
        """Per row: base value, raw score, and the ``top_k`` features by absolute contribution."""
        x64 = np.asarray(x, dtype=np.float64)
        contrib = self.contributions(x64)
        base, parts = contrib[:, -1], contrib[:, :-1]
        order = np.argsort(-np.abs(parts), axis=1, kind="stable")[:, :top_k]
        out = []
        for i in range(x64.shape[0]):
            out.append(
                {
                    "base_value": float(base[i]),
                    "raw_score": float(base[i] + parts[i].sum()),
                    "contributions": [
                        {
                            "feature": self.feature_names[j],
                            "value": float(x64[i, j]),
                            "contribution": float(parts[i, j]),
                        }
                        for j in order[i]
                    ],
                }
            )
        return out


class Explainers:
    """One ``Explainer`` per model version, loaded on first use from the model store."""

    def __init__(self, models: ModelStore, size: int = 4) -> None:
        self.models = models
        self.size = size
        self._cache: dict[str, Explainer] = {}
        self._lock = threading.Lock()

    def get(self, version: str, feature_names: list[str]) -> Explainer:
        with self._lock:
            found = self._cache.get(version)
            if found is not None:
                return found
        import lightgbm as lgb

        manifest = self.models.manifest(version)
        try:
            text = self.models.file(version, "model.txt", manifest=manifest).decode()  # checked against its digest
        except ModelNotAvailableError:
            raise CannotExplainError(
                f"model {version} has no LightGBM booster (model.txt), so it cannot explain its scores"
            ) from None
        derived = Derived.from_manifest(manifest.derived_features, feature_names)
        explainer = Explainer(lgb.Booster(model_str=text), feature_names, derived)
        with self._lock:
            if len(self._cache) >= self.size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[version] = explainer
        return explainer
