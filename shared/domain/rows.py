"""The contract's row rules, written once: a vectorised check of columns, a verdict per row, reasons on demand.

Every path that takes transactions (the API's JSON and CSV bodies, the stream, batch scoring and
the ETL) brings its values here as columns: float64 arrays for numeric columns (NaN where a value
is missing) and object arrays for text. :func:`check_columns` applies the contract's rules to
whole columns with NumPy; clean input costs a few array operations, and a reason is worded only
for a row that fails (the first rule it breaks, as a person would read it).

The rules: a required column is present in every row; numbers are finite, inside the column's
range (``minimum``/``maximum``, inclusive), one of its ``allowed`` values, and inside float32 (the
model's input type); text is at most ``max_field_chars`` long.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter, methodcaller
from typing import Any

import numpy as np

from shared.domain.contract import FLOAT32_MAX, Column, ColumnType, DatasetContract

NUMBER_TYPES = {float, int}


def short_value(value: object) -> str:
    """A value as a reason quotes it: a number's repr, or text, cut at 40 characters."""
    text = value if isinstance(value, str) else repr(float(value))  # type: ignore[arg-type]
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class _Rule:
    """One rule broken by some rows: which rows, and how to word it for one of them."""

    rows: np.ndarray  # bool per row
    template: str
    values: np.ndarray | None = None

    def word(self, i: int) -> str:
        return self.template if self.values is None else self.template.format(v=short_value(self.values[i]))


