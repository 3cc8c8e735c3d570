"""The one place the OpenTelemetry SDK is set up (spans and metrics the domain's instruments record).

``configure_telemetry(settings.telemetry)`` runs once per process (the composition root calls it at the first
invocation, the CLI at start) and picks, from ``TELEMETRY_EXPORTER``:

* ``auto`` (the default): Azure Monitor when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set, else
  nothing (the API's no-op);
* ``azure-monitor``: Azure Monitor's distro, ``configure_azure_monitor``;
* ``console``: spans and metrics printed as JSON to standard output (local runs);
* ``none``: nothing.

Two rules of the Functions host are honoured:

* when ``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY`` is true, the worker has already called
  ``configure_azure_monitor`` before loading the app; configuring again would export everything
  twice, so the providers in place are used as they are;
* inside the host, log records already reach Application Insights through the host itself; the
  distro's log exporter is therefore switched off there (``OTEL_LOGS_EXPORTER=none`` for the
  worker's own set-up, ``disable_logging`` for ours), the known cause of every line appearing twice.

Outside the host (``fraudops serve``, the CLI) the distro exports logs too: nothing else would.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.trace.export import SpanExporter

    from shared.domain.config import TelemetryConfig
    from shared.domain.settings import Settings

log = logging.getLogger(__name__)

Mode = Literal["worker", "azure-monitor", "console", "sdk", "none"]
_lock = threading.Lock()
_mode: Mode | None = None


def _true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def in_functions_host() -> bool:
    """True inside the Functions host's worker (the host sets ``FUNCTIONS_WORKER_RUNTIME``)."""
    return bool(os.environ.get("FUNCTIONS_WORKER_RUNTIME"))


def configured_mode() -> Mode | None:
    """What ``configure_telemetry`` set up in this process (None: not yet called)."""
    return _mode


def configure_telemetry(settings: TelemetryConfig | Settings) -> Mode:
    """Set up the SDK once for this process, as the settings say; later calls return the first answer.

    Never raises: telemetry that cannot be set up is logged and left off, so a bad connection string
    cannot stop the app from serving.
    """
    global _mode
    with _lock:
        if _mode is not None:
            return _mode
        try:
            _mode = _configure(settings)
        except Exception:  # an exporter that cannot start must not take the app down with it
            log.exception("telemetry could not be set up; continuing without it")
            _mode = "none"
        log.info("telemetry: %s", _mode)
        return _mode


def _configure(settings: TelemetryConfig | Settings) -> Mode:
    choice = settings.telemetry_exporter
    if choice == "none":
        return "none"
    if _true("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY") and in_functions_host():
        return "worker"
    connection = settings.applicationinsights_connection_string
    if choice == "azure-monitor" or (choice == "auto" and connection):
        if not connection:
            log.error("TELEMETRY_EXPORTER=azure-monitor but APPLICATIONINSIGHTS_CONNECTION_STRING is not set")
            return "none"
        from azure.monitor.opentelemetry import configure_azure_monitor

        configure_azure_monitor(
            connection_string=connection.get_secret_value(),
            disable_logging=in_functions_host(),  # the host forwards the worker's logs itself
            enable_live_metrics=False,
            instrumentation_options={"django": {"enabled": False}, "flask": {"enabled": False}},
        )
        return "azure-monitor"
    if choice == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        install_sdk(
            span_exporters=[ConsoleSpanExporter()],
            metric_readers=[PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=60_000)],
        )
        return "console"
    return "none"


def install_sdk(*, span_exporters: Sequence[SpanExporter], metric_readers: Sequence[MetricReader]) -> Mode:
    """Install SDK providers exporting to these (the console mode, and tests' in-memory exporters).

    OpenTelemetry lets a process set its global providers once; a second call is refused by the API
    and logged, so tests install theirs once per session and read them back.
    """
    global _mode
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "fraudops")})
    tracer_provider = TracerProvider(resource=resource)
    for exporter in span_exporters:
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=list(metric_readers)))
    _mode = "sdk" if _mode is None else _mode
    return "sdk"


def flush() -> None:
    """Export what is buffered (before a short-lived process exits)."""
    from opentelemetry import metrics, trace

    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        force_flush = getattr(provider, "force_flush", None)
        if force_flush is not None:
            try:
                force_flush()
            except Exception:
                log.warning("telemetry flush failed", exc_info=True)
