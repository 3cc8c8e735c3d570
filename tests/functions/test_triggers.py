"""The functions called the way the host calls them: get_functions() -> get_user_function()."""

from __future__ import annotations

import asyncio

import azure.functions as func
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobClient

from shared.model_store import ModelStore
from tests.functions.host import user_function as _fn


def test_blob_function_processes_a_landed_file(store, azurite, sample_csv):
    store.put_bytes("raw", "landed/sample.csv", sample_csv.read_bytes())
    client = BlobClient.from_connection_string(azurite, "raw", "landed/sample.csv")
    assert _fn("etl_raw_blob")(client) is None
    curated = store.list_names("curated", "creditcard/ingest_date=")
    assert len(curated) == 1 and curated[0].endswith(".parquet")


def test_blob_function_returns_normally_for_a_file_that_can_never_succeed(store, azurite):
    store.put_bytes("raw", "empty.csv", b"")
    _fn("etl_raw_blob")(BlobClient.from_connection_string(azurite, "raw", "empty.csv"))
    assert store.list_names("quarantine") == ["creditcard/files/empty.csv"]
    assert store.list_names("curated") == []


def test_blob_function_returns_normally_when_the_blob_is_already_gone(store, azurite):
    _fn("etl_raw_blob")(BlobClient.from_connection_string(azurite, "raw", "moved-away.csv"))
    assert store.list_names("quarantine") == [] and store.list_names("curated") == []


def test_timer_function_trains_and_promotes(store, settings, generated_csv):
    store.put_bytes("raw", "gen.csv", generated_csv.read_bytes())
    _fn("etl_raw_blob")(BlobClient.from_connection_string(settings.storage_connection, "raw", "gen.csv"))
    _fn("retrain_model")(TimerRequest(past_due=True))
    assert ModelStore(store, settings.model_name).champion()[0] is not None


def test_http_function_serves_the_asgi_app(store):
    req = func.HttpRequest("GET", "http://localhost/api/health", headers={}, body=b"")
    response = asyncio.run(_fn("http_app_func")(req, None))
    assert response.status_code == 503 and b"no model" in response.get_body()
