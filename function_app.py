"""Composition root: build the function app and register the blueprints. Nothing else.

Everything imported here must import without raising and without I/O: in Azure an import
error silently registers zero functions. Heavy libraries load inside the handlers.
"""

import azure.functions as func

from functions import blob_etl, stream, timer_monitor, timer_retrain
from functions.http_api import build_asgi_app

app = func.AsgiFunctionApp(app=build_asgi_app(), http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(blob_etl.bp)
app.register_functions(timer_retrain.bp)
app.register_functions(timer_monitor.bp)
app.register_functions(stream.bp)
