"""Governance admin routes (``/api/admin/...``: an Entra ID token with ``ADMIN_ENTRA_ROLE``; locally
``X-Admin-Key``): the model registry (list, show, promote, rollback, deprecate), the right of access (every record
about one customer), the right to erasure and the audit chain's check. Each change and each access request is
audited with its actor: the person signed in with Entra ID (``entra:<object id>`` and their name), or locally the
admin key's fingerprint (``GovernanceAdmin``, a dependency: 401, 403 or 503 before anything else runs); the
registry's rules answer with their reason (409, 410).

Module-level routes on ``router``; the registry, the audit log and the blob store come from the composition root
through ``api.deps``.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from api.admin_deps import GovernanceAdmin
from api.deps import ServicesDep, services_of
from api.schemas import ErrorResponse, ValidationErrorResponse
from shared.adapters.audit import AuditLog
from shared.adapters.model_store import VERSION_MAX, VERSION_PATTERN
from shared.adapters.storage import BlobStore
from shared.bootstrap import Services
from shared.domain.audit import Act, Actor
from shared.domain.config import GovernanceConfig
from shared.domain.pseudonym import PATTERN, Pseudonymiser, pseudonymiser
from shared.governance.registry import Registry, moved

Version = Annotated[str, Path(pattern=VERSION_PATTERN, max_length=VERSION_MAX)]
PSEUDONYM_PATTERN = f"^{PATTERN.pattern}$"

router = APIRouter(prefix="/api/admin", tags=["governance"])


class Change(BaseModel):
    """Why the change is made: it goes into the audit chain."""

    reason: str = Field(min_length=3, max_length=500)


class AccessRequest(BaseModel):
    """The customer as the bank knows them: in the body, never in the URL (URLs end up in access logs)."""

    customer_id: str = Field(min_length=1, max_length=256)


class Rollback(Change):
    to: str = Field(
        pattern=VERSION_PATTERN,
        max_length=VERSION_MAX,
        description="the earlier version to make champion, named: a replayed request then moves nothing (a "
        "rollback to 'the previous one' moved back one more version each time it was sent)",
    )


# ---- dependencies -------------------------------------------------------------------------------
async def store_dependency(services: ServicesDep) -> BlobStore:
    return services.blob_store


async def config_dependency(services: ServicesDep) -> GovernanceConfig:
    return services.settings.governance


async def registry_dependency(services: ServicesDep) -> Registry:
    return registry_of(services)


StoreDep = Annotated[BlobStore, Depends(store_dependency)]
ConfigDep = Annotated[GovernanceConfig, Depends(config_dependency)]
RegistryDep = Annotated[Registry, Depends(registry_dependency)]


def registry_of(services: Services) -> Registry:
    """The registry of the served model name, its changes audited in the chain."""
    return Registry(services.model_store, AuditLog(services.blob_store))


def pseudonymiser_of(config: GovernanceConfig) -> Pseudonymiser:
    """The pseudonymiser of access and erasure requests: the current key and every previous one."""
    key, previous = config.customer_pseudonym_key, config.customer_pseudonym_previous_keys
    return pseudonymiser(key.get_secret_value() if key else None, previous.get_secret_value() if previous else None)


# ---- helpers ------------------------------------------------------------------------------------
def _refused(*codes: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {
        c: {"model": ErrorResponse, "description": "Refused; the reason is in 'detail'"}
        for c in (401, 403, 503, *codes)
    }
    out[422] = {"model": ValidationErrorResponse, "description": "Invalid parameters or body"}
    return out


async def _call(fn: Callable[[], Any]) -> Any:
    """``fn`` off the event loop; an unknown version is 404 here (for scoring, no model at all is 503)."""
    from api.errors import VersionNotFoundError
    from shared.domain.errors import ModelNotAvailableError

    try:
        return await run_in_threadpool(fn)
    except ModelNotAvailableError as exc:
        raise VersionNotFoundError(exc.reason) from None


async def _audited_read(registry: Registry, actor: Actor, what: str, route: str) -> None:
    """An admin read is an admin call too: who looked at what is in the audit chain."""
    await _call(lambda: registry.audit.record(Act("admin_call", actor, what, {"route": route})))


# ---- the routes ---------------------------------------------------------------------------------
@router.get("/models", responses=_refused())
async def list_models(actor: GovernanceAdmin, registry: RegistryDep) -> dict[str, Any]:
    await _audited_read(registry, actor, "listed the model versions", "/api/admin/models")
    rows = await _call(registry.versions)
    return {"champion": next((row["version"] for row in rows if row["champion"]), None), "versions": rows}


@router.get("/models/{version}", responses=_refused(404))
async def show_model(version: Version, actor: GovernanceAdmin, registry: RegistryDep) -> dict[str, Any]:
    route = f"/api/admin/models/{version}"
    await _audited_read(registry, actor, f"looked at model version {version}", route)
    return dict(await _call(lambda: registry.show(version)))


@router.post("/models/{version}/promote", responses=_refused(400, 404, 409, 410))
async def promote(version: Version, change: Change, actor: GovernanceAdmin, registry: RegistryDep) -> dict[str, Any]:
    line = await _call(lambda: registry.promote(version, actor=actor, reason=change.reason))
    return moved(line)


@router.post("/champion/rollback", responses=_refused(400, 404, 409, 410))
async def rollback(change: Rollback, actor: GovernanceAdmin, registry: RegistryDep) -> dict[str, Any]:
    line = await _call(lambda: registry.rollback(to=change.to, actor=actor, reason=change.reason))
    return moved(line)


@router.post("/models/{version}/deprecate", responses=_refused(400, 404, 409))
async def deprecate(version: Version, change: Change, actor: GovernanceAdmin, registry: RegistryDep) -> dict[str, Any]:
    return dict(await _call(lambda: registry.deprecate(version, actor=actor, reason=change.reason)))


@router.post(
    "/gdpr/access",
    responses={**_refused(400), 200: {"content": {"application/json": {}, "text/html": {}}}},
)
async def gdpr_access(
    body: AccessRequest, request: Request, actor: GovernanceAdmin, store: StoreDep, config: ConfigDep
) -> Response:
    from shared.governance.gdpr import access

    answer = await _call(
        lambda: access(store, pseudonymiser_of(config), body.customer_id, actor=actor, dataset=config.dataset_name)
    )
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(answer.as_html())
    return JSONResponse(json.loads(json.dumps(answer.as_json(), default=str)))


@router.post("/gdpr/erase", status_code=202, responses=_refused(400))
async def gdpr_erase(
    body: AccessRequest, request: Request, actor: GovernanceAdmin, store: StoreDep, config: ConfigDep
) -> dict[str, Any]:
    """Accept an erasure and run it in the background (it reads every blob that may hold the customer, which
    can take longer than an HTTP request may): 202 with where to look. The customer is excluded from every
    later ETL run from this answer on; an erasure this instance does not finish is resumed by the daily
    monitor (or ``fraudops gdpr resume``) and listed in the monthly audit report until it is done."""
    from shared.governance.gdpr import request_erasure

    pseudonymise = pseudonymiser_of(config)
    dataset = config.dataset_name
    pseudonym = await _call(lambda: request_erasure(store, pseudonymise, body.customer_id, dataset=dataset))
    online = services_of(request).behaviour
    customer_id = body.customer_id  # in this process's memory only, for the landing zone's search
    threading.Thread(
        target=_erase_in_background,
        args=(store, pseudonymise, customer_id, actor, dataset, online),
        name=f"erasure {pseudonym[:12]}",
        daemon=True,
    ).start()
    return {"customer_pseudonym": pseudonym, "status": "requested", "location": f"/api/admin/gdpr/erasures/{pseudonym}"}


ERASURE_WAIT_SECONDS = 900.0  # a busy claim is waited for this long, then the erasure stays pending for the monitor


def _erase_in_background(
    store: BlobStore, pseudonymise: Pseudonymiser, customer_id: str, actor: Actor, dataset: str, online: Any
) -> None:
    import logging
    import time

    from shared.domain.errors import ErasureBusyError
    from shared.governance.gdpr import erase

    log = logging.getLogger(__name__)
    deadline = time.monotonic() + ERASURE_WAIT_SECONDS
    while True:
        try:
            outcome = erase(store, pseudonymise, customer_id, actor=actor, dataset=dataset, online=online)
        except ErasureBusyError:
            if time.monotonic() > deadline:
                log.warning("erasure: another erasure held the claim too long; this one stays pending for the monitor")
                return
            time.sleep(1.0)
            continue
        except Exception:
            log.exception("erasure: failed; it stays pending and the daily monitor resumes it")
            return
        log.info(
            "erasure of %s done: %d records in %d places", outcome.pseudonym, outcome.records_removed, outcome.places
        )
        return


@router.get("/gdpr/erasures/{pseudonym}", responses=_refused(404))
async def gdpr_erasure_status(
    pseudonym: Annotated[str, Path(pattern=PSEUDONYM_PATTERN)], _admin: GovernanceAdmin, store: StoreDep
) -> dict[str, Any]:
    """Where an erasure stands: ``requested``, ``started`` or ``done`` with what it removed."""
    from fastapi import HTTPException

    from shared.governance.gdpr import erasure_status

    status = await run_in_threadpool(erasure_status, store, pseudonym)
    if status["status"] == "unknown":
        raise HTTPException(404, f"no erasure of {pseudonym} was asked for")
    return status


@router.get("/audit/verify", responses=_refused())
async def verify_audit(actor: GovernanceAdmin, registry: RegistryDep) -> dict[str, Any]:
    await _audited_read(registry, actor, "verified the audit chain", "/api/admin/audit/verify")
    report = await _call(registry.audit.verify)
    return {
        "intact": report.intact,
        "lines": report.lines,
        "head_seq": report.head_seq,
        "head_hash": report.head_hash,
        "broken": dataclasses.asdict(report.broken) if report.broken else None,
        "breaks": [dataclasses.asdict(b) for b in report.breaks],
    }
