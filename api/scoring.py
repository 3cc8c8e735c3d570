"""The scoring routes: ``/api/health``, ``/api/model`` and ``/api/score`` (decode, call the scorer, encode).

Module-level routes on ``router``; their services come from the composition root through ``api.deps``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.body import read_body
from api.decode import Batch, InvalidRequestError, decode_csv, decode_json
from api.deps import ScorerDep, services_of
from api.errors import DatasetNotFoundError, UnsupportedMediaError, VersionNotFoundError, documented
from api.hot_route import HotRoute
from api.schemas import HealthResponse, ModelInfo, ScoreResponse, ValidationErrorResponse
from shared.adapters.model_store import VERSION_MAX, VERSION_PATTERN
from shared.domain.config import ScoringConfig
from shared.domain.contract import DatasetContract
from shared.domain.contracts import get_contract
from shared.domain.errors import FraudOpsError, ModelNotAvailableError
from shared.domain.telemetry import count_scores, span
from shared.scoring.records import Scored
from shared.scoring.scorer import LoadedModel, Scorer

if TYPE_CHECKING:
    from collections.abc import Callable

    from shared.scoring.online import OnlineFeatures

log = logging.getLogger(__name__)

UNAVAILABLE: dict[int | str, dict[str, Any]] = {503: documented("No model is published yet, or it cannot be loaded")}
SCORE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "Scores (JSON, or CSV for a CSV request)",
    },
    400: documented("The body is not JSON or CSV"),
    404: documented("The pinned model version does not exist"),
    409: documented("The model cannot explain its scores"),
    410: documented("The pinned model version is deprecated"),
    413: documented("Batch or body too large"),
    415: documented("Content type is neither application/json nor text/csv"),
    422: {"model": ValidationErrorResponse, "description": "Transactions that break the contract, by row and field"},
    **UNAVAILABLE,
}


SCORE_BODY = {  # the bodies' schemas are the deployment's dataset contract's (``api.openapi``)
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ScoreRequest"}},
            "text/csv": {"schema": {"$ref": "#/components/schemas/ScoreCsv"}},
        },
    },
}
ExplainQuery = Annotated[bool, Query(description="add the top contributing features (TreeSHAP)")]
VersionHeader = Annotated[
    str, Header(pattern=VERSION_PATTERN, max_length=VERSION_MAX, description="pin a model version (shadow tests)")
]
INLINE_ROWS = 32  # batches up to this size are scored on the event loop (tens of microseconds)


def _model_for(scorer: Scorer, version: str | None) -> LoadedModel:
    if version is None:
        return scorer.current()
    try:
        return scorer.pinned(version)
    except ModelNotAvailableError:
        raise VersionNotFoundError(f"model version {version} does not exist") from None


def _score(batch: Batch, scorer: Scorer, explain: bool) -> tuple[LoadedModel, Any, list[dict[str, Any]] | None]:
    model = _model_for(scorer, batch.model_version)
    x = model.encode(batch.x, batch.categories)  # categorical columns in the model's own codes
    probs = model.predict_proba(x)
    explanations = None
    if explain:
        explanations = scorer.explainers.get(model.version, list(model.feature_names)).explain(x)
    return model, probs, explanations


def _json_response(batch: Batch, model: LoadedModel, probs: Any, explanations: list[dict[str, Any]] | None) -> Response:
    import orjson

    flags = (probs >= model.threshold).tolist()
    results = [
        {"transaction_id": tid, "fraud_probability": p, "is_fraud": f, "model_version": model.version}
        for tid, p, f in zip(batch.ids, probs.tolist(), flags, strict=True)
    ]
    if batch.behaviour is not None:
        for result, status in zip(results, batch.behaviour, strict=True):
            result["behaviour"] = status
    if explanations is not None:
        for result, explanation in zip(results, explanations, strict=True):
            result["explanation"] = explanation
    body = {"model_version": model.version, "threshold": model.threshold, "results": results}
    return Response(orjson.dumps(body), media_type="application/json")


def _csv_response(batch: Batch, model: LoadedModel, probs: Any) -> Response:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    columns = {
        "transaction_id": pa.array(batch.ids, pa.string()),
        "fraud_probability": pa.array(probs),
        "is_fraud": pa.array(probs >= model.threshold),
        "model_version": pa.array([model.version] * len(batch)),
    }
    if batch.behaviour is not None:
        columns["behaviour"] = pa.array(batch.behaviour, pa.string())
    table = pa.table(columns)
    out = pa.BufferOutputStream()
    pacsv.write_csv(table, out, pacsv.WriteOptions(quoting_style="needed"))
    return Response(out.getvalue().to_pybytes(), media_type="text/csv")


def with_behaviour(
    batch: Batch, contract: DatasetContract, online: OnlineFeatures, pseudonymise: Callable[[str], str | None]
) -> Batch:
    """The batch with its behavioural features after its own (the model's input) and each row's status; 422
    naming the rows without a transaction id or an event time (without them a retry would be counted twice,
    or placed nowhere)."""
    import numpy as np

    from shared.scoring.online import events_of, recorded_history

    columns, tid = batch.columns or {}, contract.transaction_id
    time = contract.time_column.name if contract.time_column else None
    times = columns.get(time) if time else None
    errors = [
        {"row": i, "field": name, "msg": f"{name} is needed to compute behavioural features"}
        for i in range(len(batch))
        for name, missing in (
            (tid or "transaction id", batch.ids[i] is None),
            (time or "event time", times is None or times[i] != times[i]),
        )
        if missing
    ]
    if errors:
        raise InvalidRequestError(
            f"{len({e['row'] for e in errors})} transactions lack what behavioural features need (an id and an "
            "event time for each)",
            errors,
        )
    assert times is not None
    events = events_of(contract, columns, batch.ids, times, pseudonymise)
    served = online.serve(events)
    x = np.empty((len(batch), batch.x.shape[1] + served.vectors.shape[1]), dtype=np.float32)
    x[:, : batch.x.shape[1]] = batch.x
    x[:, batch.x.shape[1] :] = served.vectors
    texts, numbers = recorded_history(contract, events)
    return replace(batch, x=x, behaviour=served.status, history_texts=texts, history_numbers=numbers)


router = APIRouter()
hot = APIRouter(route_class=HotRoute)  # the hot path: no dependency to resolve, no thread hop when the model is fresh
HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {503: {"model": HealthResponse}}


def _health(scorer: Scorer) -> Response:
    try:
        model = scorer.fresh() or scorer.current()
    except FraudOpsError as exc:
        body = HealthResponse(status="unavailable", model_loaded=False, reason=exc.reason)
        return Response(body.model_dump_json(), status_code=503, media_type="application/json")
    return Response(
        HealthResponse(status="ok", model_loaded=True, model_version=model.version).model_dump_json(),
        media_type="application/json",
    )


@hot.get("/api/health", response_model=HealthResponse, responses=HEALTH_RESPONSES)
async def health(request: Request) -> Response:
    scorer = services_of(request).scorer
    if scorer.fresh():
        return _health(scorer)  # no I/O: answered on the event loop
    return await run_in_threadpool(_health, scorer)  # checks the champion pointer (I/O): off the loop


def _this_dataset(dataset: str, config: ScoringConfig) -> DatasetContract:
    """The deployment's contract when ``dataset`` names it; 404 naming what this deployment scores otherwise."""
    if dataset != config.dataset_name:
        from shared.domain.contracts import known_contracts

        known = ", ".join(sorted(known_contracts()))
        raise DatasetNotFoundError(
            f"this deployment scores dataset {config.dataset_name!r}, not {dataset!r} (contracts known here: {known})"
        )
    return get_contract(dataset)


@router.get("/api/datasets/{dataset}/contract", responses={404: documented("Not this deployment's dataset")})
def dataset_contract(dataset: str, request: Request) -> dict[str, Any]:
    """The dataset's contract: its roles, costs, and each column's type, rules and description."""
    from shared.domain.contract_file import catalogue

    return catalogue(_this_dataset(dataset, services_of(request).scoring))


@router.post(
    "/api/datasets/{dataset}/score",
    response_model=ScoreResponse,
    responses={**SCORE_RESPONSES, 404: documented("Not this deployment's dataset, or no such model version")},
    openapi_extra=SCORE_BODY,
)
async def score_dataset(
    dataset: str,
    request: Request,
    explain: ExplainQuery = False,
    x_model_version: VersionHeader = "",
) -> Response:
    """``/api/score`` with the dataset named: a client sending another dataset's transactions is told so (404)."""
    _this_dataset(dataset, services_of(request).scoring)
    return await score(request, explain, x_model_version)


@router.get("/api/model", response_model=ModelInfo, responses=UNAVAILABLE)
def model_info(scorer: ScorerDep) -> ModelInfo:
    return ModelInfo.model_validate(scorer.current().manifest.to_dict())


@hot.post("/api/score", response_model=ScoreResponse, responses=SCORE_RESPONSES, openapi_extra=SCORE_BODY)
async def score(
    request: Request,
    explain: ExplainQuery = False,
    x_model_version: VersionHeader = "",
) -> Response:
    start = time.perf_counter()
    services = services_of(request)
    scorer, config, recorder = services.scorer, services.scoring, services.recorder
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("application/json", "text/csv"):
        raise UnsupportedMediaError(
            f"content type {media or '(none)'!r} is not supported; send application/json or text/csv"
        )
    with span("score.request", media=media) as request_span:
        body = await read_body(request, config.score_max_body_bytes)
        contract = get_contract(config.dataset_name)
        decode = decode_json if media == "application/json" else decode_csv
        with span("score.decode", bytes=len(body)):
            batch = decode(body, contract, max_batch=config.score_max_batch)
        customers = batch.customers
        if customers is not None:  # pseudonymised here, at the edge: the clear id goes no further
            customers = services.pseudonymise.many(customers)
        version = batch.model_version or x_model_version or None
        batch = replace(batch, model_version=version, customers=customers)
        online = services.behaviour
        if online is not None:  # reads and updates the online store (I/O): off the event loop
            with span("score.behaviour", rows=len(batch)):
                batch = await run_in_threadpool(with_behaviour, batch, contract, online, services.pseudonymise)
        wants_explanation = explain or batch.explain
        with span("score.model", rows=len(batch)):
            if len(batch) <= INLINE_ROWS and not wants_explanation and batch.model_version is None and scorer.fresh():
                model, probs, explanations = _score(batch, scorer, False)  # microseconds, no I/O: no thread hop
            else:  # may fetch a model or check the pointer (I/O), or compute for long: off the event loop
                model, probs, explanations = await run_in_threadpool(_score, batch, scorer, wants_explanation)
        request_span.set_attribute("model_version", model.version)
        with span("score.encode"):
            if media == "text/csv":
                response = _csv_response(batch, model, probs)
            else:
                response = _json_response(batch, model, probs, explanations)
    count_scores(probs, model.threshold, source="http", model_version=model.version)
    recorder.record(
        Scored(
            x=batch.x,
            probabilities=probs,
            transaction_ids=batch.ids,
            customer_ids=batch.customers,
            times=batch.times,
            categories=batch.categories,
            behaviour=batch.behaviour,
            history_texts=batch.history_texts,
            history_numbers=batch.history_numbers,
            model_version=model.version,
            threshold=model.threshold,
            request_id=request.scope.get("state", {}).get("request_id", ""),
            latency_ms=(time.perf_counter() - start) * 1000,
        )
    )
    log.debug("scored %d transactions with %s", len(batch), model.version)
    return response
