"""Federated-learning routes: the global model, signed updates from banks, round status, admin aggregation.

Each route decodes its request, calls one method of the federated service
(``shared.federated.service``) and encodes the answer; the error map (``api.errors``) turns the
service's refusals into statuses. The service is built here from the composition root, with the
gate and the MLflow tracker of ``training/`` passed in (``shared/`` does not import ``training``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse, Response

from api.admin_deps import FederatedAdmin
from api.deps import ServicesDep
from api.schemas import ErrorResponse, ValidationErrorResponse
from shared.bootstrap import Services, bootstrap
from shared.domain.config import FederatedConfig
from shared.domain.documents.model import ModelManifest
from shared.domain.settings import Settings
from shared.domain.verdicts import Verdict
from shared.federated.auth import NONCE, SIGNATURE, TIMESTAMP
from shared.federated.banks import HEADER_PATTERN
from shared.federated.close import RoundTracker
from shared.federated.headers import EXAMPLES_PATTERN, METRICS_PATTERN
from shared.federated.rounds import Rounds
from shared.federated.service import FederatedService

PREFIX = "/api/federated"
router = APIRouter(prefix=PREFIX, tags=[PREFIX.rsplit("/", 1)[1]])


# ---- the service, composed --------------------------------------------------------------------
def _tracker(config: FederatedConfig) -> RoundTracker:
    """The MLflow run of a published round's model, with its model card."""

    def track(manifest: ModelManifest, *, promoted: bool) -> None:
        from shared.domain.model_card import markdown
        from training.tracking import log_federated

        log_federated(
            tracking_uri=config.mlflow_tracking_uri,
            experiment=config.mlflow_experiment,
            manifest=manifest,
            model_card=markdown(manifest),
            promoted=promoted,
            configured_root=config.mlflow_artifact_root,
        )

    return track


def federated_service(services: Services) -> FederatedService:
    """The federated service of ``services``' settings, its closed rounds judged by ``training.gate``."""
    settings, store = services.settings, services.blob_store

    def judge(onnx_bytes: bytes) -> Verdict:
        from training.gate import judge as gate

        return gate(store, onnx_bytes, config=settings.training)

    config = settings.federated
    return FederatedService(store=store, config=config, keys=services.bank_keys, judge=judge, track=_tracker(config))


def rounds_for(settings: Settings) -> Rounds:
    """The rounds of ``settings``' experiment, as the routes see them (tests and local runs start them)."""
    return federated_service(bootstrap(settings)).rounds


async def service_dependency(services: ServicesDep) -> FederatedService:
    return federated_service(services)


FederatedDep = Annotated[FederatedService, Depends(service_dependency)]


# ---- the routes -------------------------------------------------------------------------------
def _anchored(pattern: str) -> str:
    return f"^{pattern}$"


