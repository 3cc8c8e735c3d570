"""Derived features appended after the contract's features: standardised products of input pairs, then
(optionally) one linear score over all inputs.

A tree ensemble splits one feature at a time. A fraud signal carried by the product of two features
(``V14 * V17`` high, say) is approximated by a staircase of many small splits, and so is one carried by
a weighted sum of many features (a shift along a direction no single feature follows): both need far
more frauds to learn than a tree on the product or on the sum itself. Training picks the pairs
(``training.interactions``) and fits the linear score (``training.linear``, a regularised logistic
regression) on the training rows; the search decides on the folds whether either is used. This module
is the one definition of the transform that training, the ONNX graph (``training.onnx_export``) and the
explainer share:

    z_f = (x_f - mean_f) / scale_f                  (float32, the training rows' mean and deviation)
    product(a, b) = z_a * z_b
    linear = (...((w_0 z_0 + w_1 z_1) + w_2 z_2) ... + w_n z_n) + intercept     (added left to right)

computed in float32 with the same elementwise operations, in the same order, as the ONNX graph, so
LightGBM in training and ONNX Runtime in serving see bit-identical values (a sum in another order could
land a value on the other side of a split). Explanations stay on the inputs a person knows: a
product's contribution is split equally between its two features, the linear score's in proportion to
each input's share ``|w_f z_f|`` of it (``fold``), so contributions still sum to the raw score.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

LINEAR_NAME = "linear_score"


def _moments(x: np.ndarray, columns: list[int]) -> tuple[dict[int, float], dict[int, float]]:
    """Float32 mean and deviation of ``columns`` over their present values (a missing value is NaN: it stays
    missing in the derived column, it does not make the whole column missing); a constant or empty column is
    centred on 0 and scaled by 1, never divided by 0, so the manifest holds finite numbers only."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: its mean is NaN, replaced below
        mean = {c: float(np.float32(np.nanmean(x[:, c], dtype=np.float64))) for c in columns}
        sd = {c: float(np.float32(np.nanstd(x[:, c], dtype=np.float64))) for c in columns}
    return (
        {c: m if np.isfinite(m) else 0.0 for c, m in mean.items()},
        {c: s if s > 0.0 and np.isfinite(s) else 1.0 for c, s in sd.items()},
    )


@dataclass(frozen=True)
class Linear:
    """A weighted sum of every standardised input plus an intercept (a logistic regression's log-odds)."""

    weights: tuple[float, ...]  # per input column, float32 values
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    intercept: float

    @classmethod
    def standardising(cls, x: np.ndarray) -> Linear:
        """Zero weights and ``x``'s standardisation: a fit standardises with it, then sets ``with_weights``."""
        mean, scale = _moments(x, list(range(x.shape[1])))
        zero = tuple(0.0 for _ in range(x.shape[1]))
        return cls(zero, tuple(mean[c] for c in range(x.shape[1])), tuple(scale[c] for c in range(x.shape[1])), 0.0)

    def with_weights(self, weights: np.ndarray, intercept: float) -> Linear:
        """The same standardisation with these weights, rounded to the float32 values the graph holds."""
        w = np.asarray(weights, dtype=np.float32)
        return dataclasses.replace(self, weights=tuple(float(v) for v in w), intercept=float(np.float32(intercept)))

    def standardise(self, x: np.ndarray) -> np.ndarray:
        """``z``, float32 ``[N, F]``."""
        x32 = np.asarray(x, dtype=np.float32)
        return (x32 - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.scale, dtype=np.float32)

    def terms(self, x: np.ndarray) -> np.ndarray:
        """``w_f z_f`` per input, float32 ``[N, F]``."""
        return self.standardise(x) * np.asarray(self.weights, dtype=np.float32)

    def column(self, x: np.ndarray) -> np.ndarray:
        """The score, float32 ``[N]``, summed left to right as the graph's chain of Adds does."""
        terms = self.terms(x)
        total = terms[:, 0].copy()
        for f in range(1, terms.shape[1]):
            total = total + terms[:, f]
        return total + np.float32(self.intercept)