@dataclass(frozen=True)
class RowVerdicts:
    """Which rows break the contract (``bad``) and, on demand, the first rule each one breaks."""

    bad: np.ndarray
    _rules: tuple[_Rule, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return not bool(self.bad.any())

    def reason(self, i: int) -> str | None:
        """The first rule row ``i`` breaks, worded for a person; None for a good row."""
        return next((r.word(i) for r in self._rules if r.rows[i]), None)

    def reasons(self) -> dict[int, str]:
        """Every bad row with its reason (worded now, for the bad rows only)."""
        return {int(i): str(self.reason(int(i))) for i in np.flatnonzero(self.bad)}


def bounds(column: Column) -> tuple[float, float]:
    """The inclusive range a number of ``column`` must lie in (the contract's, within float32)."""
    return (
        -FLOAT32_MAX if column.minimum is None else column.minimum,
        FLOAT32_MAX if column.maximum is None else column.maximum,
    )


def column_bounds(contract: DatasetContract, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of ``names``, as arrays for a whole matrix at once."""
    pairs = [bounds(contract.column(n)) for n in names]
    return np.array([lo for lo, _ in pairs]), np.array([hi for _, hi in pairs])


def in_range(values: np.ndarray, column: Column) -> bool:
    """All of ``values`` are finite and inside the column's range (the fast paths' whole-column test)."""
    lo, hi = bounds(column)
    return bool(np.isfinite(values).all() and (values >= lo).all() and (values <= hi).all())


def check_columns(
    columns: Mapping[str, np.ndarray],
    contract: DatasetContract,
    n: int,
    *,
    required: list[str] | None = None,
    nan_is_missing: bool = True,
    missing: Mapping[str, np.ndarray] | None = None,
) -> RowVerdicts:
    """Check ``n`` rows given as columns against ``contract``.

    ``columns`` maps contract column names to arrays of length ``n``: float64 for numbers (NaN when
    missing), object (str or None) for text. ``required`` names the columns every row must have
    (default: the model's features); a required column absent from ``columns`` fails every row.
    ``nan_is_missing=False`` is for callers that found empty fields themselves (the ETL reads text):
    a NaN left is a ``nan`` literal, not a finite number; they pass ``missing``, each column's rows without
    a value. A nullable column may miss a value anywhere; a required one may not.
    """
    required = contract.feature_names if required is None else required
    bad = np.zeros(n, dtype=bool)
    rules: list[_Rule] = []

    def mark(rows: np.ndarray, template: str, values: np.ndarray | None = None) -> None:
        rows = rows & ~bad
        if rows.any():
            bad[rows] = True
            rules.append(_Rule(rows, template, values))

    for name in required:
        if name not in columns:
            mark(np.ones(n, dtype=bool), f"{name} is missing")
    for name, values in columns.items():
        col = contract.column(name)
        if col.dtype == "timestamp":  # parsed by the caller, which words its own reasons
            continue
        if col.dtype == "string":
            _text_rules(col, values, contract, name in required, mark)
            continue
        if missing is not None and name in missing:
            absent = missing[name]
        else:
            absent = np.isnan(values) if nan_is_missing else np.zeros(n, dtype=bool)
        if name in required and not col.nullable:
            mark(absent, f"{name} is empty")
        finite = np.isfinite(values)
        mark(~finite & ~absent, f"{name} is not a finite number ({{v}})", values)
        if col.type is ColumnType.INTEGER:
            with np.errstate(invalid="ignore"):
                mark(finite & (values != np.round(values)), f"{name} is not a whole number ({{v}})", values)
        with np.errstate(invalid="ignore"):
            if col.minimum is not None:
                word = "negative" if col.minimum == 0 else f"below {col.minimum:g}"
                mark(finite & (values < col.minimum), f"{name} is {word} ({{v}})", values)
            if col.maximum is not None:
                mark(finite & (values > col.maximum), f"{name} is above {col.maximum:g} ({{v}})", values)
            if col.allowed is not None:
                allowed = ", ".join(f"{a:g}" for a in col.allowed)
                mark(finite & ~np.isin(values, col.allowed), f"{name} must be one of {allowed} (got {{v}})", values)
            lo, hi = bounds(col)
            mark(finite & ((values < lo) | (values > hi)), f"{name} is outside the float32 range ({{v}})", values)
    return RowVerdicts(bad, tuple(rules))


def _text_rules(
    col: Column, values: np.ndarray, contract: DatasetContract, required: bool, mark: Callable[..., None]
) -> None:
    """A text column's rules: its length; a category present when required, and one of a closed set."""
    n, name = len(values), col.name
    limit = col.max_chars or contract.max_field_chars
    lengths = np.fromiter((len(v) if isinstance(v, str) else 0 for v in values), dtype=np.int64, count=n)
    mark(lengths > limit, f"{name} is longer than {limit} characters")
    absent = np.fromiter((v is None for v in values), dtype=bool, count=n)
    if col.type is ColumnType.CATEGORICAL and required and not col.nullable:
        mark(absent, f"{name} is empty")
    if col.categories is not None:
        unknown = ~np.isin(values, np.array(col.categories, dtype=object)) & ~absent
        shown = ", ".join(col.categories[:8]) + (" ..." if len(col.categories) > 8 else "")
        mark(unknown, f"{name} must be one of {shown} (got {{v}})", values)


def matrix_from_rows(rows: list[Any], contract: DatasetContract) -> tuple[np.ndarray | None, list[str | None]]:
    """The feature matrix from a list of transaction dicts, C-level iteration only; ``None`` when anything is off.

    ``itemgetter`` pulls each row's features as one tuple, ``set(map(type, ...))`` proves every value
    is a number (not a bool, string or null), and :func:`in_range` checks whole columns. A ``None``
    sends the caller to its precise path, which names each offending row.
    """
    if set(map(type, rows)) != {dict}:
        return None, []
    keys: set[str] = set().union(*rows)
    label = contract.label.name if contract.label else None
    if keys - set(contract.names) or label in keys:
        return None, []
    features = contract.feature_names
    try:
        tuples = list(map(itemgetter(*features), rows))
    except KeyError:
        return None, []
    if not set(map(type, chain.from_iterable(tuples))) <= NUMBER_TYPES:
        return None, []
    try:
        values = np.array(tuples, dtype=np.float64)
    except OverflowError:  # an integer beyond float64
        return None, []
    lo, hi = column_bounds(contract, features)
    if not (np.isfinite(values).all() and (values >= lo).all() and (values <= hi).all()):
        return None, []
    for name in keys - set(features):  # Time and ids: checked, not scored
        column = list(map(methodcaller("get", name), rows))
        types = set(map(type, column))
        spec = contract.column(name)
        if spec.dtype == "string":
            if not types <= {str, type(None)}:
                return None, []
            if max(map(len, filter(None, column)), default=0) > contract.max_field_chars:
                return None, []
        else:
            if not types <= NUMBER_TYPES | {type(None)}:
                return None, []
            try:
                numbers = np.array(column, dtype=np.float64)  # None becomes NaN
            except OverflowError:
                return None, []
            present = numbers[~np.isnan(numbers)] if type(None) in types else numbers
            if not in_range(present, spec):
                return None, []
    ids = (
        list(map(methodcaller("get", contract.transaction_id), rows)) if contract.transaction_id else [None] * len(rows)
    )
    return values.astype(np.float32), ids
