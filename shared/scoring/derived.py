"""Derived features: standardised products of input pairs, appended after the contract's features.

A tree ensemble splits one feature at a time, so a fraud signal carried by the product of two features
(``V14 * V17`` high, say) is approximated by a staircase of many small splits and needs far more frauds
to learn than a tree on the product itself. Training (``training.interactions``) picks the pairs from
the data; this module is the one definition of the transform that training, the ONNX graph
(``training.onnx_export``) and the explainer share:

    z_f = (x_f - mean_f) / scale_f          (float32, the training rows' mean and standard deviation)
    product(a, b) = z_a * z_b

computed in float32 with the same elementwise operations ONNX Runtime performs, so LightGBM in
training and the ONNX graph in serving see bit-identical values. Explanations stay on the inputs a
person knows: a product's contribution is split equally between its two features (``fold``), so
contributions still sum to the raw score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Products:
    """Pairs ``(a, b)`` of input columns whose standardised product is appended, in this order."""

    pairs: tuple[tuple[int, int], ...]
    mean: tuple[tuple[float, float], ...]  # per pair: the training mean of a and of b (float32 values)
    scale: tuple[tuple[float, float], ...]  # per pair: the training standard deviation of a and of b

    @classmethod
    def fit(cls, x: np.ndarray, pairs: list[tuple[int, int]]) -> Products:
        """The standardisation of each pair's columns, measured on ``x`` (training rows only)."""
        columns = sorted({c for pair in pairs for c in pair})
        mean = {c: float(np.float32(np.mean(x[:, c], dtype=np.float64))) for c in columns}
        sd = {c: float(np.float32(np.std(x[:, c], dtype=np.float64))) for c in columns}
        scale = {c: s if s > 0.0 and np.isfinite(s) else 1.0 for c, s in sd.items()}
        return cls(
            tuple((a, b) for a, b in pairs),
            tuple((mean[a], mean[b]) for a, b in pairs),
            tuple((scale[a], scale[b]) for a, b in pairs),
        )

    def __len__(self) -> int:
        return len(self.pairs)

    def names(self, features: list[str]) -> list[str]:
        return [f"{features[a]}*{features[b]}" for a, b in self.pairs]

    def columns(self, x: np.ndarray) -> np.ndarray:
        """The products alone, float32 ``[N, len(self)]``."""
        x32 = np.asarray(x, dtype=np.float32)
        out = np.empty((x32.shape[0], len(self.pairs)), dtype=np.float32)
        for k, ((a, b), (ma, mb), (sa, sb)) in enumerate(zip(self.pairs, self.mean, self.scale, strict=True)):
            za = (x32[:, a] - np.float32(ma)) / np.float32(sa)
            zb = (x32[:, b] - np.float32(mb)) / np.float32(sb)
            out[:, k] = za * zb
        return out

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``x`` with the products appended, float32 and C-contiguous: one new matrix of the combined width."""
        x32 = np.asarray(x, dtype=np.float32)
        out = np.empty((x32.shape[0], x32.shape[1] + len(self.pairs)), dtype=np.float32)
        out[:, : x32.shape[1]] = x32
        out[:, x32.shape[1] :] = self.columns(x32)
        return out

    def fold(self, contributions: np.ndarray, inputs: int) -> np.ndarray:
        """SHAP values over inputs and products (then the base value) -> over the inputs (then the base value):
        half of each product's contribution goes to each of its two features."""
        out = np.array(contributions[:, :inputs], dtype=np.float64)
        for k, (a, b) in enumerate(self.pairs):
            half = contributions[:, inputs + k] / 2.0
            out[:, a] += half
            out[:, b] += half
        return np.column_stack([out, contributions[:, -1]])

    def to_manifest(self, features: list[str]) -> list[dict[str, Any]]:
        return [
            {"name": name, "of": [features[a], features[b]], "mean": list(m), "scale": list(s)}
            for name, (a, b), m, s in zip(self.names(features), self.pairs, self.mean, self.scale, strict=True)
        ]

    @classmethod
    def from_manifest(cls, entries: list[dict[str, Any]] | None, features: list[str]) -> Products | None:
        """``None`` for a model without derived features (older versions, federated models)."""
        if not entries:
            return None
        index = {name: i for i, name in enumerate(features)}
        unknown = sorted({name for e in entries for name in e["of"]} - index.keys())
        if unknown:
            from shared.domain.errors import ModelIntegrityError

            raise ModelIntegrityError(
                f"the model's derived features are products of {', '.join(unknown)}, "
                "which are not among its input features: the manifest does not match the model"
            )
        return cls(
            tuple((index[e["of"][0]], index[e["of"][1]]) for e in entries),
            tuple((float(e["mean"][0]), float(e["mean"][1])) for e in entries),
            tuple((float(e["scale"][0]), float(e["scale"][1])) for e in entries),
        )
