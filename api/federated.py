"""Federated-learning routes: the global model, signed updates from banks, round status, admin aggregation."""

from __future__ import annotations

import hmac
import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response

from api.deps import SettingsDep
from shared.adapters.storage import get_blob_store
from shared.domain.settings import Settings
from shared.federated.params import BadParametersError
from shared.federated.rounds import RoundConfig, Rounds
from shared.federated.status import RoundState, RoundStatus


def rounds_for(settings: Settings) -> Rounds:
    store = get_blob_store(settings)

    def publish(n: int, params: dict[str, Any], scaler: dict[str, Any], state: RoundState) -> None:
        from shared.federated.export import publish_round
        from training.gate import judge

        publish_round(
            store,
            model_name=settings.model_name,
            dataset=settings.dataset_name,
            experiment=settings.fl_experiment,
            round_number=n,
            params=params,
            scaler=scaler,
            state=state,
            judge=lambda onnx_bytes: judge(store, settings, onnx_bytes),
        )

    return Rounds(
        store,
        settings.fl_experiment,
        RoundConfig(
            min_clients=settings.fl_min_clients,
            deadline_seconds=settings.fl_round_deadline_seconds,
            aggregator=settings.fl_aggregator,
            trim_beta=settings.fl_trim_beta,
            clip_bound=settings.fl_clip_bound,
            noise_std=settings.fl_noise_std,
            max_weight_share=settings.fl_max_weight_share,
            seed=settings.train_seed,
        ),
        on_close=publish,
    )


def router() -> APIRouter:
    from api.schemas import ErrorResponse, ValidationErrorResponse

    r = APIRouter(prefix="/api/federated", tags=["federated"])

    def refused(*codes: int) -> dict[int | str, dict[str, Any]]:
        out: dict[int | str, dict[str, Any]] = {
            c: {"model": ErrorResponse, "description": "Refused; the reason is in 'detail'"} for c in codes
        }
        out[422] = {"model": ValidationErrorResponse, "description": "Invalid parameters or headers"}
        return out

    @r.get(
        "/model",
        responses={
            **refused(404),
            200: {
                "content": {"application/octet-stream": {}},
                "description": ".npz of float32 arrays; round and experiment in headers",
            },
        },
    )
    def model(settings: SettingsDep) -> Response:
        rounds = rounds_for(settings)
        n = rounds.current()
        from shared.federated.params import to_npz

        state = rounds.state(n)
        if state.status == RoundStatus.CLOSED:
            n += 1
        arrays = rounds.global_model(n)
        scaler = rounds.scaler()
        if scaler is not None:
            arrays.update({f"scaler_{k}": v for k, v in scaler.items()})
        body = to_npz(arrays)
        meta = {
            "experiment": settings.fl_experiment,
            "round": n,
            "kind": "statistics" if n == 0 else "model",
            "aggregator": state.aggregator,
        }
        return Response(
            body,
            media_type="application/octet-stream",
            headers={"X-FL-Round": str(n), "X-FL-Metadata": json.dumps(meta)},
        )

    @r.get("/rounds/{round_number}", responses=refused(404))
    def round_status(round_number: int, settings: SettingsDep) -> dict[str, Any]:
        return rounds_for(settings).state(round_number).public()

    @r.post("/rounds/{round_number}/updates", status_code=202, responses=refused(401, 404, 409, 413))
    async def post_update(
        round_number: int,
        request: Request,
        settings: SettingsDep,
        x_fl_examples: Annotated[int | None, Header(description="examples the update was trained on")] = None,
        x_fl_metrics: Annotated[str, Header(description="JSON object of local metrics")] = "{}",
    ) -> JSONResponse:
        from fastapi.concurrency import run_in_threadpool

        from api.body import read_body
        from shared.federated.auth import get_keys, verify

        body = await read_body(request, settings.fl_max_body_bytes)
        headers = {k.lower(): v for k, v in request.headers.items()}
        store = get_blob_store(settings)
        bank = await run_in_threadpool(
            verify, headers, "POST", request.url.path, body, keys=get_keys(settings), store=store, now=time.time()
        )
        if x_fl_examples is None:
            raise BadParametersError("X-FL-Examples (the number of examples behind the update) is required")
        try:
            metrics = json.loads(x_fl_metrics)
            assert isinstance(metrics, dict) and all(isinstance(v, int | float) for v in metrics.values())
        except (ValueError, AssertionError):
            raise BadParametersError("X-FL-Metrics must be a JSON object of numbers") from None
        state = await run_in_threadpool(rounds_for(settings).submit, round_number, bank, body, x_fl_examples, metrics)
        return JSONResponse(state.public(), status_code=202)

    @r.post("/rounds/{round_number}/aggregate", responses=refused(401, 404))
    def close_round(
        round_number: int, settings: SettingsDep, x_fl_admin_key: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        from shared.federated.auth import AuthError

        if (
            not settings.fl_admin_key
            or not x_fl_admin_key
            or not hmac.compare_digest(settings.fl_admin_key.encode(), x_fl_admin_key.encode())
        ):
            raise AuthError("the admin key is missing or wrong")
        return rounds_for(settings).aggregate(round_number, force=True).public()

    return r