@dataclass(frozen=True)
class Derived:
    """Pairs ``(a, b)`` of input columns whose standardised product is appended, in this order, then the
    linear score when there is one."""

    pairs: tuple[tuple[int, int], ...]
    mean: tuple[tuple[float, float], ...]  # per pair: the training mean of a and of b (float32 values)
    scale: tuple[tuple[float, float], ...]  # per pair: the training standard deviation of a and of b
    linear: Linear | None = None

    @classmethod
    def fit(cls, x: np.ndarray, pairs: list[tuple[int, int]], linear: Linear | None = None) -> Derived:
        """The standardisation of each pair's columns, measured on ``x`` (training rows only)."""
        mean, scale = _moments(x, sorted({c for pair in pairs for c in pair}))
        return cls(
            tuple((a, b) for a, b in pairs),
            tuple((mean[a], mean[b]) for a, b in pairs),
            tuple((scale[a], scale[b]) for a, b in pairs),
            linear,
        )

    def __len__(self) -> int:
        return len(self.pairs) + (self.linear is not None)

    def names(self, features: list[str]) -> list[str]:
        return [f"{features[a]}*{features[b]}" for a, b in self.pairs] + ([LINEAR_NAME] if self.linear else [])

    def columns(self, x: np.ndarray) -> np.ndarray:
        """The derived columns alone, float32 ``[N, len(self)]``."""
        x32 = np.asarray(x, dtype=np.float32)
        out = np.empty((x32.shape[0], len(self)), dtype=np.float32)
        for k, ((a, b), (ma, mb), (sa, sb)) in enumerate(zip(self.pairs, self.mean, self.scale, strict=True)):
            za = (x32[:, a] - np.float32(ma)) / np.float32(sa)
            zb = (x32[:, b] - np.float32(mb)) / np.float32(sb)
            out[:, k] = za * zb
        if self.linear is not None:
            out[:, len(self.pairs)] = self.linear.column(x32)
        return out

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``x`` with the derived columns appended, float32 and C-contiguous: one new matrix of the combined width."""
        x32 = np.asarray(x, dtype=np.float32)
        out = np.empty((x32.shape[0], x32.shape[1] + len(self)), dtype=np.float32)
        out[:, : x32.shape[1]] = x32
        out[:, x32.shape[1] :] = self.columns(x32)
        return out

    def fold(self, contributions: np.ndarray, inputs: int, x: np.ndarray | None = None) -> np.ndarray:
        """SHAP values over inputs and derived columns (then the base value) -> over the inputs (then the base
        value): half of each product's contribution goes to each of its two features; the linear score's is
        shared in proportion to each input's ``|w_f z_f|`` in row ``x`` (equally if they are all zero)."""
        out = np.array(contributions[:, :inputs], dtype=np.float64)
        for k, (a, b) in enumerate(self.pairs):
            half = contributions[:, inputs + k] / 2.0
            out[:, a] += half
            out[:, b] += half
        if self.linear is not None:
            if x is None:
                raise ValueError("folding a linear score's contribution needs the rows it was computed on")
            share = np.abs(self.linear.terms(x).astype(np.float64))
            total = share.sum(axis=1, keepdims=True)
            share = np.where(total > 0.0, share / np.where(total > 0.0, total, 1.0), 1.0 / inputs)
            out += share * contributions[:, inputs + len(self.pairs)][:, None]
        return np.column_stack([out, contributions[:, -1]])

    def to_manifest(self, features: list[str]) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = [
            {"name": name, "of": [features[a], features[b]], "mean": list(m), "scale": list(s)}
            for name, (a, b), m, s in zip(
                self.names(features)[: len(self.pairs)], self.pairs, self.mean, self.scale, strict=True
            )
        ]
        if self.linear is not None:
            entries.append(
                {
                    "name": LINEAR_NAME,
                    "kind": "linear",
                    "of": list(features),
                    "weights": list(self.linear.weights),
                    "mean": list(self.linear.mean),
                    "scale": list(self.linear.scale),
                    "intercept": self.linear.intercept,
                }
            )
        return entries

    @classmethod
    def from_manifest(cls, entries: list[dict[str, Any]] | None, features: list[str]) -> Derived | None:
        """``None`` for a model without derived features (older versions, federated models)."""
        if not entries:
            return None
        index = {name: i for i, name in enumerate(features)}
        unknown = sorted({name for e in entries for name in e["of"]} - index.keys())
        if unknown:
            from shared.domain.errors import ModelIntegrityError

            raise ModelIntegrityError(
                f"the model's derived features are computed from {', '.join(unknown)}, "
                "which are not among its input features: the manifest does not match the model"
            )
        products = [e for e in entries if e.get("kind", "product") == "product"]
        linears = [e for e in entries if e.get("kind") == "linear"]
        linear = None
        if linears:
            [e] = linears
            if list(e["of"]) != list(features):
                from shared.domain.errors import ModelIntegrityError

                raise ModelIntegrityError(
                    "the model's linear score is over other input features than the model's, or in another "
                    "order: the manifest does not match the model"
                )
            linear = Linear(
                tuple(float(v) for v in e["weights"]),
                tuple(float(v) for v in e["mean"]),
                tuple(float(v) for v in e["scale"]),
                float(e["intercept"]),
            )
        return cls(
            tuple((index[e["of"][0]], index[e["of"][1]]) for e in products),
            tuple((float(e["mean"][0]), float(e["mean"][1])) for e in products),
            tuple((float(e["scale"][0]), float(e["scale"][1])) for e in products),
            linear,
        )
