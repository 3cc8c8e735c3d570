"""Request and response bodies. The transaction schema is generated from the dataset contract."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.contract import CREDITCARD, DatasetContract


def transaction_model(contract: DatasetContract) -> type[BaseModel]:
    """One transaction as the scoring API takes it: every feature required, Time and ids optional."""
    fields: dict[str, Any] = {}
    for col in contract.columns:
        if col.role == "label":
            continue
        if col.dtype == "string":
            fields[col.name] = (str | None, Field(default=None, max_length=contract.max_field_chars))
            continue
        constraints: dict[str, Any] = {}
        if col.minimum is not None:
            constraints["ge"] = col.minimum
        if col.maximum is not None:
            constraints["le"] = col.maximum
        required = col.role == "feature"
        fields[col.name] = (float if required else float | None,
                            Field(... if required else None, **constraints))
    return create_model(
        "TransactionIn", __config__=ConfigDict(extra="forbid", allow_inf_nan=False), **fields,
    )


TransactionIn = transaction_model(CREDITCARD)


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transactions: list[TransactionIn] = Field(min_length=1)  # type: ignore[valid-type]


class ScoreResult(BaseModel):
    transaction_id: str | None
    fraud_probability: float
    is_fraud: bool


class ScoreResponse(BaseModel):
    model_version: str
    threshold: float
    results: list[ScoreResult]


class HealthResponse(BaseModel):
    status: str
    model_loaded: bool
    model_version: str | None = None
    reason: str | None = None


class ModelInfo(BaseModel):
    """The champion's manifest (the fields every manifest has, plus the rest as published)."""

    model_config = ConfigDict(extra="allow")
    version: str
    created_at: str
    threshold: float
    sha256: str
    feature_names: list[str]
    metrics: dict[str, float | int | None]
    dataset_version: str | None = None


class ErrorResponse(BaseModel):
    detail: str
