"""Synthetic data with known truth, one generator per dataset that has one (its own picture of fraud).

``generate_dataset(name, ...)`` writes a CSV in dataset ``name``'s contract format, and optionally each
row's true fraud probability (for the quality bench's gap to the optimum). The creditcard generator is
``training.generate`` (several mechanisms of fraud); ``card_transactions`` has its own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_FRAUD_RATE = {"creditcard": 0.00172, "card_transactions": 0.005}


def _creditcard(rows: int, seed: int, out: Path, fraud_rate: float, truth: Path | None, mechanics: str) -> Any:
    from training.generate import generate

    return generate(rows, seed, out, fraud_rate=fraud_rate, truth=truth, mechanics_name=mechanics)


def _card_transactions(rows: int, seed: int, out: Path, fraud_rate: float, truth: Path | None, mechanics: str) -> Any:
    from training.generators.card_transactions import generate

    if mechanics != "mixture":
        raise ValueError("card_transactions has one picture of fraud; --mechanics applies to creditcard")
    return generate(rows, seed, out, fraud_rate=fraud_rate, truth=truth)


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
) -> Any:
    """Write ``rows`` rows of dataset ``name``; a clear error for a dataset without a generator."""
    if name not in GENERATORS:
        raise ValueError(f"no generator for dataset {name!r}; generators: {', '.join(sorted(GENERATORS))}")
    rate = DEFAULT_FRAUD_RATE[name] if fraud_rate is None else fraud_rate
    return GENERATORS[name](rows, seed, Path(out), rate, Path(truth) if truth else None, mechanics)
