"""When a retraining run goes to Dask, how this process reaches the cluster, and how workers reach Blob.

A run is distributed when ``DASK_SCHEDULER_ADDRESS`` is set, or when its window (counted from the
dataset manifest, before anything is read) has more rows than ``TRAIN_DISTRIBUTED_ROWS``; the latter
without an address is refused with the reason, since one instance would run out of memory. The
address ``local`` starts a ``LocalCluster`` on this machine (development, the benchmark). A
``tls://`` address uses the certificates of ``DASK_TLS_*``.

Workers read curated parts with ``adlfs`` under the same identity rules as ``BlobStore``: an account
endpoint means Entra ID (``DefaultAzureCredential`` on the worker: its workload identity in AKS),
otherwise the connection string (Azurite locally).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from shared.domain.errors import TrainingError

if TYPE_CHECKING:
    from distributed import Client

    from shared.domain.config import StorageConfig, TrainingConfig

log = logging.getLogger(__name__)

LOCAL = "local"


def needed(config: TrainingConfig, rows: int) -> bool:
    """Whether a window of ``rows`` rows trains on Dask; ``TrainingError`` when it must but no cluster is set."""
    if config.dask_scheduler_address:
        return True
    limit = config.train_distributed_rows
    if limit is not None and rows > limit:
        raise TrainingError(
            f"the training window has {rows:,} rows, more than TRAIN_DISTRIBUTED_ROWS ({limit:,}), which one "
            "instance is sized for; set DASK_SCHEDULER_ADDRESS to a Dask cluster (README: Distributed retraining) "
            "or lower TRAIN_WINDOW_ROWS"
        )
    return False


def storage_options(storage: StorageConfig) -> dict[str, Any]:
    """``adlfs.AzureBlobFileSystem`` arguments for the data account, picklable for the workers."""
    if storage.storage_blob_uri:
        host = urlparse(storage.storage_blob_uri).hostname or ""
        return {"account_name": host.split(".")[0], "anon": False}
    if storage.storage_account_name:
        return {"account_name": storage.storage_account_name, "anon": False}
    return {"connection_string": storage.storage_connection}


def security(config: TrainingConfig) -> Any:
    """``distributed.Security`` for a ``tls://`` address (``None`` otherwise)."""
    address = config.dask_scheduler_address or ""
    if not address.startswith("tls://"):
        return None
    from distributed.security import Security

    missing = [
        name
        for name, value in (
            ("DASK_TLS_CA_FILE", config.dask_tls_ca_file),
            ("DASK_TLS_CERT_FILE", config.dask_tls_cert_file),
            ("DASK_TLS_KEY_FILE", config.dask_tls_key_file),
        )
        if not value
    ]
    if missing:
        raise TrainingError(f"DASK_SCHEDULER_ADDRESS is a tls:// address but {', '.join(missing)} is not set")
    return Security(
        tls_ca_file=config.dask_tls_ca_file,
        tls_client_cert=config.dask_tls_cert_file,
        tls_client_key=config.dask_tls_key_file,
        require_encryption=True,
    )


@contextlib.contextmanager
def connect(config: TrainingConfig, *, timeout: float = 30.0) -> Iterator[Client]:
    """A client of the configured cluster (a private ``LocalCluster`` for ``local``), closed on exit."""
    from distributed import Client, LocalCluster, get_worker, worker_client

    try:
        get_worker()
    except ValueError:
        pass
    else:  # a run submitted to the cluster (training.retrain.submit): this worker's client
        with worker_client() as inside:
            yield inside
        return
    address = config.dask_scheduler_address or LOCAL
    if address == LOCAL:
        with (
            LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(address, security=security(config), timeout=timeout)
    except OSError as exc:
        raise TrainingError(
            f"the Dask scheduler at {address} cannot be reached ({exc}); the champion is untouched"
        ) from None
    try:
        yield client
    finally:
        client.close()
