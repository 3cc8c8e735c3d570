"""HTTP request metrics for every route: count by status class, and duration (a pure ASGI middleware).

The route is the matched template (``/api/score``), never the raw path, so the series stay few; a
path that matched no route counts as ``unmatched``. The request id (``X-Request-Id``, echoed back,
or made here) is what the recorded predictions carry, so a caller's complaint can be found.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from shared.domain.telemetry import instruments

log = logging.getLogger(__name__)

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
HEADER = b"x-request-id"


def request_id_of(scope: dict[str, Any]) -> str:
    """The caller's ``X-Request-Id`` when it is a plain token of at most 64 characters, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            given = str(value.decode("latin-1"))
            if REQUEST_ID.match(given):
                return given
            break
    return uuid.uuid4().hex


class RequestMetrics:
    """Wraps the app: sets ``scope["state"]["request_id"]``, adds the header, records count and duration."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = rid
        status = 500

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            attrs = {
                "http.route": getattr(route, "path", "unmatched"),
                "http.request.method": scope.get("method", ""),
                "http.response.status_class": f"{status // 100}xx",
            }
            m = instruments()
            m.http_requests.add(1, attrs)
            m.http_duration.record((time.perf_counter() - start) * 1000, attrs)
            _tally(scope, attrs["http.response.status_class"])


def _tally(scope: dict[str, Any], status_class: str) -> None:
    """The answer, counted for the monitoring run's error share (through the recorder of the app's settings)."""
    try:
        from shared.bootstrap import bootstrap

        app = scope.get("app")
        bootstrap(getattr(getattr(app, "state", None), "settings", None)).recorder.count_request(status_class)
    except Exception:  # the answer is sent; a count that cannot be kept must not turn into an error
        log.debug("request not counted", exc_info=True)
