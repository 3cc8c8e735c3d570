"""Telemetry: set up in one place, the host's own switches honoured, instruments read back from the real SDK."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from shared.adapters import telemetry as setup
from shared.domain.settings import Settings
from shared.domain.telemetry import BANDS, count_scores, span


def _settings(**values: str) -> Settings:
    return Settings.model_validate(values)


def test_no_exporter_unless_asked_or_a_connection_string_is_set(monkeypatch):
    monkeypatch.delenv("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", raising=False)
    assert setup._configure(_settings()) == "none"
    assert setup._configure(_settings(TELEMETRY_EXPORTER="none")) == "none"


def test_inside_the_host_with_its_own_azure_monitor_set_up_nothing_is_configured_twice(monkeypatch):
    """The worker calls configure_azure_monitor itself when PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY is
    true; a second set-up would export every span and log line twice."""
    from opentelemetry import trace

    monkeypatch.setenv("FUNCTIONS_WORKER_RUNTIME", "python")
    monkeypatch.setenv("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "true")
    provider = trace.get_tracer_provider()
    conn = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:9/"
    assert setup._configure(_settings(APPLICATIONINSIGHTS_CONNECTION_STRING=conn)) == "worker"
    assert trace.get_tracer_provider() is provider


def test_azure_monitor_without_a_connection_string_says_so_and_stays_off(monkeypatch, caplog):
    monkeypatch.delenv("FUNCTIONS_WORKER_RUNTIME", raising=False)
    with caplog.at_level(logging.ERROR):
        assert setup._configure(_settings(TELEMETRY_EXPORTER="azure-monitor")) == "none"
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING is not set" in caplog.text


def test_a_set_up_that_raises_never_stops_the_app(monkeypatch, caplog):
    def broken(_settings):
        raise ValueError("malformed connection string")

    monkeypatch.setattr(setup, "_mode", None)
    monkeypatch.setattr(setup, "_configure", broken)
    assert setup.configure_telemetry(_settings()) == "none"
    assert "telemetry could not be set up" in caplog.text
    assert setup.configure_telemetry(_settings()) == "none"  # once per process: the first answer stands


def test_an_unknown_exporter_is_refused_by_the_settings():
    with pytest.raises(ValueError, match="TELEMETRY_EXPORTER"):
        _settings(TELEMETRY_EXPORTER="zipkin")


def test_score_counts_by_band_flagged_and_model(telemetry):
    probs = np.array([0.0005, 0.004, 0.3, 0.5, 0.96, 0.999])
    count_scores(probs, 0.5, source="unit", model_version="vX")
    assert telemetry.total("fraudops.score.transactions", source="unit", model_version="vX") == 6
    assert telemetry.total("fraudops.score.flagged", source="unit", model_version="vX") == 3
    bands = {b: telemetry.total("fraudops.score.band", source="unit", band=b) for b in BANDS}
    assert {b: n for b, n in bands.items() if n} == {"0.001": 1, "0.005": 1, "0.3": 1, "0.5": 1, "0.99": 1, "1": 1}
    in_use = telemetry.points("fraudops.model.in_use")
    assert any(p.attributes.get("model_version") == "vX" and p.value == 1 for p in in_use)


def test_one_transaction_at_a_time_is_banded_and_flagged_as_a_batch_is(telemetry):
    """The one-row path (plain Python) and the batch path (NumPy) agree, bucket edges and threshold included."""
    from shared.domain.telemetry import PROBABILITY_BUCKETS

    probs = np.array([0.0, *PROBABILITY_BUCKETS, *(np.array(PROBABILITY_BUCKETS) + 1e-9), 0.42, 1.0])
    count_scores(probs, 0.5, source="batch", model_version="vB")
    for p in probs:
        count_scores(np.array([p]), 0.5, source="single", model_version="vB")
    for name in ("fraudops.score.transactions", "fraudops.score.flagged"):
        assert telemetry.total(name, source="single") == telemetry.total(name, source="batch") > 0
    for band in BANDS:
        assert telemetry.total("fraudops.score.band", source="single", band=band) == telemetry.total(
            "fraudops.score.band", source="batch", band=band
        ), band


def test_a_span_records_the_exception_and_reraises(telemetry):
    with pytest.raises(RuntimeError), span("unit.fails", rows=3, skipped=None):
        raise RuntimeError("boom")
    (s,) = telemetry.spans("unit.fails")
    assert s.attributes == {"rows": 3} and not s.status.is_ok
    assert any(e.name == "exception" for e in s.events)


@pytest.mark.parametrize(("in_host", "logs_exported"), [(True, False), (False, True)])
def test_our_azure_monitor_set_up_exports_logs_only_outside_the_host(monkeypatch, in_host, logs_exported):
    """Inside the host its own log forwarding already sends every line: exporting them too writes each twice."""
    import azure.monitor.opentelemetry as distro

    calls = []
    monkeypatch.setattr(distro, "configure_azure_monitor", lambda **kwargs: calls.append(kwargs))
    monkeypatch.delenv("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", raising=False)
    if in_host:
        monkeypatch.setenv("FUNCTIONS_WORKER_RUNTIME", "python")
    else:
        monkeypatch.delenv("FUNCTIONS_WORKER_RUNTIME", raising=False)
    conn = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:9/"
    assert setup._configure(_settings(APPLICATIONINSIGHTS_CONNECTION_STRING=conn)) == "azure-monitor"
    (kwargs,) = calls
    assert kwargs["disable_logging"] is (not logs_exported) and kwargs["connection_string"] == conn


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        (b"code=abc", b""),
        (b"a=1&CODE=abc&b=2", b"a=1&b=2"),
        (b"%63ode=abc&a=1", b"a=1"),
        (b"barcode=1&code2=3", b"barcode=1&code2=3"),
        (b"", b""),
    ],
)
def test_the_key_leaves_the_query_and_nothing_else_does(query, kept):
    from shared.adapters.function_keys import without_key

    assert without_key({"type": "http", "query_string": query})["query_string"] == kept


def test_a_function_key_sent_as_code_never_reaches_a_recorded_url(telemetry, monkeypatch):
    """Issue 39, finding 13: the server span of ``/api/...?code=KEY`` kept the key in its URL, which
    Application Insights stores. Our app under OpenTelemetry's FastAPI instrumentation (what the Azure
    Monitor distro turns on) and FastAPI's own: no exported attribute holds the key, the rest of the query
    stays."""
    from fastapi.testclient import TestClient
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    from api.app import create_app
    from tests.conftest import clear_caches

    monkeypatch.setenv("PREDICTIONS_RECORD", "false")  # nothing to write: no storage needed
    clear_caches()
    app = create_app()
    FastAPIInstrumentor.instrument_app(app)
    secret = "s3cret-function-key"
    client = TestClient(app)
    assert client.get(f"/api/docs?x=1&code={secret}&CODE={secret}&y=2").status_code == 200
    spans = telemetry.spans_exporter.get_finished_spans()
    recorded = [str(v) for s in spans for v in (s.attributes or {}).values()]
    assert any("x=1" in v and "y=2" in v for v in recorded)  # the URL was recorded, without the key
    assert not any(secret in v for v in recorded)
    clear_caches()
