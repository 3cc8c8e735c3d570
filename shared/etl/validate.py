"""Row-level validation of a batch against the dataset contract, vectorised with pyarrow/NumPy.

Every row either passes or gets one reason a person can read (the first check it fails);
reasons are formatted only for failing rows, so clean batches cost a few array operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shared.domain.contract import Column, ColumnType, DatasetContract
from shared.domain.rows import RowVerdicts, check_columns, short_value
from shared.etl.arrays import bools, floats, mask, objects
from shared.etl.source import Batch

NUMBER_RE = r"^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[Nn][Aa][Nn]|[Ii][Nn][Ff]([Ii][Nn][Ii][Tt][Yy])?)$"


@dataclass
class Validated:
    """The valid rows as a typed table, and the quarantined rows with line and reason."""

    valid: pa.Table
    bad_lines: np.ndarray
    bad_reasons: list[str]
    bad_raw: list[str]
    empty_counts: dict[str, int]


TIMESTAMP_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:?[0-9]{2})$"
TRUE_TEXT, FALSE_TEXT = ("true", "1"), ("false", "0")


def curated_type(col: Column) -> pa.DataType:
    """How curated Parquet stores ``col``: typed, categories dictionary-encoded, times in UTC."""
    if col.role == "label":
        return pa.int8()
    return {
        ColumnType.FLOAT: pa.float64(),
        ColumnType.INTEGER: pa.int64(),
        ColumnType.BOOLEAN: pa.bool_(),
        ColumnType.CATEGORICAL: pa.dictionary(pa.int32(), pa.string()),
        ColumnType.STRING: pa.string(),
        ColumnType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    }[col.type]


def curated_schema(contract: DatasetContract, present: list[str]) -> pa.Schema:
    """The typed schema of curated Parquet: contract order, optional columns only when present."""
    return pa.schema(
        [
            pa.field(c.name, curated_type(c), nullable=c.nullable or c.dtype == "string")
            for c in contract.columns
            if c.required or c.name in present
        ]
    )


class _Reasons:
    """One reason per row; the first check a row fails wins."""

    def __init__(self, n: int) -> None:
        self.reasons = np.full(n, None, dtype=object)
        self.bad = np.zeros(n, dtype=bool)

    def mark_each(self, verdicts: RowVerdicts) -> None:
        """The domain's verdicts for rows not already refused here, each with its own reason."""
        rows = np.flatnonzero(verdicts.bad & ~self.bad)
        self.bad[rows] = True
        self.reasons[rows] = [verdicts.reason(int(i)) for i in rows]

    def mark(self, mask: np.ndarray, template: str, values: np.ndarray | None = None) -> None:
        rows = np.flatnonzero(mask & ~self.bad)
        if rows.size == 0:
            return
        self.bad[rows] = True
        if values is None:
            self.reasons[rows] = template
        else:
            self.reasons[rows] = [template.format(v=short_value(values[i])) for i in rows]


def validate(batch: Batch, contract: DatasetContract) -> Validated:
    """Check every row of ``batch``; return the valid rows typed and the rest with reasons."""
    n = batch.num_rows
    marks = _Reasons(n)
    values: dict[str, np.ndarray] = {}
    absent: dict[str, np.ndarray] = {}
    typed: dict[str, pa.Array] = {}
    texts: dict[str, np.ndarray] = {}
    empty_counts: dict[str, int] = {}
    marks.mark(_blank_rows(batch), "the line is empty")
    for name, arr in batch.columns.items():
        col = contract.column(name)
        if col.type in (ColumnType.STRING, ColumnType.CATEGORICAL):
            typed[name] = _text(arr, col, contract, marks)
            texts[name] = objects(arr)
            continue
        if col.type in (ColumnType.TIMESTAMP, ColumnType.BOOLEAN):
            texts[name] = objects(arr) if pa.types.is_string(arr.type) else objects(pc.cast(arr, pa.string()))
            typed[name] = (_timestamps if col.type is ColumnType.TIMESTAMP else _booleans)(arr, col, marks)
            continue
        if pa.types.is_string(arr.type):
            strings = objects(arr)
            texts[name] = strings
            empty = bools(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(arr)), 0))
            numeric = bools(pc.match_substring_regex(arr, NUMBER_RE))
            # a number is judged by its value, as in a typed block; only a long non-number is "too long"
            too_long = bools(pc.greater(pc.utf8_length(arr), contract.max_field_chars)) & ~numeric
            empty_counts[name] = int(empty.sum())
            absent[name] = empty | bools(arr.is_null())
            if not col.nullable:
                marks.mark(empty, f"{name} is empty")
            marks.mark(too_long, f"{name} is longer than {contract.max_field_chars} characters")
            marks.mark(~numeric & ~empty, f"{name} is not a number: {{v!r}}", strings)
            cleaned = pc.if_else(mask(numeric), arr, pa.scalar(None, pa.string()))
            arr = pc.cast(cleaned, pa.float64())
            values_of = floats(arr)
        else:
            values_of = floats(arr)
            nulls = bools(arr.is_null()) if arr.null_count else np.zeros(n, dtype=bool)
            empty_counts[name] = int(nulls.sum())
            absent[name] = nulls
            if not col.nullable:
                marks.mark(nulls, f"{name} is empty")
        typed[name] = arr
        values[name] = values_of

    # the contract's numeric rules (finite, range, allowed values, float32): one home, shared with every path
    verdicts = check_columns(values, contract, n, required=[], nan_is_missing=False, missing=absent)
    marks.mark_each(verdicts)
    bad = marks.bad
    any_bad = bool(bad.any())
    keep = mask(~bad) if any_bad else None
    schema = curated_schema(contract, list(batch.columns))
    arrays = []
    for fld in schema:
        arr = typed.get(fld.name, batch.columns[fld.name])
        if keep is not None:
            arr = arr.filter(keep)
        arrays.append(arr if arr.type == fld.type else pc.cast(arr, fld.type))
    bad_rows = np.flatnonzero(bad)
    raw = [_row_text(batch, values, texts, int(i)) for i in bad_rows] if bad_rows.size else []
    return Validated(
        valid=pa.Table.from_arrays(arrays, schema=schema),
        bad_lines=batch.lines[bad_rows],
        bad_reasons=[str(r) for r in marks.reasons[bad_rows]],
        bad_raw=raw,
        empty_counts=empty_counts,
    )


