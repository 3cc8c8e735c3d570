"""The FastAPI application: routes decode, call the scorer, encode; errors become statuses here."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from api.decode import Batch, BatchTooLargeError, InvalidRequestError, decode_csv, decode_json
from api.schemas import (
    ErrorResponse,
    HealthResponse,
    ModelInfo,
    ScoreRequest,
    ScoreResponse,
    ValidationErrorResponse,
)
from shared.domain.contract import get_contract
from shared.domain.errors import FraudOpsError, ModelIntegrityError, ModelNotAvailableError
from shared.domain.settings import Settings, get_settings
from shared.federated.auth import AuthError
from shared.federated.params import BadParametersError
from shared.federated.rounds import RoundNotFoundError, RoundStateError
from shared.scoring.explain import CannotExplainError
from shared.scoring.scorer import LoadedModel, Scorer, get_scorer

log = logging.getLogger(__name__)


async def settings_dependency() -> Settings:  # async: a cached getter needs no worker-thread hop
    return get_settings()


async def scorer_dependency() -> Scorer:
    return get_scorer(get_settings())


SettingsDep = Annotated[Settings, Depends(settings_dependency)]
ScorerDep = Annotated[Scorer, Depends(scorer_dependency)]


class VersionNotFoundError(FraudOpsError):
    """A pinned model version that does not exist (404)."""


class UnsupportedMediaError(FraudOpsError):
    """A body that is neither JSON nor CSV (415)."""


def _error(status: int, description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


UNAVAILABLE: dict[int | str, dict[str, Any]] = {503: _error(503, "No model is published yet, or it cannot be loaded")}
SCORE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "Scores (JSON, or CSV for a CSV request)",
    },
    400: _error(400, "The body is not JSON or CSV"),
    404: _error(404, "The pinned model version does not exist"),
    409: _error(409, "The model cannot explain its scores"),
    413: _error(413, "Batch or body too large"),
    415: _error(415, "Content type is neither application/json nor text/csv"),
    422: {"model": ValidationErrorResponse, "description": "Transactions that break the contract, by row and field"},
    **UNAVAILABLE,
}
SCORE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ScoreRequest"}},
            "text/csv": {
                "schema": {
                    "type": "string",
                    "description": "a header row naming the contract's columns "
                    "(every feature; Time, transaction_id, customer_id optional), then one "
                    "transaction per line",
                },
                "example": "transaction_id," + ",".join(f"V{i}" for i in range(1, 29)) + ",Amount\n"
                "t1," + ",".join(["0.1"] * 28) + ",149.62\n",
            },
        },
    },
}
INLINE_ROWS = 32  # batches up to this size are scored on the event loop (tens of microseconds)
STATUS = {
    AuthError: 401,
    RoundNotFoundError: 404,
    RoundStateError: 409,
    BadParametersError: 422,
    VersionNotFoundError: 404,
    CannotExplainError: 409,
    BatchTooLargeError: 413,
    UnsupportedMediaError: 415,
    ModelNotAvailableError: 503,
    ModelIntegrityError: 503,
}


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BatchTooLargeError(f"body of {declared} bytes is over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BatchTooLargeError(f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _model_for(scorer: Scorer, version: str | None) -> LoadedModel:
    if version is None:
        return scorer.current()
    try:
        return scorer.pinned(version)
    except ModelNotAvailableError:
        raise VersionNotFoundError(f"model version {version} does not exist") from None


def _score(batch: Batch, scorer: Scorer, explain: bool) -> tuple[LoadedModel, Any, list[dict[str, Any]] | None]:
    model = _model_for(scorer, batch.model_version)
    probs = model.predict_proba(batch.x)
    explanations = None
    if explain:
        explanations = scorer.explainers.get(model.version, list(model.feature_names)).explain(batch.x)
    return model, probs, explanations


def _json_response(batch: Batch, model: LoadedModel, probs: Any, explanations: list[dict[str, Any]] | None) -> Response:
    import orjson

    flags = (probs >= model.threshold).tolist()
    results = [
        {"transaction_id": tid, "fraud_probability": p, "is_fraud": f, "model_version": model.version}
        for tid, p, f in zip(batch.ids, probs.tolist(), flags, strict=True)
    ]
    if explanations is not None:
        for result, explanation in zip(results, explanations, strict=True):
            result["explanation"] = explanation
    body = {"model_version": model.version, "threshold": model.threshold, "results": results}
    return Response(orjson.dumps(body), media_type="application/json")


def _csv_response(batch: Batch, model: LoadedModel, probs: Any) -> Response:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.table(
        {
            "transaction_id": pa.array(batch.ids, pa.string()),
            "fraud_probability": pa.array(probs),
            "is_fraud": pa.array(probs >= model.threshold),
            "model_version": pa.array([model.version] * len(batch)),
        }
    )
    out = pa.BufferOutputStream()
    pacsv.write_csv(table, out, pacsv.WriteOptions(quoting_style="needed"))
    return Response(out.getvalue().to_pybytes(), media_type="text/csv")


def create_app() -> FastAPI:
    """Build the app; nothing here touches storage or the environment."""
    app = FastAPI(
        title="Fraud scoring API",
        version="1.1.0",
        description="Scores card transactions with the champion ONNX model.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the offending input, which cannot be encoded when it is NaN/Infinity.
        errors = [{"row": None, "field": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return JSONResponse({"detail": "invalid request", "errors": errors}, status_code=422)

    @app.exception_handler(InvalidRequestError)
    async def _bad_request(_: Request, exc: InvalidRequestError) -> JSONResponse:
        body: dict[str, Any] = {"detail": exc.reason}
        if exc.status == 422:
            body["errors"] = exc.errors
        return JSONResponse(body, status_code=exc.status)

    @app.exception_handler(FraudOpsError)
    async def _domain(_: Request, exc: FraudOpsError) -> JSONResponse:
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 500)
        if status == 500:
            log.error("unmapped domain error: %s", exc.reason)
        return JSONResponse({"detail": exc.reason}, status_code=status)

    health_responses: dict[int | str, dict[str, Any]] = {503: {"model": HealthResponse}}

    @app.get("/api/health", response_model=HealthResponse, responses=health_responses)
    def health(scorer: ScorerDep) -> HealthResponse | JSONResponse:
        try:
            model = scorer.current()
        except FraudOpsError as exc:
            body = HealthResponse(status="unavailable", model_loaded=False, reason=exc.reason)
            return JSONResponse(body.model_dump(), status_code=503)
        return HealthResponse(status="ok", model_loaded=True, model_version=model.version)

    @app.get("/api/model", response_model=ModelInfo, responses=UNAVAILABLE)
    def model_info(scorer: ScorerDep) -> ModelInfo:
        return ModelInfo.model_validate(scorer.current().manifest)

    @app.post("/api/score", response_model=ScoreResponse, responses=SCORE_RESPONSES, openapi_extra=SCORE_BODY)
    async def score(
        request: Request,
        scorer: ScorerDep,
        settings: SettingsDep,
        explain: Annotated[bool, Query(description="add the top contributing features (TreeSHAP)")] = False,
        x_model_version: Annotated[str | None, Header(description="pin a model version (shadow tests)")] = None,
    ) -> Response:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in ("application/json", "text/csv"):
            raise UnsupportedMediaError(
                f"content type {media or '(none)'!r} is not supported; send application/json or text/csv"
            )
        body = await read_body(request, settings.score_max_body_bytes)
        contract = get_contract(settings.dataset_name)
        decode = decode_json if media == "application/json" else decode_csv
        batch = decode(body, contract, max_batch=settings.score_max_batch)
        if x_model_version and not batch.model_version:
            batch = Batch(batch.x, batch.ids, x_model_version, batch.explain)
        wants_explanation = explain or batch.explain
        if len(batch) <= INLINE_ROWS and not wants_explanation and batch.model_version is None and scorer.fresh():
            model, probs, explanations = _score(batch, scorer, False)  # microseconds, no I/O: no thread hop
        else:  # may fetch a model or check the pointer (I/O), or compute for long: off the event loop
            model, probs, explanations = await run_in_threadpool(_score, batch, scorer, wants_explanation)
        log.debug("scored %d transactions with %s", len(batch), model.version)
        if media == "text/csv":
            return _csv_response(batch, model, probs)
        return _json_response(batch, model, probs, explanations)

    from api.federated import router

    app.include_router(router())

    def openapi() -> dict[str, Any]:
        """FastAPI's document plus the JSON body schema of ``/api/score`` (the route reads the raw body)."""
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schema = ScoreRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            components = doc.setdefault("components", {}).setdefault("schemas", {})
            components.update(schema.pop("$defs", {}))
            components["ScoreRequest"] = schema
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
