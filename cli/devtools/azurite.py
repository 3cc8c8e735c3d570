"""A private Azurite (blob service only) on a free loopback port with a throw-away data folder.

The test session and the benchmarks each start their own, so they neither see nor disturb
the developer's Azurite, and a benchmark does not inherit a store bloated by earlier runs.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def connection_string(port: int) -> str:
    """The well-known development account on ``127.0.0.1:<port>``."""
    return (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )


class AzuriteNotAvailable(RuntimeError):
    """Azurite is not installed or did not start; the message says which."""


@contextlib.contextmanager
def private_azurite(*, start_timeout: float = 30.0) -> Iterator[str]:
    """Start Azurite with every container created, yield its connection string, stop it and delete its data."""
    with private_azurite_bare(start_timeout=start_timeout) as conn:
        _create_containers(conn)
        yield conn


@contextlib.contextmanager
def private_azurite_bare(*, start_timeout: float = 30.0) -> Iterator[str]:
    """Start an empty Azurite (no containers), yield its connection string, stop it and delete its data."""
    from cli.server import free_port

    binary = ROOT / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        raise AzuriteNotAvailable("Azurite is not installed; run 'make demo-setup' (npm ci --omit=dev installs it)")
    data = tempfile.mkdtemp(prefix="azurite-private-")
    port = free_port()
    proc = subprocess.Popen(
        [
            str(binary),
            "--silent",
            # no usage reports from a throw-away instance; with them on, Azurite closes on SIGTERM but its process
            # stays, and every stop waited 5 s for the kill below
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--loose",
            "--location",
            data,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise AzuriteNotAvailable(f"Azurite did not start: {err}") from None
                time.sleep(0.05)
        yield connection_string(port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data, ignore_errors=True)


def storage_env(conn: str) -> dict[str, str]:
    """Both storage settings pointed at one local account: the host's (``AzureWebJobsStorage``) and the data's
    (``DataStorage``, which wins for the app's data when set, so setting only the first could miss)."""
    return {"AzureWebJobsStorage": conn, "DataStorage": conn}


def _create_containers(conn: str) -> None:
    """What Bicep creates in Azure and `fraudops init` locally: every container of the layout."""
    from shared.adapters.storage import AzureBlobStore, make_service_client
    from shared.domain.settings import Settings

    AzureBlobStore(make_service_client(Settings.model_validate({"AzureWebJobsStorage": conn}))).ensure_containers()
