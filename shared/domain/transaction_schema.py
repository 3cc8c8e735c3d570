"""The pydantic model of one transaction, generated from the contract: the OpenAPI schema and the error wording.

The row rules themselves live in ``shared.domain.rows``; this model states the same bounds for
OpenAPI and words a refusal field by field (the API's 422 detail, the stream's dead-letter reason).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.domain.contract import DatasetContract
from shared.domain.rows import bounds


def transaction_model(contract: DatasetContract) -> type[BaseModel]:
    """One transaction as the scoring API takes it: every feature required, Time and ids optional.

    Numbers are bounded by the contract's range and by float32, the model's input type.
    """
    fields: dict[str, Any] = {}
    for col in contract.columns:
        if col.role == "label":
            continue
        if col.dtype == "string":
            fields[col.name] = (str | None, Field(default=None, max_length=contract.max_field_chars))
            continue
        lo, hi = bounds(col)
        constraints: dict[str, Any] = {"strict": True, "ge": lo, "le": hi}  # strict: not a bool or numeric string
        required = col.role == "feature"
        fields[col.name] = (float if required else float | None, Field(... if required else None, **constraints))
    return create_model(
        "TransactionIn",
        __config__=ConfigDict(extra="forbid", allow_inf_nan=False),
        **fields,
    )
