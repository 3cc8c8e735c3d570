"""The one error map: which domain error is which HTTP status, and the handlers that answer with a reason."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.decode import BatchTooLargeError, InvalidRequestError
from api.schemas import ErrorResponse
from shared.domain.errors import (
    ConcurrentUpdateError,
    ConfigurationError,
    FraudOpsError,
    InvalidModelVersionError,
    ModelDeprecatedError,
    ModelIntegrityError,
    ModelNotAvailableError,
    NoCustomerColumnError,
    NotAllowedError,
    NotSignedInError,
    RegistryError,
    RetryLaterError,
)
from shared.scoring.explain import CannotExplainError

log = logging.getLogger(__name__)


class VersionNotFoundError(FraudOpsError):
    """A pinned model version that does not exist (404)."""


class UnsupportedMediaError(FraudOpsError):
    """A body that is neither JSON nor CSV (415)."""


class DatasetNotFoundError(FraudOpsError):
    """A route naming a dataset this deployment does not score (404)."""


STATUS: dict[type[FraudOpsError], int] = {
    NotSignedInError: 401,
    NotAllowedError: 403,
    VersionNotFoundError: 404,
    DatasetNotFoundError: 404,
    CannotExplainError: 409,
    BatchTooLargeError: 413,
    UnsupportedMediaError: 415,
    ModelNotAvailableError: 503,
    ModelIntegrityError: 503,
    RetryLaterError: 503,
    ConfigurationError: 503,
    NoCustomerColumnError: 400,
    ConcurrentUpdateError: 409,
    InvalidModelVersionError: 422,
    ModelDeprecatedError: 410,
    RegistryError: 409,
}


@cache
def _federated() -> dict[type[FraudOpsError], int]:
    """The federated protocol's errors: imported only once one is raised, so the scoring app, which serves no
    federated route, never loads the protocol (nor the bank package it shares)."""
    from shared.federated.auth import AuthError
    from shared.federated.banks import BankIdError
    from shared.federated.params import BadParametersError
    from shared.federated.rounds import RoundNotFoundError, RoundStateError

    return {AuthError: 401, RoundNotFoundError: 404, RoundStateError: 409, BadParametersError: 422, BankIdError: 422}


def status_of(exc: FraudOpsError) -> int:
    """The HTTP status of a domain error (``STATUS``, and the federated ones; 500 for one it does not name)."""
    table: dict[type[FraudOpsError], int] = (
        {**_federated(), **STATUS} if type(exc).__module__.startswith("shared.federated") else STATUS
    )
    return next((code for kind, code in table.items() if isinstance(exc, kind)), 500)


def documented(description: str) -> dict[str, Any]:
    """An OpenAPI response entry for an error answered with ``{"detail": reason}``."""
    return {"model": ErrorResponse, "description": description}


def install(app: FastAPI) -> None:
    """Answer every refusal with a reason: validation (422), bad bodies (400/422), domain errors (by ``STATUS``)."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the offending input, which cannot be encoded when it is NaN/Infinity.
        errors = [{"row": None, "field": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        if any(e["field"] == "header.x-fl-wire" for e in errors):  # a bank client older than the wire format
            from fraudops_bank.wire import UPGRADE

            return JSONResponse({"detail": UPGRADE, "errors": errors}, status_code=422)
        return JSONResponse({"detail": "invalid request", "errors": errors}, status_code=422)

    @app.exception_handler(InvalidRequestError)
    async def _bad_request(_: Request, exc: InvalidRequestError) -> JSONResponse:
        body: dict[str, Any] = {"detail": exc.reason}
        if exc.status == 422:
            body["errors"] = exc.errors
        return JSONResponse(body, status_code=exc.status)

    @app.exception_handler(FraudOpsError)
    async def _domain(_: Request, exc: FraudOpsError) -> JSONResponse:
        status = status_of(exc)
        if status == 500:
            log.error("unmapped domain error: %s", exc.reason)
        return JSONResponse({"detail": exc.reason}, status_code=status)
