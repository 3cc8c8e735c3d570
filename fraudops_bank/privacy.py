"""The privacy a bank spends, by its own count: the noise of every round it took part in, and its ceiling.

In a secure round with differential privacy each bank adds Gaussian noise of standard deviation
``z * C / sqrt(t)`` to its clipped step (``C`` the clip bound, ``z`` the noise multiplier, ``t`` the
round's threshold), so the sum of the at least ``t`` steps the server can unmask carries noise of at
least ``z * C``: the Gaussian mechanism on a sum whose sensitivity to one bank is ``C``. The bank does not
trust the server's count: it keeps its own ledger (a JSON file) of the multiplier of every round it
took part in, composes them with Google's ``dp-accounting`` (Rényi DP, no sampling amplification
claimed), and refuses a round that would take it past its own ceiling.

The noise comes from NumPy's generator seeded with 128 bits from the operating system. Floating-point
attacks on Gaussian samplers (Mironov 2012) read the exact float a noised value lands on; here the noised
step is then rounded to the 2**-32 grid of the secure sum (``fraudops_bank.secagg``), far coarser than
the floats' spacing near the values a step takes, so the float's low bits do not survive to the server.
A discrete Gaussian would be exact; this rounding is the reason the continuous one is acceptable here.
"""

from __future__ import annotations

import json
import math
import secrets
from pathlib import Path

import numpy as np

from fraudops_bank.errors import BankError


class PrivacyBudgetError(BankError):
    """Taking part in the round would spend more privacy than the bank allows itself."""


def epsilon(multipliers: list[float], delta: float) -> float:
    """The (epsilon, delta) guarantee after one Gaussian release per multiplier (RDP accountant)."""
    if not multipliers:
        return 0.0
    from dp_accounting import dp_event
    from dp_accounting.rdp import rdp_privacy_accountant

    accountant = rdp_privacy_accountant.RdpAccountant()
    for z in multipliers:
        accountant.compose(dp_event.GaussianDpEvent(z))
    return float(accountant.get_epsilon(delta))


def count_noise_std(min_clients: int) -> float:
    """The noise on the count of clipped steps that adaptive clipping learns from (Andrew et al. 2021 take the
    expected number of clients over 20), at least 1: the whole of it, shared by the banks like the step's."""
    return max(1.0, min_clients / 20)


def accounted_multiplier(noise_multiplier: float, *, adaptive: bool, min_clients: int) -> float:
    """The multiplier a round is accounted at: with an adaptive clip bound the noised count of clipped steps is
    released too, and the two Gaussian releases compose to ``(z**-2 + (2 sigma_b)**-2) ** -0.5`` (Andrew et al.,
    Theorem 1)."""
    if not adaptive:
        return noise_multiplier
    sigma_b = count_noise_std(min_clients)
    return float((noise_multiplier**-2 + (2 * sigma_b) ** -2) ** -0.5)


def bank_noise_std(noise_multiplier: float, clip_bound: float, threshold: int) -> float:
    """Each bank's share of the noise, so that any ``threshold`` of them sum to ``noise_multiplier * clip_bound``."""
    return noise_multiplier * clip_bound / math.sqrt(threshold)


def add_noise(values: np.ndarray, std: float) -> np.ndarray:
    rng = np.random.default_rng(secrets.randbits(128))
    return np.asarray(values, np.float64) + rng.normal(0.0, std, np.shape(values))


class Ledger:
    """The bank's own record of the noise of each round it took part in, per experiment (a JSON file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, dict[str, float | None]]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise BankError(
                f"the privacy ledger {self.path} is unreadable ({exc}); it is this bank's own record"
            ) from None
        return {str(e): {str(n): (None if z is None else float(z)) for n, z in r.items()} for e, r in doc.items()}

    def rounds(self, experiment: str) -> dict[str, float | None]:
        return self._read().get(experiment, {})

    def spent(self, experiment: str, delta: float) -> float:
        """Epsilon spent so far in ``experiment`` (infinite once a round took part without noise)."""
        zs = list(self.rounds(experiment).values())
        if any(z is None for z in zs):
            return math.inf
        return epsilon([z for z in zs if z is not None], delta)

    def check(
        self, experiment: str, n: int, noise_multiplier: float | None, delta: float, ceiling: float | None
    ) -> float:
        """Epsilon after round ``n``; ``PrivacyBudgetError`` when it would pass ``ceiling``."""
        rounds = self.rounds(experiment)
        zs = [z for k, z in rounds.items() if k != str(n)] + [noise_multiplier]
        after = math.inf if any(z is None for z in zs) else epsilon([z for z in zs if z is not None], delta)
        if ceiling is not None and after > ceiling:
            raise PrivacyBudgetError(
                f"taking part in round {n} would bring this bank's epsilon to {after:.3g} (at delta {delta:g}) over "
                f"its {len(zs)} rounds, past its ceiling of {ceiling:g}: this bank stops taking part"
                + ("" if noise_multiplier else " (the round adds no noise, so no finite epsilon holds)")
            )
        return after

    def record(self, experiment: str, n: int, noise_multiplier: float | None) -> None:
        doc = self._read()
        doc.setdefault(experiment, {})[str(n)] = noise_multiplier
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True), encoding="utf-8")
        tmp.replace(self.path)
