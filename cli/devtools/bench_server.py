"""``fraudops serve`` with one layer changed, for ``make bench-score`` only: a layer's cost is measured by its absence.

    python -m cli.devtools.bench_server --port PORT --function-key KEY [--no-key-check] [--telemetry-sdk]

The app is the one ``fraudops serve`` runs (``create_app`` behind ``FunctionKeyCheck``, uvicorn on
127.0.0.1 with the same options); ``--no-key-check`` leaves the host's key check out, ``--telemetry-sdk``
installs the OpenTelemetry SDK (every span recorded, every metric aggregated, as when Application Insights
is configured; nothing exported, so the figure is the in-process cost, not the network's). Recording is
switched off with the app's own setting (``PREDICTIONS_RECORD=false``), explanations by not asking for them.
Nothing here is reachable from the deployed app.
"""

from __future__ import annotations

import argparse


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--function-key", required=True)
    p.add_argument("--no-key-check", action="store_true", help="serve without the host's function-key check")
    p.add_argument("--telemetry-sdk", action="store_true", help="record spans and metrics with the SDK")
    args = p.parse_args()

    import uvicorn

    from api.app import create_app
    from cli.server import LOOPBACK
    from shared.adapters.function_keys import FunctionKeyCheck

    if args.telemetry_sdk:
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        from shared.adapters.telemetry import install_sdk

        install_sdk(span_exporters=[], metric_readers=[InMemoryMetricReader()])
    app = create_app()
    served = app if args.no_key_check else FunctionKeyCheck(app, [args.function_key])
    uvicorn.run(served, host=LOOPBACK, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
