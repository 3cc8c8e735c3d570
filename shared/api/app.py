"""The FastAPI application: routes decode, call the scorer, encode; errors become statuses here."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shared.api.schemas import ErrorResponse, HealthResponse, ModelInfo, ScoreRequest, ScoreResponse, ScoreResult
from shared.errors import FraudOpsError, ModelIntegrityError, ModelNotAvailableError
from shared.scorer import Scorer, get_scorer
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)


def settings_dependency() -> Settings:
    return get_settings()


def scorer_dependency() -> Scorer:
    return get_scorer(get_settings())


SettingsDep = Annotated[Settings, Depends(settings_dependency)]
ScorerDep = Annotated[Scorer, Depends(scorer_dependency)]

UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": "No model is published yet"},
}


class BatchTooLargeError(FraudOpsError):
    """More transactions than ``SCORE_MAX_BATCH``."""


def create_app() -> FastAPI:
    """Build the app; nothing here touches storage or the environment."""
    app = FastAPI(
        title="Fraud scoring API",
        version="1.0.0",
        description="Scores card transactions with the champion ONNX model.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the offending input, which cannot be encoded when it is NaN/Infinity.
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(ModelNotAvailableError)
    async def _no_model(_: Request, exc: ModelNotAvailableError) -> JSONResponse:
        return JSONResponse({"detail": exc.reason}, status_code=503)

    @app.exception_handler(ModelIntegrityError)
    async def _bad_model(_: Request, exc: ModelIntegrityError) -> JSONResponse:
        return JSONResponse({"detail": exc.reason}, status_code=503)

    @app.exception_handler(BatchTooLargeError)
    async def _too_large(_: Request, exc: BatchTooLargeError) -> JSONResponse:
        return JSONResponse({"detail": exc.reason}, status_code=413)

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

    @app.post("/api/score", response_model=ScoreResponse,
              responses={**UNAVAILABLE, 413: {"model": ErrorResponse, "description": "Batch too large"}})
    def score(body: ScoreRequest, scorer: ScorerDep, settings: SettingsDep) -> ScoreResponse:
        n = len(body.transactions)
        if n > settings.score_max_batch:
            raise BatchTooLargeError(f"batch of {n} transactions is over the limit of {settings.score_max_batch}")
        model = scorer.current()
        x = np.array(
            [[getattr(t, f) for f in model.feature_names] for t in body.transactions], dtype=np.float32,
        )
        probs = model.predict_proba(x)
        results = [
            ScoreResult(transaction_id=getattr(t, "transaction_id", None), fraud_probability=float(p),
                        is_fraud=bool(p >= model.threshold))
            for t, p in zip(body.transactions, probs, strict=True)
        ]
        log.info("scored %d transactions with %s", n, model.version)
        return ScoreResponse(model_version=model.version, threshold=model.threshold, results=results)

    return app
