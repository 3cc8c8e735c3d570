"""Shared fixtures: a private Azurite per test session, clean storage per test, data helpers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    from shared.api.server import free_port

    return free_port()


def connection_string(port: int) -> str:
    return (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )


def clear_caches() -> None:
    from shared.scorer import _scorer_for
    from shared.settings import get_settings
    from shared.storage import _store_for

    get_settings.cache_clear()
    _store_for.cache_clear()
    _scorer_for.cache_clear()


@pytest.fixture(scope="session")
def azurite() -> Iterator[str]:
    """Azurite (blob only) on a free loopback port with a temporary data dir; stopped afterwards."""
    binary = ROOT / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        pytest.fail("Azurite is not installed; run 'make setup' (npm ci)")
    data = tempfile.mkdtemp(prefix="azurite-test-")
    port = _free_port()
    proc = subprocess.Popen(
        [str(binary), "--silent", "--skipApiVersionCheck", "--loose",
         "--location", data, "--blobHost", "127.0.0.1", "--blobPort", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    conn = connection_string(port)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"Azurite did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.05)
    previous = os.environ.get("AzureWebJobsStorage")
    os.environ["AzureWebJobsStorage"] = conn
    clear_caches()
    try:
        yield conn
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data, ignore_errors=True)
        if previous is None:
            os.environ.pop("AzureWebJobsStorage", None)
        else:
            os.environ["AzureWebJobsStorage"] = previous
        clear_caches()


@pytest.fixture
def store(azurite: str):
    """The app's blob store on the test Azurite, emptied before each test."""
    from shared.storage import CONTAINERS, get_blob_store

    clear_caches()
    s = get_blob_store()
    for container in CONTAINERS:
        client = s.service.get_container_client(container)
        for blob in client.list_blobs():
            client.delete_blob(blob.name)
    return s


@pytest.fixture
def settings(store):
    from shared.settings import get_settings

    return get_settings()


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
