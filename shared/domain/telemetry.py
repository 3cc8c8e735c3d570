"""What the app reports: every span name and metric instrument, in one place, on the OpenTelemetry API.

Services call :func:`span` and the helpers below; they never configure anything. Until the SDK is
set up (``shared.adapters.telemetry.configure_telemetry``, the one place that does, or the Functions
worker's own Azure Monitor set-up), the API is a no-op that costs a dictionary lookup, and
instruments made before the SDK are re-bound to it when it arrives (the API's proxy providers).

Names follow OpenTelemetry's conventions: dotted, lower case, units in UCUM. Attributes are few and
bounded (a model version, an outcome, a route), never a transaction or customer id: each
combination is a time series.
"""

from __future__ import annotations

from bisect import bisect_left
from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, Meter, UpDownCounter, _Gauge
    from opentelemetry.trace import Span, Tracer

SCOPE = "fraudops"
# Score distribution: fine at the fraud end, where the threshold and the alerts live
PROBABILITY_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99)
BANDS = (*(f"{edge:g}" for edge in PROBABILITY_BUCKETS), "1")
LATENCY_BUCKETS_MS = (0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000)
LAG_BUCKETS_S = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)


@lru_cache(maxsize=1)
def tracer() -> Tracer:
    from opentelemetry import trace

    return trace.get_tracer(SCOPE)


def span(name: str, **attributes: Any) -> AbstractContextManager[Span]:
    """A span named ``name`` around the block (an exception is recorded on it and re-raised).

    With no SDK installed nothing would record it, so no span is started: the API's no-op span still
    costs a context switch in and out (about 13 µs, four of them on every scored request); the block
    gets the API's invalid span, on which every call is a no-op, as it would from the API itself.
    """
    from opentelemetry import trace

    if isinstance(trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return _no_span()
    return tracer().start_as_current_span(name, attributes={k: v for k, v in attributes.items() if v is not None})


@lru_cache(maxsize=1)
def _no_span() -> AbstractContextManager[Span]:
    from opentelemetry import trace

    return nullcontext(trace.INVALID_SPAN)


class Instruments:
    """Every metric instrument the app records (one instance per process, :func:`instruments`)."""

    def __init__(self, meter: Meter) -> None:
        self.http_requests: Counter = meter.create_counter(
            "fraudops.http.requests", unit="{request}", description="HTTP requests answered, by route and status class"
        )
        self.http_duration: Histogram = meter.create_histogram(
            "fraudops.http.duration",
            unit="ms",
            description="Time to answer an HTTP request, first byte in to last byte out",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_MS,
        )
        self.scored: Counter = meter.create_counter(
            "fraudops.score.transactions", unit="{transaction}", description="Transactions scored, by source and model"
        )
        self.flagged: Counter = meter.create_counter(
            "fraudops.score.flagged", unit="{transaction}", description="Transactions at or above the threshold"
        )
        self.score_band: Counter = meter.create_counter(
            "fraudops.score.band",
            unit="{transaction}",
            description="Fraud probabilities served, counted per band (the score distribution; band is its upper edge)",
        )
        self.model_in_use: _Gauge = meter.create_gauge(
            "fraudops.model.in_use", unit="1", description="1 for the model version that answered last, by version"
        )
        self.recorded: Counter = meter.create_counter(
            "fraudops.predictions.recorded", unit="{prediction}", description="Served predictions written to Blob"
        )
        self.record_dropped: Counter = meter.create_counter(
            "fraudops.predictions.dropped",
            unit="{prediction}",
            description="Served predictions NOT recorded: the buffer was full or the write failed for good",
        )
        self.record_buffered: UpDownCounter = meter.create_up_down_counter(
            "fraudops.predictions.buffered", unit="{prediction}", description="Predictions waiting to be written"
        )
        self.stream_events: Counter = meter.create_counter(
            "fraudops.stream.events", unit="{event}", description="Stream events by outcome (scored, deadlettered)"
        )
        self.stream_lag: Histogram = meter.create_histogram(
            "fraudops.stream.lag",
            unit="s",
            description="Enqueued in Event Hubs to scored, for the oldest event of each batch",
            explicit_bucket_boundaries_advisory=LAG_BUCKETS_S,
        )
        self.spool: _Gauge = meter.create_gauge(
            "fraudops.stream.spooled",
            unit="{batch}",
            description="Batches waiting in this instance's local spool (storage was unreachable)",
        )
        self.behaviour: Counter = meter.create_counter(
            "fraudops.behaviour.transactions",
            unit="{transaction}",
            description="Transactions by what their behavioural features were: ok, late (beyond the lateness "
            "bound: not placed, features missing) or unavailable (the online store did not answer)",
        )
        self.behaviour_conflicts: Counter = meter.create_counter(
            "fraudops.behaviour.conflicts",
            unit="{write}",
            description="Online-store writes lost to another instance (computed again from the newer state)",
        )
        self.admin_refused: Counter = meter.create_counter(
            "fraudops.admin.refused",
            unit="{request}",
            description="Admin requests refused before their body was read, by reason (key: missing or wrong; "
            "body: too large)",
        )
        self.etl_rows: Counter = meter.create_counter(
            "fraudops.etl.rows", unit="{row}", description="ETL rows by outcome (in, valid, quarantined)"
        )
        self.etl_files: Counter = meter.create_counter(
            "fraudops.etl.files", unit="{file}", description="Landed files by status (processed, rejected)"
        )
        self.retrains: Counter = meter.create_counter(
            "fraudops.retrain.runs", unit="{run}", description="Retraining runs by outcome"
        )
        self.rounds: Counter = meter.create_counter(
            "fraudops.federated.transitions", unit="{transition}", description="Federated round state transitions"
        )
        self.monitor_alerts: _Gauge = meter.create_gauge(
            "fraudops.monitor.alert",
            unit="1",
            description="Monitoring verdicts: 0 ok, 1 warning, 2 critical, -1 no data, by check",
        )
        self.monitor_values: _Gauge = meter.create_gauge(
            "fraudops.monitor.value",
            unit="1",
            description="The figure each monitoring check judged (recall, missed frauds, PSI, ...), by check",
        )


def count_scores(probabilities: Any, threshold: float, *, source: str, model_version: str) -> None:
    """Scored, flagged and per-band counts of one batch: a dozen calls whatever its size (no per-row record)."""
    import numpy as np

    m = instruments()
    attrs = {"source": source, "model_version": model_version}
    n = int(probabilities.shape[0])
    m.scored.add(n, attrs)
    if n == 1:  # one transaction a request, the common case: plain Python is ten times cheaper than NumPy here
        p = float(probabilities[0])
        m.flagged.add(int(p >= threshold), attrs)
        m.score_band.add(1, {**attrs, "band": BANDS[bisect_left(PROBABILITY_BUCKETS, p)]})
    else:
        m.flagged.add(int(np.count_nonzero(probabilities >= threshold)), attrs)
        counts = np.bincount(np.searchsorted(PROBABILITY_BUCKETS, probabilities, side="left"), minlength=len(BANDS))
        for band, count in zip(BANDS, counts.tolist(), strict=True):
            if count:
                m.score_band.add(count, {**attrs, "band": band})
    m.model_in_use.set(1, {"model_version": model_version, "source": source})


@lru_cache(maxsize=1)
def instruments() -> Instruments:
    from opentelemetry import metrics

    return Instruments(metrics.get_meter(SCOPE))
