"""Transactions as JSON objects (the API's JSON body, one stream event each) to typed columns, with the row rules.

For a contract whose features are not all plain numbers (categories, booleans, integers, missing
values, timestamps), each value is checked against its column's type strictly, as JSON gives it (a
number is not text, ``true`` is not ``1``), then the contract's rules (``shared.domain.rows``) run on
whole columns. Every refused row gets the first rule it breaks, worded for a person.

What comes out: numbers and booleans as float64 (NaN when missing), text and categories as object
arrays (``None`` when missing), timestamps as float64 seconds since 1970 UTC, and the matrix of
features in input order with the categorical columns left NaN (the model fills them with its own
codes, ``shared.domain.encoding``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np

from shared.domain.contract import Column, ColumnType, DatasetContract
from shared.domain.rows import RowVerdicts, _Rule, check_columns

NUMBERS = (int, float)


@dataclass(frozen=True)
class TypedRows:
    """Rows as typed columns, the verdict on each row, and the model's input matrix (categories left NaN)."""

    columns: dict[str, np.ndarray]
    verdicts: RowVerdicts
    x: np.ndarray
    categories: dict[str, np.ndarray]

    def field_of(self, reason: str) -> str | None:
        """The column a reason is about (reasons start with the column's name)."""
        return next((name for name in self.columns if reason.startswith(name + " ")), None)


@lru_cache(maxsize=16)
def is_plain(contract: DatasetContract) -> bool:
    """Whether every feature is a required float and the event time, if any, a number: the fast paths' case."""
    features = all(
        contract.column(n).type is ColumnType.FLOAT and not contract.column(n).nullable for n in contract.feature_names
    )
    time = contract.time_column
    plain_time = time is None or time.type in (ColumnType.FLOAT, ColumnType.INTEGER)
    return features and plain_time and contract.behaviour.empty  # behaviour reads entity keys: the typed path


def _value_of(col: Column, v: Any) -> tuple[Any, bool]:
    """One JSON value as the column holds it, and whether its type is wrong."""
    if v is None:
        return (None if col.dtype in ("string",) else np.nan), False
    t = col.type
    if t in (ColumnType.FLOAT, ColumnType.INTEGER):
        ok = type(v) in NUMBERS
        return (float(v) if ok else np.nan), not ok
    if t is ColumnType.BOOLEAN:
        ok = type(v) is bool
        return (float(v) if ok else np.nan), not ok
    if t is ColumnType.TIMESTAMP:
        if type(v) is not str:
            return np.nan, True
        try:
            moment = datetime.fromisoformat(v)
        except ValueError:
            return np.nan, True
        return (moment.timestamp(), False) if moment.tzinfo is not None else (np.nan, True)
    return (v, False) if type(v) is str else (None, True)


WRONG = {
    ColumnType.FLOAT: "is not a number",
    ColumnType.INTEGER: "is not a number",
    ColumnType.BOOLEAN: "is not true or false",
    ColumnType.CATEGORICAL: "is not text",
    ColumnType.STRING: "is not text",
    ColumnType.TIMESTAMP: "is not an ISO 8601 time with a UTC offset",
}


def typed_rows(rows: list[Any], contract: DatasetContract) -> TypedRows:
    """``rows`` (JSON objects) as typed columns of ``contract``, each row judged."""
    n = len(rows)
    rules: list[_Rule] = []
    bad = np.zeros(n, dtype=bool)

    def mark(where: np.ndarray, template: str, values: np.ndarray | None = None) -> None:
        where = where & ~bad
        if where.any():
            bad[where] = True
            rules.append(_Rule(where, template, values))

    label = contract.label.name if contract.label else None
    known = set(contract.names) - {label}
    shapes = np.fromiter((type(r) is dict for r in rows), dtype=bool, count=n)
    mark(~shapes, "a transaction must be a JSON object")
    rows = [r if type(r) is dict else {} for r in rows]
    for name in sorted(set().union(*rows) - known):
        mark(np.fromiter((name in r for r in rows), dtype=bool, count=n), f"{name} is not a column of the contract")
    columns: dict[str, np.ndarray] = {}
    missing: dict[str, np.ndarray] = {}
    for col in contract.columns:
        if col.name == label:
            continue
        pairs = [_value_of(col, r.get(col.name)) for r in rows]
        wrong = np.fromiter((w for _, w in pairs), dtype=bool, count=n)
        text = col.dtype == "string"
        values = np.array([v for v, _ in pairs], dtype=object if text else np.float64)
        if text:
            absent = np.fromiter((v is None for v in values), dtype=bool, count=n) & ~wrong
        else:
            absent = np.isnan(values) & ~wrong
        shown = np.array([repr(r.get(col.name))[:40] for r in rows], dtype=object) if wrong.any() else None
        mark(wrong, f"{col.name} {WRONG[col.type]} ({{v}})", shown)
        columns[col.name], missing[col.name] = values, absent | wrong
    checked = {k: v for k, v in columns.items() if contract.column(k).dtype != "timestamp"}
    rules_of_contract = check_columns(checked, contract, n, missing=missing)
    verdicts = RowVerdicts(bad | rules_of_contract.bad, (*rules, *rules_of_contract._rules))
    x = np.full((n, len(contract.feature_names)), np.nan, dtype=np.float32)
    categories: dict[str, np.ndarray] = {}
    for j, name in enumerate(contract.feature_names):
        if contract.column(name).type is ColumnType.CATEGORICAL:
            categories[name] = columns[name]
        else:
            with np.errstate(over="ignore"):
                x[:, j] = columns[name]
    return TypedRows(columns, verdicts, x, categories)


def row_errors(typed: TypedRows) -> list[dict[str, Any]]:
    """The API's error list: each refused row, the column and the reason."""
    return [
        {"row": i, "field": typed.field_of(reason), "msg": reason} for i, reason in typed.verdicts.reasons().items()
    ]


def optional(columns: Mapping[str, np.ndarray], name: str | None) -> np.ndarray | None:
    """A column by role name, if the contract has the role and the rows the column."""
    return columns.get(name) if name else None
