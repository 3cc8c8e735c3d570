"""The OpenAPI document's score bodies come from the dataset's contract, and the CSV pattern is never wider than it."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.openapi import csv_example, csv_pattern, field_pattern, score_components
from shared.domain.contract import Column, ColumnType
from shared.domain.contract_file import parse_contract
from shared.domain.contracts import get_contract, known_contracts

SHIPPED = sorted(known_contracts())


def _accepts(col: Column, text: str, max_chars: int) -> bool:
    """Whether ``col``'s rules accept ``text`` as a CSV field (what the pattern must never exceed)."""
    if text == "":
        return col.nullable
    if col.type in (ColumnType.FLOAT, ColumnType.INTEGER):
        value = float(text)
        lo = -math.inf if col.minimum is None else col.minimum
        hi = math.inf if col.maximum is None else col.maximum
        whole = col.type is ColumnType.FLOAT or value == int(value)
        return whole and lo <= value <= hi and (col.allowed is None or value in col.allowed)
    if col.type is ColumnType.BOOLEAN:
        return text in ("true", "false")
    if col.categories is not None:
        return text in col.categories
    return len(text) <= (col.max_chars or max_chars)


EDGES = parse_contract(
    """
name: edges
roles: {label: {column: y}}
columns:
  - {name: ratio, type: float, minimum: 0, maximum: 0.5}
  - {name: small, type: float, minimum: -3, maximum: 42}
  - {name: far, type: float, minimum: 1000, maximum: 2000}
  - {name: below, type: float, maximum: -7}
  - {name: count, type: integer, minimum: 0, maximum: 999, nullable: true}
  - {name: level, type: integer, allowed: [1, 2, 3]}
  - {name: y, type: integer, allowed: [0, 1]}
"""
)


def _distinct() -> list[tuple[object, str]]:
    """One feature of each distinct pattern per contract (Home Credit's 120 features have a dozen)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for contract in [*(get_contract(n) for n in SHIPPED), EDGES]:
        for name in contract.feature_names:
            key = (contract.name, field_pattern(contract.column(name), contract.max_field_chars))
            if key not in seen:
                seen.add(key)
                out.append((contract, name))
    return out


FIELDS = _distinct()


@pytest.mark.parametrize(("contract", "feature"), FIELDS, ids=[f"{c.name}.{n}" for c, n in FIELDS])
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_every_value_the_csv_pattern_admits_is_accepted_by_the_contract(contract, feature, data) -> None:
    col = contract.column(feature)
    pattern = field_pattern(col, contract.max_field_chars)
    text = data.draw(st.from_regex(re.compile(f"^{pattern}$"), fullmatch=True))
    assert _accepts(col, text, contract.max_field_chars), (col.name, pattern, text)


@pytest.mark.parametrize("name", SHIPPED)
def test_the_documented_example_fits_the_pattern_and_the_json_schema_is_the_contract(name: str) -> None:
    contract = get_contract(name)
    components = score_components(contract)

    assert re.match(csv_pattern(contract), csv_example(contract))
    transaction = components["TransactionIn"]
    assert transaction["additionalProperties"] is False
    assert set(transaction.get("required", [])) == set(contract.feature_names) - {
        c.name for c in contract.columns if c.nullable
    }
    assert contract.label is not None and contract.label.name not in transaction["properties"]
