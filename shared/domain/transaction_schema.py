"""The pydantic model of one transaction, generated from the contract: the OpenAPI schema and the error wording.

The row rules themselves live in ``shared.domain.rows``; this model states the same bounds for
OpenAPI and words a refusal field by field (the API's 422 detail, the stream's dead-letter reason).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model

from shared.domain.contract import Column, ColumnType, DatasetContract
from shared.domain.rows import bounds


def _field(col: Column, max_chars: int) -> tuple[Any, dict[str, Any]]:
    """The Python type and the constraints of one column's value (strict: a number is not a bool or text)."""
    if col.type is ColumnType.FLOAT:
        lo, hi = bounds(col)
        return float, {"strict": True, "ge": lo, "le": hi}
    if col.type is ColumnType.INTEGER:  # whole numbers: the contract's bounds, when it has them
        whole = {"ge": int(col.minimum)} if col.minimum is not None else {}
        return int, {"strict": True, **whole, **({"le": int(col.maximum)} if col.maximum is not None else {})}
    if col.type is ColumnType.BOOLEAN:
        return bool, {"strict": True}
    if col.type is ColumnType.TIMESTAMP:
        return AwareDatetime, {}
    if col.type is ColumnType.CATEGORICAL and col.categories:
        return Literal[col.categories], {}
    return str, {"max_length": col.max_chars or max_chars}


def transaction_model(contract: DatasetContract) -> type[BaseModel]:
    """One transaction as the scoring API takes it: every feature required unless nullable, the others optional.

    Numbers are bounded by the contract's range and by float32, the model's input type; a closed
    categorical column takes one of its categories; text is bounded by its length.
    """
    fields: dict[str, Any] = {}
    for col in contract.columns:
        if col.role == "label":
            continue
        kind, constraints = _field(col, contract.max_field_chars)
        required = col.role == "feature" and not col.nullable
        fields[col.name] = (kind if required else kind | None, Field(... if required else None, **constraints))
    return create_model(
        "TransactionIn",
        __config__=ConfigDict(extra="forbid", allow_inf_nan=False),
        **fields,
    )
