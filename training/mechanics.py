"""Fraud mechanisms for the generator: distinct pictures of how fraud depends on the features, each with
its exact probability, so a model's gap to the Bayes optimum can be measured on every one of them.

``mixture`` is the original picture (frauds drawn from a shifted Gaussian mixture: smooth log-odds).
The others draw every transaction from the population first and its label from a known
``P(fraud | features)``: ``logit = intercept + f(z)``, with ``z`` the features standardised by the
population's spread and the intercept solved so the fraud rate is the one asked for.

* ``interactions``: fraud where two features are jointly unusual (products of features), little
  main effect; an additive model cannot follow it.
* ``steps``: thresholds and rules (a feature beyond a cut-off, two at once, a large amount): the
  log-odds jump rather than slope.
* ``correlated``: the features share latent factors (as a bank's raw signals do before PCA), and the
  log-odds mix a linear score with a curved one.
* ``drift``: the population moves over the two days (three features' means slide by up to a standard
  deviation, so fraud becomes more common), while ``P(fraud | features)`` stays put: the newest rows
  look least like the oldest.

No setting of the training pipeline names a mechanism: they exist to check that its defaults and its
search let the data decide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

N_COMPONENTS = 28
VARIANCES = 3.8 * (0.1 / 3.8) ** (np.arange(N_COMPONENTS) / (N_COMPONENTS - 1))
STDS = np.sqrt(VARIANCES)
AMOUNT_LOG_MEAN = np.log(22.0)
AMOUNT_LOG_SIGMA = 1.665
CALIBRATION_ROWS = 400_000
CALIBRATION_SEED = 20_261_202


def _z(v: np.ndarray, k: int) -> np.ndarray:
    """Feature ``V<k>`` in standard deviations of the population."""
    return np.asarray(v[:, k - 1] / STDS[k - 1])


def _interactions(v: np.ndarray, _amount: np.ndarray) -> np.ndarray:
    z14, z17, z12, z10, z4, z3 = (_z(v, k) for k in (14, 17, 12, 10, 4, 3))
    return np.asarray(2.0 * z14 * z17 + 1.6 * z12 * z10 - 1.45 * z4 * z3 - 0.63 * z14)


def _steps(v: np.ndarray, amount: np.ndarray) -> np.ndarray:
    z14, z17, z12, z10, z4, z3 = (_z(v, k) for k in (14, 17, 12, 10, 4, 3))
    return np.asarray(
        6.5 * (z14 < -1.6)
        + 5.0 * (z17 < -1.4)
        + 4.0 * (z12 < -1.8)
        + 3.5 * (z4 > 1.5)
        + 5.5 * ((z10 < -1.0) & (z3 < -1.0))
        + 2.5 * (amount > 400.0)
    ).astype(np.float64)


def _correlated(v: np.ndarray, _amount: np.ndarray) -> np.ndarray:
    z14, z12, z11, z3, z7 = (_z(v, k) for k in (14, 12, 11, 3, 7))
    return np.asarray(-1.8 * z14 - 1.4 * z12 + 1.2 * z11 + 0.9 * (z3 * z3 - 1.0) - 1.0 * np.abs(z7))


# The drift mechanism's score: smooth, with one interaction, on features that also move.
def _drift(v: np.ndarray, _amount: np.ndarray) -> np.ndarray:
    z14, z12, z4, z17 = (_z(v, k) for k in (14, 12, 4, 17))
    return np.asarray(-2.0 * z14 - 1.6 * z12 + 1.4 * z4 + 1.0 * z14 * z17)


# Correlation of the "correlated" mechanism: two latent factors, each loading on a block of features.
_FACTOR_BLOCKS = ((0, 10, 0.7), (10, 20, 0.6))
# Drift: (feature index from 0, shift in standard deviations at the end of the two days).
_DRIFT_SHIFTS = ((13, -1.0), (11, -0.8), (3, 0.8))


@dataclass(frozen=True)
class Mechanism:
    name: str
    score: Callable[[np.ndarray, np.ndarray], np.ndarray]
    correlated: bool = False
    drifts: bool = False


MECHANISMS: dict[str, Mechanism] = {
    "interactions": Mechanism("interactions", _interactions),
    "steps": Mechanism("steps", _steps),
    "correlated": Mechanism("correlated", _correlated, correlated=True),
    "drift": Mechanism("drift", _drift, drifts=True),
}
NAMES = ("mixture", *MECHANISMS)


def population(rng: np.random.Generator, n: int, mechanism: Mechanism, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``n`` transactions' ``V1..V28`` and amounts, before any label; ``t`` is each row's time in days / 2."""
    e = rng.standard_normal((n, N_COMPONENTS))
    if mechanism.correlated:
        for start, stop, loading in _FACTOR_BLOCKS:
            factor = rng.standard_normal((n, 1))
            e[:, start:stop] = loading * factor + np.sqrt(1.0 - loading**2) * e[:, start:stop]
    if mechanism.drifts:
        for k, shift in _DRIFT_SHIFTS:
            e[:, k] += shift * t
    return e * STDS, amounts(rng, n)


def amounts(rng: np.random.Generator, n: int) -> np.ndarray:
    """Log-normal amounts (median about 22, mean about 88, a heavy right tail), in cents, never negative."""
    return np.asarray(np.round(np.exp(rng.normal(AMOUNT_LOG_MEAN, AMOUNT_LOG_SIGMA, n)) - 0.5, 2).clip(0.0))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


_INTERCEPTS: dict[tuple[str, float], float] = {}


def intercept(mechanism: Mechanism, fraud_rate: float) -> float:
    """The intercept that gives ``fraud_rate`` on a large fixed sample (mid-way through the drift)."""
    key = (mechanism.name, fraud_rate)
    if key not in _INTERCEPTS:
        rng = np.random.default_rng(CALIBRATION_SEED)
        v, amount = population(rng, CALIBRATION_ROWS, mechanism, np.full(CALIBRATION_ROWS, 0.5))
        score = mechanism.score(v, amount)
        low, high = -40.0, 10.0
        for _ in range(80):
            mid = (low + high) / 2
            low, high = (mid, high) if _sigmoid(score + mid).mean() < fraud_rate else (low, mid)
        _INTERCEPTS[key] = (low + high) / 2
    return _INTERCEPTS[key]


def probability(mechanism: Mechanism, v: np.ndarray, amount: np.ndarray, fraud_rate: float) -> np.ndarray:
    """The exact ``P(fraud | V1..V28, Amount)`` under ``mechanism``."""
    return _sigmoid(mechanism.score(v, amount) + intercept(mechanism, fraud_rate))


def sample(
    rng: np.random.Generator, n: int, mechanism: Mechanism, fraud_rate: float, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``V1..V28``, amounts, labels and true probabilities of ``n`` transactions at times ``t``."""
    v, amount = population(rng, n, mechanism, t)
    p = probability(mechanism, v, amount, fraud_rate)
    return v, amount, rng.random(n) < p, p
