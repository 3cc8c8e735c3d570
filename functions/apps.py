"""The function apps: which functions and routes each deployable registers (one place for all three).

- ``scoring()``: HTTP scoring and the Event Hubs stream (``deploy/scoring``). It imports no training, plotting,
  MLflow or Dask library, nor the federated and governance routes.
- ``pipeline()``: the blob ETL, the retrain and monitor timers, the federated coordinator and the governance
  routes (``deploy/pipeline``).
- ``everything()``: both, for a local ``func start`` and the tests (the top-level ``function_app.py``).

Each deployable's ``function_app.py`` is one line over these. Nothing here may raise at import time: in Azure an
import or indexing error silently registers zero functions. Blueprints are imported inside each builder, so the
scoring app never imports the pipeline's triggers (nor the blob extension's SDK types they bring).
"""

from __future__ import annotations

import azure.functions as func

from functions.http_api import build_asgi_app


def scoring() -> func.AsgiFunctionApp:
    """The scoring app: ``/api/health``, ``/api/model``, ``/api/score`` and the stream."""
    from functions import stream

    app = func.AsgiFunctionApp(app=build_asgi_app(("scoring",)), http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(stream.bp)
    return app


def pipeline() -> func.AsgiFunctionApp:
    """The pipeline app: the blob ETL, the timers, and the federated and governance routes."""
    from functions import blob_etl, timer_monitor, timer_retrain

    app = func.AsgiFunctionApp(app=build_asgi_app(("pipeline",)), http_auth_level=func.AuthLevel.FUNCTION)
    for blueprint in (blob_etl.bp, timer_retrain.bp, timer_monitor.bp):
        app.register_functions(blueprint)
    return app


def everything() -> func.AsgiFunctionApp:
    """Every function and route in one app: a local ``func start``, the worker tests, ``fraudops replay --local``."""
    from functions import blob_etl, stream, timer_monitor, timer_retrain

    app = func.AsgiFunctionApp(app=build_asgi_app(), http_auth_level=func.AuthLevel.FUNCTION)
    for blueprint in (blob_etl.bp, timer_retrain.bp, timer_monitor.bp, stream.bp):
        app.register_functions(blueprint)
    return app
