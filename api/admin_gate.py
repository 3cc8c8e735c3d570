"""The gate in front of the governance admin routes (``/api/admin/...``): the caller is checked, and the body
bounded, before a byte of the body is read or parsed (a pure ASGI middleware).

Without it FastAPI reads and parses the body first: a 30 MB body with a wrong key cost about 90 MB of
allocations and answered 422, and no refusal was logged or counted. Here a request without an accepted
credential (an Entra ID token with the app role; locally, the right ``X-Admin-Key``:
``shared.governance.admin_access``) gets 401, 403 or 503 at once, one larger than ``MAX_BODY_BYTES`` (by its
``Content-Length``, or as it streams in) 413; each refusal is logged (method, path, reason; never the key or
the token) and counted (``fraudops.admin.refused``, by reason: key, token, role, config, body) so an alert can
watch for someone trying keys or tokens. The routes' own dependency checks again and gives the audit actor.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.domain.telemetry import instruments

if TYPE_CHECKING:
    from shared.governance.admin_access import AdminAccess

log = logging.getLogger(__name__)

PREFIX = "/api/admin/"
HEADER = b"x-admin-key"
AUTHORIZATION = b"authorization"
MAX_BODY_BYTES = 64 * 1024  # an admin body is a reason and an id or two


class AdminGate:
    """Wraps the app; ``access`` gives the admin access policy of the app serving a request's scope (by default
    its composition root's: ``bootstrap(app.state.settings).admin_access``).

    ``admin_key`` is not read any more (the policy holds the keys and the Entra ID settings); it is accepted
    until ``api/app.py``, being restructured elsewhere, stops passing it (``app.add_middleware(AdminGate)``)."""

    def __init__(
        self, app: Any, admin_key: object = None, access: Callable[[dict[str, Any]], AdminAccess] | None = None
    ) -> None:
        del admin_key
        self.app, self.access = app, access or _access

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or not str(scope.get("path", "")).startswith(PREFIX)
            or not _declared(scope)  # no admin route takes it: the router's 404 or 405, not a 401 for nothing
        ):
            await self.app(scope, receive, send)
            return
        from fastapi.concurrency import run_in_threadpool

        from api.errors import status_of
        from shared.domain.errors import FraudOpsError
        from shared.governance.admin_access import GOVERNANCE

        headers = dict(scope.get("headers", ()))
        key, authorization = _text(headers.get(HEADER)), _text(headers.get(AUTHORIZATION))
        access = self.access(scope)
        try:
            if authorization is None:
                access.actor(GOVERNANCE, authorization=None, key=key)
            else:  # a token's check may fetch the tenant's keys (once per process): off the event loop
                await run_in_threadpool(lambda: access.actor(GOVERNANCE, authorization=authorization, key=key))
        except FraudOpsError as exc:
            await _refuse(scope, send, status_of(exc), exc.reason, _why(exc, authorization))
            return
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            await _refuse(scope, send, 413, _too_large(), "body")
            return
        body, more = b"", True
        while more:  # an admin body is small: read it whole, bounded, then hand it on
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY_BYTES:
                await _refuse(scope, send, 413, _too_large(), "body")
                return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                after: dict[str, Any] = await receive()  # after the body: what the server says next
                return after
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _declared(scope: dict[str, Any]) -> bool:
    """Whether one of the app's routes takes this path with this method (the router's own matching)."""
    from starlette.routing import Match

    return any(route.matches(scope)[0] == Match.FULL for route in getattr(scope.get("app"), "routes", ()))


def _access(scope: dict[str, Any]) -> AdminAccess:
    """The admin access policy of the app serving ``scope``: its settings' composition root's."""
    from shared.bootstrap import bootstrap

    return bootstrap(scope["app"].state.settings).admin_access


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


def _why(exc: Exception, authorization: str | None) -> str:
    """The refusal's kind, for the counter: a wrong key or token, a missing role, or the service's settings."""
    from shared.domain.errors import ConfigurationError, NotAllowedError, RetryLaterError

    if isinstance(exc, NotAllowedError):
        return "role"
    if isinstance(exc, ConfigurationError | RetryLaterError):
        return "config"
    return "token" if authorization is not None else "key"


def _too_large() -> str:
    return f"an admin request body is at most {MAX_BODY_BYTES} bytes"


async def _refuse(scope: dict[str, Any], send: Any, status: int, reason: str, why: str) -> None:
    log.warning("refused admin %s %s: %s", scope.get("method"), scope.get("path"), reason)
    instruments().admin_refused.add(1, {"reason": why})
    body = json.dumps({"detail": reason}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
