"""Synthetic data with known truth, one generator per dataset that has one (its own picture of fraud).

``generate_dataset(name, ...)`` writes a CSV in dataset ``name``'s contract format, and optionally each
row's true fraud probability (for the quality bench's gap to the optimum). The creditcard generator is
``training.generate`` (several mechanisms of fraud); ``card_transactions`` has its own; any other
contract, shipped or uploaded, gets rows drawn from what it declares (``by_contract``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_FRAUD_RATE = {"creditcard": 0.00172, "card_transactions": 0.005, "home_credit": 0.08}
OTHER_RATE = 0.05  # a contract's positive rate when it has no generator of its own


def _creditcard(rows: int, seed: int, out: Path, fraud_rate: float, truth: Path | None, mechanics: str) -> Any:
    from training.generate import generate

    return generate(rows, seed, out, fraud_rate=fraud_rate, truth=truth, mechanics_name=mechanics)


def _card_transactions(
    rows: int, seed: int, out: Path, fraud_rate: float, truth: Path | None, mechanics: str, behaviour: tuple[str, ...]
) -> Any:
    from training.generators.card_transactions import generate

    if mechanics != "mixture":
        raise ValueError("card_transactions has one picture of fraud; --mechanics applies to creditcard")
    return generate(rows, seed, out, fraud_rate=fraud_rate, truth=truth, mechanisms=behaviour)


GENERATORS: dict[str, Callable[..., Any]] = {"creditcard": _creditcard, "card_transactions": _card_transactions}


def generate_dataset(
    name: str,
    rows: int,
    seed: int,
    out: str | Path,
    *,
    fraud_rate: float | None = None,
    truth: str | Path | None = None,
    mechanics: str = "mixture",
    behaviour: tuple[str, ...] = (),
) -> Any:
    """Write ``rows`` rows of dataset ``name``: its own generator, or rows drawn from its contract (``behaviour``:
    the behavioural fraud mechanisms of ``card_transactions``)."""
    rate = DEFAULT_FRAUD_RATE.get(name, OTHER_RATE) if fraud_rate is None else fraud_rate
    if behaviour and name != "card_transactions":
        raise ValueError("--behaviour mechanisms are drawn by the card_transactions generator (cards and terminals)")
    if name == "card_transactions":
        return _card_transactions(rows, seed, Path(out), rate, Path(truth) if truth else None, mechanics, behaviour)
    if name in GENERATORS:
        return GENERATORS[name](rows, seed, Path(out), rate, Path(truth) if truth else None, mechanics)
    from shared.domain.contracts import get_contract
    from training.generators import by_contract

    contract = get_contract(name)  # UnknownDataset names the known ones
    if mechanics != "mixture":
        raise ValueError(f"{name} is drawn from its contract; --mechanics applies to creditcard")
    return by_contract.generate(contract, rows, seed, out, fraud_rate=rate, truth=truth)
