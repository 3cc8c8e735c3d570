"""Function keys, the Functions host's rule for HTTP functions at ``AuthLevel.FUNCTION``: one home for both sides.

In Azure the host checks the key before our code runs: a request without a valid key in the
``x-functions-key`` header or the ``code`` query parameter gets 401 and never reaches the app.
Our clients (the bank client, the demo, the benchmarks) therefore send a key on every request,
built by :func:`function_app_client`; and ``fraudops serve`` checks keys the same way with
:class:`FunctionKeyCheck`, so a client that forgets its key fails locally where it would fail in
Azure. The app itself never sees the host's keys, so ``create_app`` does not check them.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote_to_bytes

from fraudops_bank.credentials import FUNCTION_KEY_ENV, FUNCTION_KEY_HEADER  # the bank client sends the same

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

HEADER = FUNCTION_KEY_HEADER
QUERY = "code"
ENV = FUNCTION_KEY_ENV

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def presented_key(headers: Iterable[tuple[bytes, bytes]], query_string: bytes) -> str | None:
    """The key a request carries, as the host reads it: the header first, else ``?code=``; None when absent."""
    for name, value in headers:
        if name.lower() == HEADER.encode():
            return value.decode("latin-1")
    codes = parse_qs(query_string.decode("latin-1")).get(QUERY)
    return codes[0] if codes else None


def without_key(scope: Scope) -> Scope:
    """``scope`` with every ``code`` parameter removed from its query string (the rest kept byte for byte): once
    the key is checked, nothing after (telemetry recording the URL, the routes) needs it or may keep it."""
    query = scope.get("query_string") or b""
    if b"code" not in query.lower() and b"%" not in query:  # nothing to remove: the common case, one scan
        return scope
    kept = [p for p in query.split(b"&") if unquote_to_bytes(p.split(b"=", 1)[0]).lower() != QUERY.encode()]
    return {**scope, "query_string": b"&".join(kept)}


def is_valid(key: str | None, keys: Iterable[str]) -> bool:
    """Constant-time comparison against every accepted key (bytes, so non-ASCII input cannot raise)."""
    if not key:
        return False
    given = key.encode("utf-8", "surrogateescape")
    return any(hmac.compare_digest(given, k.encode()) for k in keys)


class FunctionKeyCheck:
    """ASGI middleware that refuses, with 401 and a reason, every HTTP request without a valid function key."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], keys: Iterable[str]) -> None:
        self.app = app
        self.keys = tuple(k for k in keys if k)
        if not self.keys:
            raise ValueError("FunctionKeyCheck needs at least one non-empty key")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = presented_key(scope.get("headers", ()), scope.get("query_string", b""))
        if is_valid(key, self.keys):
            await self.app(scope, receive, send)
            return
        reason = (
            f"no function key: send it in the {HEADER} header (or ?{QUERY}=); the Functions host refuses "
            "requests without one before the app runs"
            if key is None
            else "the function key is not valid for this app"
        )
        log.warning("refused %s %s: %s", scope.get("method"), scope.get("path"), reason)
        body = json.dumps({"detail": reason}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def function_app_client(
    base_url: str, *, function_key: str, timeout: float = 30.0, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """An ``httpx.Client`` for the function app that sends ``function_key`` on every request."""
    import httpx

    if not function_key:
        raise ValueError(f"a function key is required: the host answers 401 without one (set {ENV})")
    return httpx.Client(base_url=base_url, timeout=timeout, headers={HEADER: function_key}, transport=transport)
