"""What the timer runs: the retraining run here, or, with a Dask scheduler address, handed to that cluster.

When retraining is distributed, the timer hands the whole run to the cluster and returns.

Why this shape: a Functions timer invocation is bounded (10 minutes on Consumption, 30 by default on
Flex Consumption) and its instance can be recycled at any time, while a distributed run over a year of
transactions takes as long as it takes. So the function only submits ``retrain_job`` as one Dask task
(``fire_and_forget``: the scheduler keeps it running after the function's client disconnects) and logs
its key. The job runs on a worker with that worker's client: it lays out the window, searches, fits on
every worker, exports, judges and publishes exactly as ``run_training`` does anywhere else, and a failure
writes the same failure report, audit entry and FAILED MLflow run. The task's key names the dataset
version and the hour, so a timer that fires twice for the same data does not start a second run while
the first is still on the cluster.

The job gets the function app's settings without their secrets (the signing, admin and pseudonym keys,
Application Insights' connection string): it needs none of them, and they should not cross the network.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from shared.domain.errors import TrainingError
from training.pipeline import run_training

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.domain.settings import Settings
    from training.run import TrainingRun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submitted:
    """A run handed to the cluster: its task key and the scheduler it went to."""

    key: str
    scheduler: str
    dataset_version: str


def retrain(store: BlobStore, settings: Settings) -> TrainingRun | Submitted:
    """The run here, or, with a Dask scheduler address, the run handed to that cluster (it returns at once, the
    cluster finishes and publishes). It takes the whole settings: a handed-over run rebuilds its clients from them.
    """
    from training.distributed.cluster import LOCAL

    if settings.dask_scheduler_address and settings.dask_scheduler_address != LOCAL:
        from shared.etl.manifest import files_of_version

        version, _ = files_of_version(store, settings.dataset_name)  # pinned now: the job trains on this version
        return submit(settings, version)
    return run_training(store, config=settings.training, storage=settings.storage)


CREDENTIAL_MARKERS = ("accountkey=", "sharedaccesskey=", "sharedaccesssignature=", "sig=", "password=", "pwd=")


def without_secrets(settings: Settings) -> Settings:
    """``settings`` with every credential emptied: what may travel to the cluster (pickled to the scheduler and a
    worker, where it may be logged or dumped). Secret fields, the client's TLS key and certificate, and every
    other setting that holds a credential: a URL's password (the MLflow URI, the online store's), a connection
    string or URL with an account key, a shared access key or a SAS (the storage, Event Hubs), matched whatever
    their case. Only Azurite's published development key may travel, outside production. A worker brings its
    own credentials (``retrain_job``: its environment and managed identity)."""
    update: dict[str, Any] = {
        name: None for name in type(settings).model_fields if isinstance(getattr(settings, name), SecretStr)
    }
    update.update(dask_tls_cert_file=None, dask_tls_key_file=None)
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if not isinstance(value, str) or name in update:
            continue
        if "devstoreaccount1" in value and settings.app_env != "production":
            continue  # Azurite's key is published: it is no secret
        cleaned = _without_password(value)
        if any(marker in cleaned.lower() for marker in CREDENTIAL_MARKERS):
            update[name] = ""
        elif cleaned != value:
            update[name] = cleaned
    return settings.model_copy(update=update)


def _without_password(value: str) -> str:
    """A URL without the password of its user part (``scheme://user:pw@host`` -> ``scheme://user@host``)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        url = urlsplit(value)
        password = url.password
    except ValueError:
        return value
    if not url.scheme or password is None:
        return value
    userinfo, _, hostport = url.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(url._replace(netloc=f"{user}@{hostport}" if user else hostport))


def with_worker_credentials(settings: Settings) -> Settings:
    """On a worker: the settings that travelled, with this worker's own credentials from its environment (its
    MLflow URI, its storage connection) where it has them; its managed identity otherwise."""
    import os

    update: dict[str, Any] = {}
    if os.environ.get("MLFLOW_TRACKING_URI"):
        update["mlflow_tracking_uri"] = os.environ["MLFLOW_TRACKING_URI"]
    own = os.environ.get("DataStorage") or os.environ.get("AzureWebJobsStorage")
    if not settings.storage_connection and own:
        update["storage_connection"] = own
    return settings.model_copy(update=update) if update else settings


def submit(
    settings: Settings, dataset_version: str, *, now: datetime | None = None, timeout: float = 30.0
) -> Submitted:
    """Submit the run for ``dataset_version`` to ``DASK_SCHEDULER_ADDRESS`` and return without waiting for it."""
    from distributed import Client, fire_and_forget

    from training.distributed.cluster import LOCAL, security

    address = settings.dask_scheduler_address
    if not address or address == LOCAL:
        raise TrainingError(
            "a retraining run can only be handed over to a running Dask cluster: set DASK_SCHEDULER_ADDRESS to its "
            "address (a 'local' cluster would end with this process)"
        )
    key = f"fraudops-retrain-{dataset_version}-{(now or datetime.now(UTC)):%Y%m%dT%H}"
    try:
        client = Client(address, security=security(settings.training), timeout=timeout)
    except OSError as exc:
        raise TrainingError(f"the Dask scheduler at {address} cannot be reached ({exc}); nothing was started") from None
    try:
        future = client.submit(retrain_job, without_secrets(settings), dataset_version, key=key, pure=False)
        fire_and_forget(future)
    finally:
        client.close()
    log.info("retraining on %s handed to the Dask cluster at %s as %s", dataset_version, address, key)
    return Submitted(key, address, dataset_version)


def retrain_job(settings: Settings, dataset_version: str) -> dict[str, Any]:
    """On a Dask worker: the whole retraining run (``run_training``), with this worker's client."""
    from shared.adapters.storage import build_blob_store
    from shared.domain.results import as_dict

    settings = with_worker_credentials(settings)
    run = run_training(
        build_blob_store(settings.storage),  # this worker's own client, built once for the job
        config=settings.training,
        storage=settings.storage,
        dataset_version=dataset_version,
    )
    return {k: v for k, v in as_dict(run).items() if k in ("model_version", "promoted", "promotion_reason", "auc")}
