"""The route class of the hot path (``/api/health``, ``/api/score``): FastAPI's work only when a request needs it.

FastAPI resolves and validates a route's declared parameters on every request, which costs more than
scoring one transaction (about 80 µs for a route with no parameter at all, 250 µs with four dependencies,
against 30 µs for the same answer from a plain Starlette route). A :class:`HotRoute` keeps FastAPI's
declaration, its OpenAPI document and its validation, and skips the resolution for a request that carries
none of the declared query or header parameters: the endpoint is called with its defaults, which is what
FastAPI would have passed. A request that carries one goes through FastAPI's own handler, unchanged.

The endpoint must therefore declare only query and header parameters with defaults besides ``request``
(no body, path or dependency parameters: those could not be skipped), and return a ``Response``;
:class:`HotRoute` refuses anything else when the app is built, not at the first request.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response


class HotRoute(APIRoute):
    """An ``APIRoute`` that calls its endpoint directly when the request has none of its declared parameters."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        d = self.dependant
        others = d.path_params or d.cookie_params or d.body_params or d.dependencies
        required = any(p.field_info.is_required() for p in (*d.query_params, *d.header_params))
        if others or required or not inspect.iscoroutinefunction(endpoint):
            raise TypeError(
                f"{path}: a HotRoute endpoint is async and takes only `request` and optional query or header parameters"
            )

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        full = super().get_route_handler()  # FastAPI's: resolves and validates every declared parameter
        endpoint = self.endpoint
        headers = frozenset(p.alias.lower().encode("latin-1") for p in self.dependant.header_params)
        queries = tuple(p.alias.encode() for p in self.dependant.query_params)

        async def handler(request: Request) -> Response:
            scope = request.scope
            query = scope.get("query_string", b"")  # a name inside another only sends it the long way: still right
            if (query and any(name in query for name in queries)) or (
                headers and any(name in headers for name, _ in scope.get("headers", ()))
            ):
                return await full(request)
            response: Response = await endpoint(request=request)
            return response

        return handler
