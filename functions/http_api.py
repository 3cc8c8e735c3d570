"""The HTTP functions: the FastAPI app, served by ``func.AsgiFunctionApp`` in ``function_app.py``."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app


def build_asgi_app() -> FastAPI:
    """The ASGI app that carries every HTTP route (``/api/...``; host.json sets routePrefix to "").

    Nothing is built here: the routes take their services from the composition root on the first request.
    """
    return create_app()
