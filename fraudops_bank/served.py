"""What a bank checks in what it is served, before it trains.

The operator chooses what every bank trains from, so a hostile one can serve one bank a crafted
model to reconstruct its rows: a scaler with the global mean, a huge scale and zero coefficients
keeps every logit at the intercept through all the local steps, and the bank's single update then
reveals its fraud count and the sum of its fraud rows, which with one fraud in the window is that
row. Large weights can likewise place a steep hyperplane that singles out a few rows. The checks
here refuse such models before any row is read, and refuse to train on a window so small that an
honest update already reveals individual transactions:

- ``check_arrays``: exactly the arrays a round of its kind has, with exactly their shapes;
- ``check_window``: enough rows, and enough of each class (frauds, and legitimate rows too, since
  the update reveals the sum of each class alike);
- ``check_model``: bounded weights, and a scaler close to what the bank's own data gives.

They are pure functions of arrays, computed in float64. They bound what one update reveals; they
do not make it reveal nothing: even an honest first round (zero coefficients) carries the sum of
the bank's fraud rows, which is why the window needs ``min_frauds`` of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from fraudops_bank.errors import BankError, ParametersError, ServedModelRefusedError, WindowTooSmallError

__all__ = ["FLOAT32_RESOLUTION", "SHAPES", "ServedPolicy", "check_arrays", "check_model", "check_window"]

# A bank's statistics are float32 sums, which resolve a feature's spread only to about 4e-4 of
# max(1, |mean|) (rounding alone gives a constant feature a spread of up to 2.5e-4 of its value):
# at or below this fraction the feature is treated as constant in the bank's data.
FLOAT32_RESOLUTION = 1e-3

SHAPES: dict[str, dict[str, str]] = {  # per kind of round, each array's name and shape ("n": one per feature)
    "statistics": {"count": "1", "sum": "n", "sumsq": "n"},
    "model": {"coef": "n", "intercept": "1", "scaler_mean": "n", "scaler_scale": "n"},
}


@dataclass(frozen=True)
class ServedPolicy:
    """How far a served model may go before this bank refuses to train on it.

    ``min_rows`` and ``min_frauds``: the smallest window the bank trains on; ``min_frauds`` applies
    to each class (the update reveals the sum of the fraud rows, and with the round-0 sums that of
    the legitimate rows). ``max_coef_norm``: the L2 norm of the served ``coef`` and ``intercept``
    together. ``max_mean_shift``: how many of the bank's own standard deviations the served mean may
    lie from the bank's own mean. ``max_scale_ratio``: how many times larger, or smaller, the served
    scale may be than the bank's own standard deviation.

    A feature constant in the bank's data (own std at most ``FLOAT32_RESOLUTION * max(1, |own
    mean|)``, the most its float32 sums resolve) has no spread to compare with: every row
    standardises to the same value whatever the scaler, so the served scaler exposes nothing
    through it, while the pooled scale honestly reflects other banks' spread (a flag this bank
    never sets). For such a feature only the upper side is bounded, against its magnitude: the
    served scale at most ``max_scale_ratio * max(1, |own mean|)``, and the bank's constant,
    standardised by the served scaler, at most ``max_mean_shift`` (the shift divided by the served
    scale, the scale floored at that resolution).
    """

    min_rows: int = 1000
    min_frauds: int = 20
    max_coef_norm: float = 50.0
    max_mean_shift: float = 10.0
    max_scale_ratio: float = 100.0

    def __post_init__(self) -> None:
        if self.min_rows < 1 or self.min_frauds < 0:
            raise BankError(
                f"the served-model policy needs min_rows >= 1 and min_frauds >= 0, got {self.min_rows} and "
                f"{self.min_frauds}"
            )
        bounds = {
            "max_coef_norm": self.max_coef_norm,
            "max_mean_shift": self.max_mean_shift,
            "max_scale_ratio": self.max_scale_ratio,
        }
        bad = [f"{name}={value!r}" for name, value in bounds.items() if not (np.isfinite(value) and value > 0)]
        if bad or self.max_scale_ratio < 1:
            raise BankError(
                f"the served-model policy's bounds must be finite and positive, max_scale_ratio at least 1: "
                f"got {', '.join(bad) or f'max_scale_ratio={self.max_scale_ratio!r}'}"
            )


def check_arrays(arrays: Mapping[str, np.ndarray], *, kind: str, n_features: int) -> None:
    """``ParametersError`` unless ``arrays`` are exactly the names and shapes a ``kind`` round has."""
    if kind not in SHAPES:
        raise ParametersError(f"the server sent a round of kind {kind!r}; this client knows {' and '.join(SHAPES)}")
    expected = {name: (1,) if size == "1" else (n_features,) for name, size in SHAPES[kind].items()}
    if {name: tuple(np.shape(a)) for name, a in arrays.items()} == expected:
        return
    problems = [f"{name} is missing" for name in expected if name not in arrays]
    problems += [f"{name} is not one of them" for name in arrays if name not in expected]
    problems += [
        f"{name} has shape {tuple(np.shape(a))} instead of {expected[name]}"
        for name, a in arrays.items()
        if name in expected and tuple(np.shape(a)) != expected[name]
    ]
    want = ", ".join(f"{name} {shape}" for name, shape in expected.items())
    raise ParametersError(
        f"a {kind} round for {n_features} features has the arrays {want}; the server sent "
        f"{_listed(arrays)}: {'; '.join(problems)}"
    )


def check_window(rows: int, frauds: int, policy: ServedPolicy) -> None:
    """``WindowTooSmallError`` unless the window holds ``min_rows`` rows and ``min_frauds`` of each class."""
    legitimate = rows - frauds
    if rows >= policy.min_rows and min(frauds, legitimate) >= policy.min_frauds:
        return
    holds = f"{_count(frauds, 'fraud')} among {_count(rows, 'row')}"
    if frauds >= policy.min_frauds and rows >= policy.min_rows:  # too few legitimate rows
        holds = f"{_count(legitimate, 'legitimate row')} and {_count(frauds, 'fraud')}"
    raise WindowTooSmallError(
        f"this bank's window holds {holds}; its policy needs at least {policy.min_frauds} frauds and as many "
        f"legitimate rows, and {policy.min_rows} rows, before it trains (with fewer, one update can reveal "
        "individual transactions): widen the window, or lower the policy's min_frauds or min_rows knowingly"
    )


def check_model(
    arrays: Mapping[str, np.ndarray], own_statistics: Mapping[str, np.ndarray], policy: ServedPolicy
) -> None:
    """``ServedModelRefusedError`` unless the served weights and scaler are within ``policy`` of the bank's own data.

    ``arrays`` are a model round's (``check_arrays`` first); ``own_statistics`` the bank's ``count``,
    ``sum`` and ``sumsq`` (as ``model.sufficient_statistics``).
    """
    weights = np.concatenate([np.ravel(arrays["coef"]), np.ravel(arrays["intercept"])]).astype(np.float64)
    norm = float(np.linalg.norm(weights))
    if not norm <= policy.max_coef_norm:  # also refuses a NaN norm
        raise ServedModelRefusedError(
            f"the served model's weights (coef and intercept) have an L2 norm of {norm:.3g} (at most "
            f"{policy.max_coef_norm:g}): refused, weights this large can single out individual rows of this bank"
        )
    mean = np.ravel(arrays["scaler_mean"]).astype(np.float64)
    scale = np.ravel(arrays["scaler_scale"]).astype(np.float64)
    own = _Own.of(own_statistics)
    _refuse_first(
        ~(np.isfinite(mean) & np.isfinite(scale) & (scale > 0)),
        lambda j: (
            f"the served scaler for feature {j} has mean {mean[j]:.3g} and scale {scale[j]:.3g} (a finite "
            "mean and a finite positive scale are needed)"
        ),
        "refused",
    )
    # no division by zero: a constant feature is compared with its magnitude (>= 1), any other with its std
    shift = np.abs(mean - own.mean) / np.where(own.constant, np.maximum(scale, own.resolution), own.std)
    ratio = scale / np.where(own.constant, own.magnitude, own.std)
    _refuse_first(
        ~(shift <= policy.max_mean_shift),
        lambda j: (
            f"the served scaler's mean for feature {j} is {mean[j]:.3g}, {shift[j]:.3g} "
            + (
                f"times its own scale ({max(scale[j], own.resolution[j]):.3g}, floored at float32's resolution) "
                f"from this bank's constant value {own.mean[j]:.3g}"
                if own.constant[j]
                else f"of this bank's own standard deviations ({own.std[j]:.3g}) from its own mean {own.mean[j]:.3g}"
            )
            + f" (at most {policy.max_mean_shift:g})"
        ),
        "refused, a mean this far off can expose this bank's rows",
    )
    _refuse_first(
        ~(ratio <= policy.max_scale_ratio),
        lambda j: (
            f"the served scaler's scale for feature {j} is {scale[j]:.3g}, {ratio[j]:.3g} times "
            + (
                f"max(1, |mean|) of this feature, constant at {own.mean[j]:.3g} in this bank's data"
                if own.constant[j]
                else f"this bank's own spread ({own.std[j]:.3g})"
            )
            + f" (at most {policy.max_scale_ratio:g})"
        ),
        "refused, a scale this far off can expose this bank's rows",
    )
    _refuse_first(
        ~own.constant & ~(ratio >= 1 / policy.max_scale_ratio),
        lambda j: (
            f"the served scaler's scale for feature {j} is {scale[j]:.3g}, 1/{1 / ratio[j]:.3g} of this "
            f"bank's own spread ({own.std[j]:.3g}) (at most {policy.max_scale_ratio:g} times smaller)"
        ),
        "refused, a scale this small can single out individual rows of this bank",
    )


@dataclass(frozen=True)
class _Own:
    """Per feature, the bank's own mean and standard deviation, and which features are constant in its data."""

    mean: np.ndarray
    std: np.ndarray
    magnitude: np.ndarray  # max(1, |mean|)
    resolution: np.ndarray  # the smallest spread float32 sums resolve
    constant: np.ndarray

    @classmethod
    def of(cls, statistics: Mapping[str, np.ndarray]) -> _Own:
        count = float(np.ravel(statistics["count"])[0])
        if not count >= 1:
            raise BankError(f"this bank's own statistics count {count:g} rows: nothing to check against")
        mean = np.ravel(statistics["sum"]).astype(np.float64) / count
        std = np.sqrt(np.maximum(np.ravel(statistics["sumsq"]).astype(np.float64) / count - mean * mean, 0.0))
        magnitude = np.maximum(1.0, np.abs(mean))
        resolution = FLOAT32_RESOLUTION * magnitude
        return cls(mean, std, magnitude, resolution, std <= resolution)


def _refuse_first(offending: np.ndarray, describe: Callable[[int], str], consequence: str) -> None:
    """``ServedModelRefusedError`` naming the first offending feature (``describe(j)``) and how many others offend."""
    if not offending.any():
        return
    first = int(np.flatnonzero(offending)[0])
    others = int(offending.sum()) - 1
    also = f"; so are {_count(others, 'other feature')}" if others else ""
    raise ServedModelRefusedError(f"{describe(first)}{also}: {consequence}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _listed(arrays: Mapping[str, np.ndarray]) -> str:
    if not arrays:
        return "none"
    return ", ".join(f"{name} {tuple(np.shape(a))}" for name, a in arrays.items())