def _missing(arr: pa.Array, col: Column, marks: _Reasons) -> np.ndarray:
    """Rows without a value (null or empty text); refused unless the column is nullable."""
    missing = bools(arr.is_null())
    if pa.types.is_string(arr.type):
        missing |= bools(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(arr)), 0))
    if not col.nullable:
        marks.mark(missing, f"{col.name} is empty")
    return missing


def _text(arr: pa.Array, col: Column, contract: DatasetContract, marks: _Reasons) -> pa.Array:
    """An id or a category: at most its length; a category of a closed set, one of them; empty is missing."""
    limit = col.max_chars or contract.max_field_chars
    missing = _missing(arr, col, marks)
    marks.mark(bools(pc.greater(pc.utf8_length(arr), limit)), f"{col.name} is longer than {limit} characters")
    if col.categories is not None:
        unknown = ~bools(pc.is_in(arr, value_set=pa.array(col.categories, pa.string()))) & ~missing
        shown = ", ".join(col.categories[:8]) + (" ..." if len(col.categories) > 8 else "")
        marks.mark(unknown, f"{col.name} must be one of {shown} (got {{v}})", objects(arr))
    if missing.any():  # an empty field is a missing value
        arr = pc.if_else(mask(missing), pa.scalar(None, pa.string()), arr)
    return arr


def _timestamps(arr: pa.Array, col: Column, marks: _Reasons) -> pa.Array:
    """ISO 8601 times with their UTC offset (or Z), as UTC; a time without an offset is ambiguous: refused."""
    if pa.types.is_timestamp(arr.type):
        return pc.cast(arr, pa.timestamp("us", tz="UTC"))
    missing = _missing(arr, col, marks)
    well_formed = bools(pc.match_substring_regex(arr, TIMESTAMP_RE))
    marks.mark(~well_formed & ~missing, f"{col.name} is not an ISO 8601 time with a UTC offset ({{v}})", objects(arr))
    keep = pc.if_else(mask(well_formed), arr, pa.scalar(None, pa.string()))
    try:
        return pc.cast(keep, pa.timestamp("us", tz="UTC"))
    except pa.ArrowInvalid:  # well formed but impossible (a 31st of April, hour 25): say which, one by one
        values = objects(keep)
        parsed = []
        for i, v in enumerate(values):
            try:
                parsed.append(pc.cast(pa.array([v], pa.string()), pa.timestamp("us", tz="UTC"))[0].as_py())
            except pa.ArrowInvalid:
                marks.mark(np.arange(len(values)) == i, f"{col.name} is not a valid time ({{v}})", values)
                parsed.append(None)
        return pa.array(parsed, pa.timestamp("us", tz="UTC"))


def _booleans(arr: pa.Array, col: Column, marks: _Reasons) -> pa.Array:
    """true or false (also 1 or 0, any case); anything else is refused."""
    if pa.types.is_boolean(arr.type):
        _missing(arr, col, marks)
        return arr
    missing = _missing(arr, col, marks)
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(arr))
    true = bools(pc.is_in(lowered, value_set=pa.array(TRUE_TEXT)))
    false = bools(pc.is_in(lowered, value_set=pa.array(FALSE_TEXT)))
    marks.mark(~true & ~false & ~missing, f"{col.name} is not true or false ({{v}})", objects(arr))
    return pa.array(np.where(true, True, False), pa.bool_(), mask=~(true | false))


def _blank_rows(batch: Batch) -> np.ndarray:
    """Rows whose every field is empty (a blank line in the file)."""
    blank = np.ones(batch.num_rows, dtype=bool)
    for arr in batch.columns.values():
        if pa.types.is_string(arr.type):
            blank &= bools(pc.equal(pc.utf8_length(arr), 0))
        elif arr.null_count:
            blank &= bools(arr.is_null())
        else:
            return np.zeros(batch.num_rows, dtype=bool)
        if not blank.any():
            break
    return blank


def _row_text(batch: Batch, values: dict[str, np.ndarray], texts: dict[str, np.ndarray], i: int) -> str:
    parts = []
    for name in batch.columns:
        if name in texts:
            parts.append(str(texts[name][i]))
        else:
            v = values[name][i]
            parts.append("" if np.isnan(v) else repr(float(v)))
    return ",".join(parts)
