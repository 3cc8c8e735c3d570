"""The OpenAPI document's dataset part: the score bodies' schemas, generated from the dataset's contract.

``/api/score`` reads its raw body (``api.decode``), so FastAPI cannot see its schema; the document gets it
from here: the JSON body (``api.schemas.score_request_model``) and a CSV body described by a pattern every
body it admits is accepted by (narrower than what the server parses, never wider) and an example.
"""

from __future__ import annotations

import math
import re
from typing import Any

from shared.domain.contract import Column, ColumnType, DatasetContract

CSV_ROWS = 100  # the pattern admits up to this many lines (the server takes SCORE_MAX_BATCH)
DIGITS = 6


def _number(col: Column) -> str:
    """A pattern of numbers inside ``col``'s rules (a narrower set than they allow, never a wider one)."""
    if col.allowed:
        return "(" + "|".join(re.escape(f"{v:g}") for v in col.allowed) + ")"
    lo = -math.inf if col.minimum is None else col.minimum
    hi = math.inf if col.maximum is None else col.maximum
    if lo > 0 or hi < 0:  # a range away from zero: its lower bound, written out, is always inside it
        return re.escape(f"{lo:g}" if lo > 0 else f"{hi:g}")
    top = 10 ** min(DIGITS, int(math.log10(min(hi, 10.0**DIGITS)))) if hi >= 1 else 0  # all below ``top`` are <= hi
    fraction = "" if col.type is ColumnType.INTEGER else rf"(\.[0-9]{{1,{DIGITS}}})?"
    if top <= 1:  # a range within (-1, 1] around zero: a whole part of 0, and the fraction when it fits
        return "0" + (fraction if top == 1 else "")
    digits = len(str(top)) - 1
    sign = "-?" if lo <= -top else ""
    return f"{sign}[0-9]{{1,{digits}}}{fraction}"


PLAIN = re.compile(r"[A-Za-z0-9_./-]([A-Za-z0-9_./ -]*[A-Za-z0-9_./-])?")  # no quoting needed in a CSV field


def _plain_categories(col: Column) -> list[str]:
    return [c for c in col.categories or () if PLAIN.fullmatch(c)]


def field_pattern(col: Column, max_chars: int) -> str:
    """The pattern of one CSV field of ``col``."""
    if col.type in (ColumnType.FLOAT, ColumnType.INTEGER):
        text = _number(col)
    elif col.type is ColumnType.BOOLEAN:
        text = "(true|false)"
    elif col.type is ColumnType.CATEGORICAL and col.categories:
        text = "(" + "|".join(re.escape(c) for c in _plain_categories(col)) + ")"
    else:
        text = f"[A-Za-z][A-Za-z0-9_]{{0,{max(0, min(col.max_chars or max_chars, 16) - 1)}}}"
    return f"({text})?" if col.nullable else text


def csv_pattern(contract: DatasetContract, max_rows: int = CSV_ROWS) -> str:
    """The features' header in contract order, then 1 to ``max_rows`` lines of fields inside their rules."""
    cols = [contract.column(n) for n in contract.feature_names]
    row = ",".join(field_pattern(c, contract.max_field_chars) for c in cols)
    return f"^{','.join(contract.feature_names)}\n{row}(\n{row}){{0,{max_rows - 1}}}\n?$"


def example_value(col: Column) -> str:
    """A value of ``col`` its rules accept (for the documented examples)."""
    if col.allowed:
        return f"{col.allowed[0]:g}"
    if col.type is ColumnType.BOOLEAN:
        return "true"
    if col.type is ColumnType.CATEGORICAL:
        if col.categories is None:
            return "A1"
        plain = _plain_categories(col)
        return plain[0] if plain else ""
    lo = -math.inf if col.minimum is None else col.minimum
    hi = math.inf if col.maximum is None else col.maximum
    value = min(max(1.0 if col.type is ColumnType.INTEGER else 0.5, lo), hi)
    return f"{value:g}"


def csv_example(contract: DatasetContract) -> str:
    cols = [contract.column(n) for n in contract.feature_names]
    return ",".join(contract.feature_names) + "\n" + ",".join(example_value(c) for c in cols) + "\n"


def score_components(contract: DatasetContract) -> dict[str, Any]:
    """The schemas ``/api/score`` refers to: ``ScoreRequest`` (JSON) and ``ScoreCsv`` (CSV), with their parts."""
    from api.schemas import score_request_model

    schema = score_request_model(contract).model_json_schema(ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = schema.pop("$defs", {})
    components["ScoreRequest"] = schema
    optional = [c.name for c in contract.columns if c.role != "feature" and c.role != "label"]
    components["ScoreCsv"] = {
        "type": "string",
        "pattern": csv_pattern(contract),
        "description": f"a header row naming dataset {contract.name}'s columns, then one transaction per line. "
        f"The server parses more than the pattern says (any column order; {', '.join(optional) or 'no other column'} "
        "optional; up to SCORE_MAX_BATCH rows; numbers in any notation within the contract's ranges); the "
        "pattern is the part every client can rely on",
        "example": csv_example(contract),
    }
    return components
