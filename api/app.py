"""The FastAPI application: the scoring, federated and governance routes, the error map, and the OpenAPI document.

Each deployable serves its own part of the routes (``functions/apps.py``): the scoring app the scoring routes, the
pipeline app the federated and governance ones; a local run serves both. A part's modules are imported only when
it is served, so the scoring app never loads the federated protocol or the governance services.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from api import errors
from api.admin_gate import AdminGate
from api.telemetry import RequestMetrics
from shared.adapters.function_keys import without_key
from shared.domain.settings import Settings


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """At shutdown, write the predictions still buffered (process exit does too, through ``atexit``)."""
    yield
    from fastapi.concurrency import run_in_threadpool

    from shared.bootstrap import close_recorders

    await run_in_threadpool(close_recorders)


class ScoringApi(FastAPI):
    """FastAPI, with the function key taken out of the query string before anything inside sees the request:
    the host (or ``FunctionKeyCheck`` in front, locally) has checked it, and the HTTP server span records
    the URL, which Application Insights keeps (issue 39, finding 13)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(without_key(scope) if scope["type"] == "http" else scope, receive, send)


def _admin_key(scope: Scope) -> Any:
    """The configured governance admin key (``ADMIN_KEY``) of the app serving ``scope``."""
    from shared.domain.settings import get_settings

    return (scope["app"].state.settings or get_settings()).governance.admin_key


Part = Literal["scoring", "pipeline"]
EVERY_PART: tuple[Part, ...] = ("scoring", "pipeline")
TITLES: dict[tuple[Part, ...], str] = {
    ("scoring",): "Fraud scoring API",
    ("pipeline",): "Fraud pipeline API: federated learning and governance",
}


def create_app(settings: Settings | None = None, *, parts: tuple[Part, ...] = EVERY_PART) -> FastAPI:
    """Build the app; nothing here touches storage or the environment.

    ``parts`` are the routes served: ``scoring`` (health, model, contract, score), ``pipeline`` (federated and
    governance), or both (a local run, the tests).

    ``settings`` are what the routes use (the local simulation passes its own); by default the
    process's, read once by the composition root (``shared.bootstrap``) on the first request.
    """
    app = ScoringApi(
        title=TITLES.get(parts, "Fraud scoring API"),
        version="1.1.0",
        description="Scores transactions of the deployment's dataset (its contract: DATASET_NAME) with the champion "
        "ONNX model.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry instrumentation, when a provider is set up: the HTTP server span (the
        # caller's trace context, the parent of score.request). Its per-operation spans and its metrics would
        # repeat ours (score.*, fraudops.http.*) at a cost per request; errors are logged by the error map
        telemetry={"operation_spans": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.add_middleware(AdminGate, admin_key=_admin_key)  # inside RequestMetrics: its refusals are counted too
    app.add_middleware(RequestMetrics)
    errors.install(app)
    if "scoring" in parts:
        from api import scoring

        app.include_router(scoring.hot)  # first: the hot routes are matched before any other
        app.include_router(scoring.router)
    if "pipeline" in parts:
        from api import federated, governance

        for module in (federated, governance):  # each module's routes, on its module-level router
            app.include_router(module.router)

    def openapi() -> dict[str, Any]:
        """FastAPI's document plus the body schemas of ``/api/score``, from the dataset's contract (the route
        reads the raw body)."""
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            from api.openapi import score_components
            from shared.domain.contracts import get_contract
            from shared.domain.settings import get_settings

            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            if "scoring" in parts:
                contract = get_contract((app.state.settings or get_settings()).dataset_name)
                doc.setdefault("components", {}).setdefault("schemas", {}).update(score_components(contract))
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