def refused(*codes: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {
        c: {"model": ErrorResponse, "description": "Refused; the reason is in 'detail'"} for c in codes
    }
    out[422] = {"model": ValidationErrorResponse, "description": "Invalid parameters or headers"}
    return out


@router.get(
    "/model",
    responses={
        **refused(404, 409, 503),
        200: {
            "content": {"application/octet-stream": {}},
            "description": "safetensors of float32 arrays (wire format 2); round and metadata in headers",
        },
    },
)
def model(
    service: FederatedDep,
    # the wire format the client reads; a client without it (fraudops-bank 0.1) is answered 426 with the upgrade
    x_fl_wire: Annotated[str, Header(pattern="^2$", description="the wire format the client reads: 2 (safetensors)")],  # noqa: ARG001
) -> Response:
    found = service.global_model()
    return Response(
        found.body,
        media_type="application/octet-stream",
        headers={"X-FL-Round": str(found.round), "X-FL-Metadata": found.metadata_json, "X-FL-Wire": "2"},
    )


@router.get("/rounds/{round_number}", responses=refused(404, 503))
def round_status(round_number: int, service: FederatedDep) -> dict[str, Any]:
    return service.round_state(round_number).public()


@router.post(
    "/rounds/{round_number}/updates",
    status_code=202,
    responses=refused(401, 404, 409, 413, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "the update: safetensors of float32 arrays named and shaped as the round's global model",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def post_update(
    round_number: int,
    request: Request,
    service: FederatedDep,
    # the signing headers are declared for the schema (and validated by it); the service reads them, signed
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
    x_fl_examples: Annotated[  # noqa: ARG001
        str, Header(pattern=EXAMPLES_PATTERN, description="examples the update was trained on (signed)")
    ],
    x_fl_metrics: Annotated[  # noqa: ARG001
        str, Header(pattern=METRICS_PATTERN, description="flat JSON object of local metrics (signed)")
    ] = "{}",
) -> JSONResponse:
    from fastapi.concurrency import run_in_threadpool

    from api.body import read_body
    from shared.federated.auth import single_headers

    headers = single_headers(request.headers.items())  # each X-FL-* once: signed and used alike
    body = await read_body(request, service.config.fl_max_body_bytes)
    state = await run_in_threadpool(
        lambda: service.submit(round_number, headers=headers, path=request.url.path, body=body)
    )
    return JSONResponse(state.public(), status_code=202)


@router.get("/rounds/{round_number}/banks", responses=refused(401, 403, 404, 503))
def round_banks(round_number: int, actor: FederatedAdmin, service: FederatedDep) -> dict[str, Any]:  # noqa: ARG001
    """Admin: the round with each bank's own facts (example count, metrics, norm, clipped) of a visible round."""
    return service.round_state(round_number).for_admin()


@router.post("/rounds/{round_number}/aggregate", responses=refused(401, 403, 404, 503))
def close_round(round_number: int, actor: FederatedAdmin, service: FederatedDep) -> dict[str, Any]:
    route = f"{PREFIX}/rounds/{round_number}/aggregate"
    return service.force_close(round_number, actor=actor, route=route).public()


# ---- secure rounds: keys, sealed shares, masked vectors, unmasking shares ------------------------------
def _signed(
    # declared for the schema (and validated by it); the service verifies them over the whole request
    x_fl_bank: Annotated[str, Header(pattern=HEADER_PATTERN, description="the bank's id")],  # noqa: ARG001
    x_fl_timestamp: Annotated[  # noqa: ARG001
        str, Header(pattern=_anchored(TIMESTAMP.pattern), description="Unix seconds")
    ],
    x_fl_nonce: Annotated[str, Header(pattern=_anchored(NONCE.pattern), description="random, used once")],  # noqa: ARG001
    x_fl_signature: Annotated[  # noqa: ARG001
        str, Header(pattern=_anchored(SIGNATURE.pattern), description="HMAC-SHA256 of the request, hex")
    ],
) -> None:
    return None


Signed = Depends(_signed)


def _body_doc(description: str, media: str = "application/json") -> dict[str, Any]:
    schema = {"type": "string", "format": "binary"} if media == "application/octet-stream" else {"type": "object"}
    return {"requestBody": {"required": True, "description": description, "content": {media: {"schema": schema}}}}


async def _secure_post(request: Request, service: FederatedService, call: Any) -> JSONResponse:
    from fastapi.concurrency import run_in_threadpool

    from api.body import read_body
    from shared.federated.auth import single_headers

    headers = single_headers(request.headers.items())
    body = await read_body(request, service.config.fl_max_body_bytes)
    state = await run_in_threadpool(lambda: call(headers=headers, path=request.url.path, body=body))
    return JSONResponse(state.public(), status_code=202)


@router.post(
    "/rounds/{round_number}/keys",
    status_code=202,
    dependencies=[Signed],
    responses=refused(401, 404, 409, 413, 503),
    openapi_extra=_body_doc(
        "the bank's two X25519 public keys, the served model's digest, signed with its identity key"
    ),
)
async def post_keys(round_number: int, request: Request, service: FederatedDep) -> JSONResponse:
    return await _secure_post(request, service, lambda **kw: service.advertise(round_number, **kw))


@router.get("/rounds/{round_number}/members", responses=refused(404, 409, 503))
def get_members(round_number: int, service: FederatedDep) -> dict[str, Any]:
    return dict(service.round_keys(round_number))


@router.post(
    "/rounds/{round_number}/shares",
    status_code=202,
    dependencies=[Signed],
    responses=refused(401, 404, 409, 413, 503),
    openapi_extra=_body_doc("the bank's shares, each sealed for its holder, and a commitment per share"),
)
async def post_shares(round_number: int, request: Request, service: FederatedDep) -> JSONResponse:
    return await _secure_post(request, service, lambda **kw: service.share(round_number, **kw))


@router.get("/rounds/{round_number}/shares/{bank}", responses=refused(404, 409, 503))
def get_shares(
    round_number: int, bank: Annotated[str, Path(pattern=HEADER_PATTERN)], service: FederatedDep
) -> dict[str, Any]:
    return dict(service.shares_for(round_number, bank))


@router.post(
    "/rounds/{round_number}/masked",
    status_code=202,
    dependencies=[Signed],
    responses=refused(401, 404, 409, 413, 503),
    openapi_extra=_body_doc("the masked vector: little-endian uint64, one per coordinate", "application/octet-stream"),
)
async def post_masked(round_number: int, request: Request, service: FederatedDep) -> JSONResponse:
    return await _secure_post(request, service, lambda **kw: service.mask(round_number, **kw))


@router.post(
    "/rounds/{round_number}/unmask",
    status_code=202,
    dependencies=[Signed],
    responses=refused(401, 404, 409, 413, 503),
    openapi_extra=_body_doc(
        "the shares that remove the masks: self-mask shares of summed banks, key shares of dropped"
    ),
)
async def post_unmask(round_number: int, request: Request, service: FederatedDep) -> JSONResponse:
    return await _secure_post(request, service, lambda **kw: service.unmask(round_number, **kw))
