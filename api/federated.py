"""Federated-learning routes: the global model, signed updates from banks, round status, admin aggregation."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response

from api.deps import SettingsDep, admin_actor_for
from shared.adapters.storage import get_blob_store
from shared.domain.settings import Settings
from shared.federated.auth import NONCE, SIGNATURE, TIMESTAMP
from shared.federated.banks import HEADER_PATTERN
from shared.federated.headers import EXAMPLES_PATTERN, METRICS_PATTERN
from shared.federated.rounds import RoundConfig, Rounds
from shared.federated.status import RoundState


def _anchored(pattern: str) -> str:
    return f"^{pattern}$"


def _track_round(settings: Settings, manifest: dict[str, Any], *, promoted: bool) -> None:
    """The federated model's run in MLflow, with its model card; MLflow is the record, so its failure is logged."""
    import logging

    from shared.domain.model_card import markdown
    from training.tracking import log_federated

    try:
        log_federated(
            tracking_uri=settings.mlflow_tracking_uri,
            experiment=settings.mlflow_experiment,
            manifest=manifest,
            model_card=markdown(manifest),
            promoted=promoted,
            configured_root=settings.mlflow_artifact_root,
        )
    except Exception:
        logging.getLogger(__name__).exception(
            "MLflow logging of %s failed; the model is published", manifest["version"]
        )


def rounds_for(settings: Settings) -> Rounds:
    store = get_blob_store(settings)

    def publish(n: int, params: dict[str, Any], scaler: dict[str, Any], state: RoundState) -> None:
        from shared.federated.export import publish_round
        from training.gate import judge

        published = publish_round(
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
        _track_round(settings, published.manifest, promoted=published.promoted)

    return Rounds(
        store,
        settings.fl_experiment,
        RoundConfig(
            min_clients=settings.fl_min_clients,
            deadline_seconds=settings.fl_round_deadline_seconds,
            aggregator=settings.fl_aggregator,
            trim_beta=settings.fl_trim_beta,
            clip_bound=settings.fl_clip_bound,
            noise_multiplier=settings.fl_noise_multiplier,
            dp_delta=settings.fl_dp_delta,
            max_weight_share=settings.fl_max_weight_share,
            lease_seconds=settings.fl_aggregation_lease_seconds,
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
            **refused(404, 409, 503),
            200: {
                "content": {"application/octet-stream": {}},
                "description": ".npz of float32 arrays; round and experiment in headers",
            },
        },
    )
    def model(settings: SettingsDep) -> Response:
        from shared.federated.params import to_npz

        rounds = rounds_for(settings)
        state = rounds.ensure_open()  # also repairs what a crash between two writes left
        n = state.round
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

    @r.get("/rounds/{round_number}", responses=refused(404, 503))
    def round_status(round_number: int, settings: SettingsDep) -> dict[str, Any]:
        return rounds_for(settings).state(round_number).public()

    @r.post(
        "/rounds/{round_number}/updates",
        status_code=202,
        responses=refused(401, 404, 409, 413, 503),
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "the update: an .npz of float32 arrays named and shaped as the round's global model",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def post_update(
        round_number: int,
        request: Request,
        settings: SettingsDep,
        # the four signing headers are declared for the schema (and validated by it); verify() reads them
        x_fl_bank: Annotated[str, Header(pattern=HEADER_PATTERN, description="the bank's id")],  # noqa: ARG001
        x_fl_timestamp: Annotated[  # noqa: ARG001
            str, Header(pattern=_anchored(TIMESTAMP.pattern), description="Unix seconds")
        ],
        x_fl_nonce: Annotated[  # noqa: ARG001
            str, Header(pattern=_anchored(NONCE.pattern), description="random, used once")
        ],
        x_fl_signature: Annotated[  # noqa: ARG001
            str, Header(pattern=_anchored(SIGNATURE.pattern), description="HMAC-SHA256 of the request, hex")
        ],
        x_fl_examples: Annotated[
            str, Header(pattern=EXAMPLES_PATTERN, description="examples the update was trained on (signed)")
        ],
        x_fl_metrics: Annotated[
            str, Header(pattern=METRICS_PATTERN, description="flat JSON object of local metrics (signed)")
        ] = "{}",
    ) -> JSONResponse:
        from fastapi.concurrency import run_in_threadpool

        from api.body import read_body
        from shared.adapters.bank_keys import get_keys
        from shared.federated.auth import single_headers, verify
        from shared.federated.headers import parse_examples, parse_metrics

        headers = single_headers(request.headers.items())  # each X-FL-* once: signed and used alike
        body = await read_body(request, settings.fl_max_body_bytes)
        store = get_blob_store(settings)
        bank = await run_in_threadpool(
            verify, headers, "POST", request.url.path, body, keys=get_keys(settings), store=store, now=time.time()
        )
        examples, metrics = parse_examples(x_fl_examples), parse_metrics(x_fl_metrics)  # duplicates were refused
        state = await run_in_threadpool(rounds_for(settings).submit, round_number, bank, body, examples, metrics)
        return JSONResponse(state.public(), status_code=202)

    @r.post("/rounds/{round_number}/aggregate", responses=refused(401, 404, 503))
    def close_round(
        round_number: int, settings: SettingsDep, x_fl_admin_key: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        from shared.adapters.audit import AuditLog
        from shared.domain.audit import Act

        actor = admin_actor_for(settings.fl_admin_key, x_fl_admin_key, "X-FL-Admin-Key")
        closed = rounds_for(settings).aggregate(round_number, force=True).public()
        AuditLog(get_blob_store(settings)).record(
            Act(
                "admin_call",
                actor,
                f"forced aggregation of round {round_number}",
                {"route": f"/api/federated/rounds/{round_number}/aggregate", "status": closed.get("status")},
            )
        )
        return closed

    return r
