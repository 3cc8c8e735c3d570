"""Shared fixtures: a private Azurite per test session, clean storage per test, data helpers."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def clear_caches() -> None:
    """Forget every client, service and setting the composition root built (the next test builds anew)."""
    from shared.bootstrap import reset

    reset()


@pytest.fixture(scope="session")
def azurite() -> Iterator[str]:
    """Azurite (blob only) on a free loopback port with a temporary data dir; stopped afterwards."""
    from cli.devtools.azurite import AzuriteNotAvailable, private_azurite

    with contextlib.ExitStack() as stack:
        try:
            conn = stack.enter_context(private_azurite())  # with every container created, as `fraudops init` does
        except AzuriteNotAvailable as exc:
            pytest.fail(str(exc))
        # The host's storage and the data's connection (the blob trigger's), as local.settings.json.example has them.
        names = ("AzureWebJobsStorage", "DataStorage")
        previous = {name: os.environ.get(name) for name in names}
        os.environ.update(dict.fromkeys(names, conn))
        clear_caches()
        try:
            yield conn
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            clear_caches()


@pytest.fixture
def store(azurite: str):
    """The app's blob store on the test Azurite, emptied before each test."""
    from shared.bootstrap import bootstrap
    from shared.domain.layout import CONTAINERS

    clear_caches()
    s = bootstrap().blob_store
    for container in CONTAINERS:
        client = s.service.get_container_client(container)
        for blob in client.list_blobs():
            client.delete_blob(blob.name)
    return s


@pytest.fixture(scope="session")
def mlflow_schema(tmp_path_factory) -> Path:
    """An empty MLflow SQLite store with MLflow's own migrations applied, made once: each test copies it
    (applying the migrations takes seconds, copying the file none)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    folder = tmp_path_factory.mktemp("mlflow-schema")
    SqlAlchemyStore(f"sqlite:///{folder}/mlflow.db", str(folder / "artifacts"))
    return folder / "mlflow.db"


@pytest.fixture
def settings(store, tmp_path, monkeypatch, mlflow_schema):
    """Settings on the test Azurite, with a per-test MLflow SQLite store and a short hyperparameter search."""
    import shutil

    from shared.domain.settings import get_settings

    (tmp_path / "mlflow").mkdir()
    shutil.copyfile(mlflow_schema, tmp_path / "mlflow" / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow/mlflow.db")
    monkeypatch.setenv("TRAIN_SEARCH_TRIALS", "3")
    monkeypatch.setenv("TRAIN_MAX_BIN", "255")  # LightGBM's default: fast; the quality test sets the real default
    monkeypatch.setenv("TRAIN_COMPARE_FAMILIES", "false")  # the logistic baseline only; one test compares them all
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def sample_csv() -> Path:
    path = SHARED_DATA / "creditcard_sample.csv"
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data folder is not beside the project)")
    return path


@pytest.fixture(scope="session")
def generated_csv(tmp_path_factory) -> Path:
    """60,000 generated rows at 1% fraud: enough frauds in every time-split part, fast to train on."""
    from training.generate import generate

    path = tmp_path_factory.mktemp("gen") / "gen.csv"
    generate(60_000, 11, path, fraud_rate=0.01, truth=path.with_suffix(".truth.csv"))
    return path


class Telemetry:
    """The real OpenTelemetry SDK exporting to memory: what a test's code path emitted, read back."""

    def __init__(self) -> None:
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.spans_exporter = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()

    def clear(self) -> None:
        self.spans_exporter.clear()
        self.reader.get_metrics_data()  # cumulative sums stay; tests compare before and after

    def spans(self, name: str | None = None) -> list:
        return [s for s in self.spans_exporter.get_finished_spans() if name is None or s.name == name]

    def points(self, metric: str) -> list:
        """Every data point of ``metric`` now (cumulative since the process started)."""
        data = self.reader.get_metrics_data()
        found = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == metric:
                        found.extend(m.data.data_points)
        return found

    def total(self, metric: str, **attributes: object) -> float:
        """The sum (counters), or the count (histograms), over the points whose attributes include these."""
        total = 0.0
        for p in self.points(metric):
            if all(p.attributes.get(k) == v for k, v in attributes.items()):
                total += p.value if hasattr(p, "value") else p.count
        return total


@pytest.fixture(scope="session")
def telemetry_sdk() -> Telemetry:
    """Installed once per process (OpenTelemetry lets a process set its providers once)."""
    from shared.adapters.telemetry import install_sdk

    t = Telemetry()
    install_sdk(span_exporters=[t.spans_exporter], metric_readers=[t.reader])
    return t


@pytest.fixture
def telemetry(telemetry_sdk: Telemetry) -> Telemetry:
    telemetry_sdk.clear()
    return telemetry_sdk
