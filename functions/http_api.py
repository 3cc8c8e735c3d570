"""The HTTP functions: the FastAPI app, served by ``func.AsgiFunctionApp`` in each deployable's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import EVERY_PART, Part, create_app


def build_asgi_app(parts: tuple[Part, ...] = EVERY_PART) -> FastAPI:
    """The ASGI app that carries the HTTP routes of ``parts`` (``/api/...``; host.json sets routePrefix to "").

    Nothing is built here: the routes take their services from the composition root on the first request.
    """
    return create_app(parts=parts)
