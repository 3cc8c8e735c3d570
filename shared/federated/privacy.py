"""Central differential privacy for the federated average, at the level of one bank's update.

The server clips each bank's step from the global model to ``clip_bound`` (L2), averages with equal
weights, and adds Gaussian noise of standard deviation ``noise_multiplier * clip_bound / n`` for ``n``
updates (the rule of Flower's ``DifferentialPrivacyServerSideFixedClipping``). The noise comes from
the operating system's entropy, so nobody holding the model and the settings can regenerate and
subtract it. The privacy spent is accounted with Google's ``dp-accounting`` (Rényi DP accountant,
one Gaussian mechanism per model round, every bank in every round, so no sampling amplification is
claimed): ``epsilon_of`` composes every model round's own multiplier. A round that released its
model without noise leaves no finite guarantee; the rounds say so (``rounds_without_noise``).
"""

from __future__ import annotations

import secrets

import numpy as np

NDArrays = list[np.ndarray]


def noise_std(noise_multiplier: float, clip_bound: float, updates: int) -> float:
    return noise_multiplier * clip_bound / updates


def add_noise(params: NDArrays, std: float) -> NDArrays:
    """``params`` plus N(0, std^2) per coordinate, from a generator seeded by the OS (never by a setting)."""
    rng = np.random.default_rng(secrets.randbits(128))
    return [(p + rng.normal(0.0, std, p.shape)).astype(p.dtype, copy=False) for p in params]


def epsilon_of(noise_multipliers: list[float], delta: float) -> float:
    """The (epsilon, delta) guarantee after one Gaussian release per multiplier, from the RDP accountant."""
    from dp_accounting import dp_event
    from dp_accounting.rdp import rdp_privacy_accountant

    accountant = rdp_privacy_accountant.RdpAccountant()
    for z in noise_multipliers:
        accountant.compose(dp_event.GaussianDpEvent(z))
    return float(accountant.get_epsilon(delta))
