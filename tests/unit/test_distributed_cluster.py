"""When a retraining run goes to Dask, what travels to the cluster, and how the workers reach Blob."""

from __future__ import annotations

import pytest

from shared.domain.config import StorageConfig, TrainingConfig
from shared.domain.errors import TrainingError
from shared.domain.settings import Settings
from training.distributed.cluster import needed, security, storage_options
from training.retrain import submit, without_secrets


def _settings(**values: object) -> Settings:
    return Settings.model_validate(values)


def _training(**values: object) -> TrainingConfig:
    return _settings(**values).training


def _storage(**values: object) -> StorageConfig:
    return _settings(**values).storage


def test_a_window_goes_to_dask_over_the_limit_or_whenever_a_cluster_is_set():
    assert not needed(_training(TRAIN_DISTRIBUTED_ROWS=5000), 5000)
    assert needed(_training(DASK_SCHEDULER_ADDRESS="tcp://10.0.0.4:8786"), 10)
    with pytest.raises(TrainingError, match=r"6,000 rows, more than TRAIN_DISTRIBUTED_ROWS \(5,000\).*DASK_SCHEDULER"):
        needed(_training(TRAIN_DISTRIBUTED_ROWS=5000), 6000)
    assert not needed(_training(TRAIN_DISTRIBUTED_ROWS=None), 10**9)  # unset: no limit of its own


def test_workers_reach_storage_by_the_apps_identity_rules():
    assert storage_options(_storage(DataStorage="UseDevelopmentStorage=true")) == {
        "connection_string": "UseDevelopmentStorage=true"
    }
    endpoint = _settings(DataStorage__blobServiceUri="https://bankdata.blob.core.windows.net")
    assert storage_options(endpoint.storage) == {"account_name": "bankdata", "anon": False}  # Entra ID on the worker
    assert storage_options(_storage(AzureWebJobsStorage__accountName="one")) == {
        "account_name": "one",
        "anon": False,
    }


def test_a_tls_address_needs_every_certificate_and_names_the_missing_ones():
    assert security(_training(DASK_SCHEDULER_ADDRESS="tcp://10.0.0.4:8786")) is None
    with pytest.raises(TrainingError, match="DASK_TLS_CERT_FILE, DASK_TLS_KEY_FILE is not set"):
        security(_training(DASK_SCHEDULER_ADDRESS="tls://10.0.0.4:8786", DASK_TLS_CA_FILE="ca.pem"))


def test_the_settings_sent_to_the_cluster_carry_no_secret():
    keyed = _settings(ADMIN_KEY="a" * 40, CUSTOMER_PSEUDONYM_KEY="b" * 40, FL_ADMIN_KEY="c" * 40)
    stripped = without_secrets(keyed)
    assert keyed.admin_key is not None
    assert (stripped.admin_key, stripped.customer_pseudonym_key, stripped.fl_admin_key) == (None, None, None)
    assert stripped.storage_connection == keyed.storage_connection and stripped.model_name == keyed.model_name


def test_no_credential_travels_to_the_cluster_and_a_worker_brings_its_own(monkeypatch):
    """Issue 39, finding 14: ``without_secrets`` still shipped a connection string's account key, the MLflow URI's
    password and the client's TLS key to the scheduler and the workers. Now none travels; a worker takes its own
    from its environment (or its managed identity)."""
    from training.retrain import with_worker_credentials

    real = _settings(
        DataStorage="DefaultEndpointsProtocol=https;AccountName=bank;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net",
        MLFLOW_TRACKING_URI="postgresql://mlflow:hunter2@db.bank.internal:5432/mlflow",
        DASK_SCHEDULER_ADDRESS="tls://10.0.0.4:8786",
        DASK_TLS_CA_FILE="ca.pem",
        DASK_TLS_CERT_FILE="client.pem",
        DASK_TLS_KEY_FILE="client-key.pem",
        AUDIT_CHAIN_KEY="k" * 40,
        EVENTHUB="Endpoint=sb://bank.servicebus.windows.net/;SharedAccessKeyName=send;sharedaccesskey=aHViLWtleQ==",
        ONLINE_STORE_URL="rediss://:cmVkaXMtcHc@cache.bank.internal:6380/0",
    )
    stripped = without_secrets(real)
    travelled = stripped.model_dump_json()
    for secret in ("c2VjcmV0", "hunter2", "client-key.pem", "client.pem", "k" * 40, "aHViLWtleQ", "cmVkaXMtcHc"):
        assert secret not in travelled, secret
    assert stripped.mlflow_tracking_uri == "postgresql://mlflow@db.bank.internal:5432/mlflow"
    assert stripped.dask_tls_ca_file == "ca.pem"  # the CA is public: the worker checks the scheduler with it
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://worker:own@db.bank.internal:5432/mlflow")
    monkeypatch.setenv("DataStorage", "the worker's own connection")
    own = with_worker_credentials(stripped)
    assert (
        own.mlflow_tracking_uri.startswith("postgresql://worker:own@")
        and own.storage_connection == "the worker's own connection"
    )
    azurite = _settings()  # Azurite's published development key may travel outside production
    assert without_secrets(azurite).storage_connection == azurite.storage_connection


def test_production_refuses_a_scheduler_without_tls():
    from pydantic import ValidationError

    production = {
        "APP_ENV": "production",
        "DataStorage__blobServiceUri": "https://bank.blob.core.windows.net",
        "CUSTOMER_PSEUDONYM_KEY": "p" * 40,
        "AUDIT_CHAIN_KEY": "a" * 40,
    }
    with pytest.raises(ValidationError, match="tcp:// address"):
        _settings(**production, DASK_SCHEDULER_ADDRESS="tcp://10.0.0.4:8786")
    assert _settings(**production, DASK_SCHEDULER_ADDRESS="tls://10.0.0.4:8786").app_env == "production"
    with pytest.raises(ValidationError, match="AUDIT_CHAIN_KEY is not set"):
        _settings(**{k: v for k, v in production.items() if k != "AUDIT_CHAIN_KEY"})


def test_only_a_running_cluster_can_take_a_run_over():
    with pytest.raises(TrainingError, match="running Dask cluster"):
        submit(_settings(DASK_SCHEDULER_ADDRESS="local"), "v1")
    with pytest.raises(TrainingError, match=r"cannot be reached.*nothing was started"):
        submit(_settings(DASK_SCHEDULER_ADDRESS="tcp://127.0.0.1:9"), "v1", timeout=1)  # port 9: nothing listens
