"""The gate in front of the governance admin routes (``/api/admin/...``): the admin key is checked, and the
body bounded, before a byte of the body is read or parsed (a pure ASGI middleware).

Without it FastAPI reads and parses the body first: a 30 MB body with a wrong key cost about 90 MB of
allocations and answered 422, and no refusal was logged or counted. Here a request without the right
``X-Admin-Key`` gets 401 at once, one larger than ``MAX_BODY_BYTES`` (by its ``Content-Length``, or as it
streams in) 413; each refusal is logged (method, path, reason; never the key) and counted
(``fraudops.admin.refused``) so an alert can watch for someone trying keys. The routes' own dependency still
checks the key and gives the audit actor.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from shared.domain.telemetry import instruments

log = logging.getLogger(__name__)

PREFIX = "/api/admin/"
HEADER = b"x-admin-key"
MAX_BODY_BYTES = 64 * 1024  # an admin body is a reason and an id or two


class AdminGate:
    """Wraps the app; ``admin_key`` gives the configured key (None: none, and every admin call is refused)."""

    def __init__(self, app: Any, admin_key: Any) -> None:
        self.app, self.admin_key = app, admin_key

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or not str(scope.get("path", "")).startswith(PREFIX)
            or not _declared(scope)  # no admin route takes it: the router's 404 or 405, not a 401 for nothing
        ):
            await self.app(scope, receive, send)
            return
        from api.deps import admin_actor_for
        from shared.federated.auth import AuthError

        headers = dict(scope.get("headers", ()))
        given = headers.get(HEADER)
        try:
            admin_actor_for(
                self.admin_key(scope), given.decode("latin-1") if given is not None else None, "X-Admin-Key"
            )
        except AuthError as exc:
            await _refuse(scope, send, 401, str(exc), "key")
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


def _too_large() -> str:
    return f"an admin request body is at most {MAX_BODY_BYTES} bytes"


async def _refuse(scope: dict[str, Any], send: Any, status: int, reason: str, why: str) -> None:
    log.warning("refused admin %s %s: %s", scope.get("method"), scope.get("path"), reason)
    instruments().admin_refused.add(1, {"reason": why})
    body = json.dumps({"detail": reason}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
