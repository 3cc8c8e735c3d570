"""Governance admin routes (``/api/admin/...``, header ``X-Admin-Key`` = ``ADMIN_KEY``): the model registry
(list, show, promote, rollback, deprecate), the right of access (every record about one customer) and
the audit chain's check. Each change and each access request is audited with
the admin key's fingerprint as the actor; the registry's rules answer with their reason (409, 410)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from api.deps import SettingsDep, admin_actor_for
from api.schemas import ErrorResponse, ValidationErrorResponse
from shared.adapters.model_store import VERSION_MAX, VERSION_PATTERN
from shared.domain.settings import Settings
from shared.governance.registry import moved

AdminKey = Annotated[str | None, Header(description="the governance admin key (ADMIN_KEY)")]
Version = Annotated[str, Path(pattern=VERSION_PATTERN, max_length=VERSION_MAX)]


class Change(BaseModel):
    """Why the change is made: it goes into the audit chain."""

    reason: str = Field(min_length=3, max_length=500)


class AccessRequest(BaseModel):
    """The customer as the bank knows them: in the body, never in the URL (URLs end up in access logs)."""

    customer_id: str = Field(min_length=1, max_length=256)


class Rollback(Change):
    to: str | None = Field(
        default=None,
        pattern=VERSION_PATTERN,
        max_length=VERSION_MAX,
        description="the earlier version (default: the champion before the current one)",
    )


def _refused(*codes: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {
        c: {"model": ErrorResponse, "description": "Refused; the reason is in 'detail'"} for c in (401, 503, *codes)
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


def _registry(settings: Settings) -> Any:
    from shared.adapters.audit import AuditLog
    from shared.adapters.model_store import ModelStore
    from shared.adapters.storage import get_blob_store
    from shared.governance.registry import Registry

    store = get_blob_store(settings)
    return Registry(ModelStore(store, settings.model_name), AuditLog(store))


def router() -> APIRouter:
    r = APIRouter(prefix="/api/admin", tags=["governance"])

    def actor(settings: Settings, key: str | None) -> str:
        return admin_actor_for(settings.admin_key, key, "X-Admin-Key")

    def audited_read(settings: Settings, key: str | None, what: str, route: str) -> None:
        """An admin read is an admin call too: who looked at what is in the audit chain."""
        from shared.adapters.audit import AuditLog
        from shared.adapters.storage import get_blob_store
        from shared.domain.audit import Act

        who = actor(settings, key)
        AuditLog(get_blob_store(settings)).record(Act("admin_call", who, what, {"route": route}))

    @r.get("/models", responses=_refused())
    async def list_models(settings: SettingsDep, x_admin_key: AdminKey = None) -> dict[str, Any]:
        await _call(lambda: audited_read(settings, x_admin_key, "listed the model versions", "/api/admin/models"))
        rows = await _call(_registry(settings).versions)
        return {"champion": next((row["version"] for row in rows if row["champion"]), None), "versions": rows}

    @r.get("/models/{version}", responses=_refused(404))
    async def show_model(version: Version, settings: SettingsDep, x_admin_key: AdminKey = None) -> dict[str, Any]:
        route = f"/api/admin/models/{version}"
        await _call(lambda: audited_read(settings, x_admin_key, f"looked at model version {version}", route))
        return dict(await _call(lambda: _registry(settings).show(version)))

    @r.post("/models/{version}/promote", responses=_refused(400, 404, 409, 410))
    async def promote(
        version: Version, change: Change, settings: SettingsDep, x_admin_key: AdminKey = None
    ) -> dict[str, Any]:
        who = actor(settings, x_admin_key)
        line = await _call(lambda: _registry(settings).promote(version, actor=who, reason=change.reason))
        return moved(line)

    @r.post("/champion/rollback", responses=_refused(400, 404, 409, 410))
    async def rollback(change: Rollback, settings: SettingsDep, x_admin_key: AdminKey = None) -> dict[str, Any]:
        who = actor(settings, x_admin_key)
        line = await _call(lambda: _registry(settings).rollback(to=change.to, actor=who, reason=change.reason))
        return moved(line)

    @r.post("/models/{version}/deprecate", responses=_refused(400, 404, 409))
    async def deprecate(
        version: Version, change: Change, settings: SettingsDep, x_admin_key: AdminKey = None
    ) -> dict[str, Any]:
        who = actor(settings, x_admin_key)
        return dict(await _call(lambda: _registry(settings).deprecate(version, actor=who, reason=change.reason)))

    @r.post(
        "/gdpr/access",
        responses={**_refused(400), 200: {"content": {"application/json": {}, "text/html": {}}}},
    )
    async def gdpr_access(
        body: AccessRequest, request: Request, settings: SettingsDep, x_admin_key: AdminKey = None
    ) -> Response:
        from shared.adapters.storage import get_blob_store
        from shared.domain.pseudonym import for_settings
        from shared.governance.gdpr import access

        who = actor(settings, x_admin_key)
        answer = await _call(
            lambda: access(get_blob_store(settings), for_settings(settings), body.customer_id, actor=who)
        )
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(answer.as_html())
        return JSONResponse(json.loads(json.dumps(answer.as_json(), default=str)))

    @r.post("/gdpr/erase", responses=_refused(400))
    async def gdpr_erase(body: AccessRequest, settings: SettingsDep, x_admin_key: AdminKey = None) -> dict[str, Any]:
        from shared.adapters.storage import get_blob_store
        from shared.domain.pseudonym import for_settings
        from shared.governance.gdpr import erase

        who = actor(settings, x_admin_key)
        outcome = await _call(
            lambda: erase(
                get_blob_store(settings),
                for_settings(settings),
                body.customer_id,
                actor=who,
                dataset=settings.dataset_name,
            )
        )
        return dict(outcome.summary())

    @r.get("/audit/verify", responses=_refused())
    async def verify_audit(settings: SettingsDep, x_admin_key: AdminKey = None) -> dict[str, Any]:
        import dataclasses

        await _call(lambda: audited_read(settings, x_admin_key, "verified the audit chain", "/api/admin/audit/verify"))
        report = await _call(lambda: _registry(settings).audit.verify())
        return {
            "intact": report.intact,
            "lines": report.lines,
            "head_seq": report.head_seq,
            "head_hash": report.head_hash,
            "broken": dataclasses.asdict(report.broken) if report.broken else None,
        }

    return r
