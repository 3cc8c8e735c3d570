"""Row-level validation of a batch against the dataset contract, vectorised with pyarrow/NumPy.

Every row either passes or gets one reason a person can read (the first check it fails);
reasons are formatted only for failing rows, so clean batches cost a few array operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shared.domain.contract import DatasetContract
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


def curated_schema(contract: DatasetContract, present: list[str]) -> pa.Schema:
    """The typed schema of curated Parquet: contract order, optional columns only when present."""
    types = {"float64": pa.float64(), "int8": pa.int8(), "string": pa.string()}
    return pa.schema(
        [
            pa.field(c.name, types[c.dtype], nullable=c.dtype == "string")
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
    typed: dict[str, pa.Array] = {}
    texts: dict[str, np.ndarray] = {}
    empty_counts: dict[str, int] = {}
    marks.mark(_blank_rows(batch), "the line is empty")
    for name, arr in batch.columns.items():
        col = contract.column(name)
        if col.dtype == "string":
            too_long = bools(pc.greater(pc.utf8_length(arr), contract.max_field_chars))
            marks.mark(too_long, f"{name} is longer than {contract.max_field_chars} characters")
            texts[name] = objects(arr)
            continue
        if pa.types.is_string(arr.type):
            strings = objects(arr)
            texts[name] = strings
            empty = bools(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(arr)), 0))
            numeric = bools(pc.match_substring_regex(arr, NUMBER_RE))
            # a number is judged by its value, as in a typed block; only a long non-number is "too long"
            too_long = bools(pc.greater(pc.utf8_length(arr), contract.max_field_chars)) & ~numeric
            empty_counts[name] = int(empty.sum())
            marks.mark(empty, f"{name} is empty")
            marks.mark(too_long, f"{name} is longer than {contract.max_field_chars} characters")
            marks.mark(~numeric, f"{name} is not a number: {{v!r}}", strings)
            cleaned = pc.if_else(mask(numeric), arr, pa.scalar(None, pa.string()))
            arr = pc.cast(cleaned, pa.float64())
            values_of = floats(arr)
        else:
            values_of = floats(arr)
            nulls = bools(arr.is_null()) if arr.null_count else np.zeros(n, dtype=bool)
            empty_counts[name] = int(nulls.sum())
            marks.mark(nulls, f"{name} is empty")
        typed[name] = arr
        values[name] = values_of

    # the contract's numeric rules (finite, range, allowed values, float32): one home, shared with every path
    verdicts = check_columns(values, contract, n, required=[], nan_is_missing=False)
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
