"""The one rule for the bank's table, whichever engine reads it: which tables and rows the client refuses, and why.

A table is used only if it has every feature column and the label, all of numeric types, at
least one row, every feature finite at float32 precision (no null, NaN or infinity, nothing
beyond float32's range) and every label 0 or 1. Each engine counts the offending rows its own
way (NumPy over arrays, Spark in one aggregation) into a ``Survey``; ``check`` words the refusal,
naming each column and how many rows break it, so both engines refuse the same table with the
same sentence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fraudops_bank.contract import Columns
from fraudops_bank.errors import TableRefusedError


@dataclass(frozen=True)
class Survey:
    """What an engine counted in a table: its rows, and per column the rows that break the rule."""

    rows: int
    bad_rows: Mapping[str, int] = field(default_factory=dict)  # column -> offending rows (zero counts allowed)


def check_columns(columns: Columns, types: Mapping[str, str], numeric: Iterable[str]) -> None:
    """``TableRefusedError`` when one of ``columns`` is missing from the table or not a number.

    ``types`` maps each column of the table to its type's name; ``numeric`` names the columns whose
    type is a number (integer, floating point or decimal).
    """
    missing = [c for c in columns.required if c not in types]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise TableRefusedError(
            f"the table lacks column{'s' if len(missing) > 1 else ''} {shown} "
            f"(the experiment's contract needs {columns.describe()}, named exactly so)"
        )
    numbers = set(numeric)
    wrong = [f"{c} is {types[c]}" for c in columns.required if c not in numbers]
    if wrong:
        raise TableRefusedError(f"columns must be numbers, but {'; '.join(wrong)}")


def check(survey: Survey, columns: Columns) -> None:
    """``TableRefusedError`` naming every column with offending rows and their count; nothing when the table is fine."""
    if survey.rows == 0:
        raise TableRefusedError("the table has no rows: there is nothing to learn from")
    problems = []
    for column in columns.required:
        count = int(survey.bad_rows.get(column, 0))
        if count:
            what = "a value that is not 0 or 1" if column == columns.label else "a missing, NaN or infinite value"
            problems.append(f"{column}: {count} row{'s' if count > 1 else ''} with {what}")
    if problems:
        raise TableRefusedError(
            f"rows of the table ({survey.rows} in all) break the rule (features finite at float32 precision, "
            f"{columns.label} 0 or 1): {'; '.join(problems)}. "
            "Fix or drop those rows and run the client again"
        )
