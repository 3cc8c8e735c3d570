"""Request and response bodies. The transaction schema is generated from the deployment's dataset contract."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.adapters.model_store import VERSION_MAX, VERSION_PATTERN
from shared.domain.contract import DatasetContract


@lru_cache(maxsize=8)
def score_request_model(contract: DatasetContract) -> type[BaseModel]:
    """The JSON body of ``POST /api/score`` for ``contract``'s dataset (the route decodes it with a vectorised
    reader; this is its schema, in the OpenAPI document, built when the document is first asked for)."""
    from shared.domain.transaction_schema import transaction_model

    return create_model(
        "ScoreRequest",
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"Transactions of dataset {contract.name} to score.",
        transactions=(list[transaction_model(contract)], Field(min_length=1)),  # type: ignore[misc,arg-type]
        model_version=(
            str | None,
            Field(
                default=None,
                pattern=VERSION_PATTERN,
                max_length=VERSION_MAX,
                description="score with this version instead of the champion",
            ),
        ),
        explain=(bool, Field(default=False, description="add the top contributing features per transaction")),
    )


class Contribution(BaseModel):
    feature: str
    value: float | None = Field(description="the value the model was given; null when it was missing")
    contribution: float = Field(description="signed TreeSHAP contribution to the raw score (log-odds)")


class Explanation(BaseModel):
    base_value: float = Field(description="the model's expected raw score")
    raw_score: float = Field(description="base_value plus every feature's contribution; sigmoid gives the probability")
    contributions: list[Contribution]


class ScoreResult(BaseModel):
    transaction_id: str | None
    fraud_probability: float
    is_fraud: bool
    model_version: str
    explanation: Explanation | None = None
    behaviour: Literal["ok", "late", "future", "unavailable"] | None = Field(
        default=None,
        description="For a dataset with behavioural features: ok; late (the transaction arrived more than the "
        "contract's lateness after a later one of its card or terminal: not placed, those features missing); "
        "future (its event time is more than a day ahead of the server's clock: not placed, features missing); "
        "unavailable (the online store could not be reached: every behavioural feature missing)",
    )


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


class FieldError(BaseModel):
    row: int | None = Field(description="index of the transaction in the batch (0-based), when the error is in one")
    field: str | None
    msg: str


class ValidationErrorResponse(BaseModel):
    detail: str
    errors: list[FieldError] = Field(default_factory=list)
