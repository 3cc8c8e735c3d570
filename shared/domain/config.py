"""Settings grouped per concern: each service receives the config of its own concern, not the whole ``Settings``.

``Settings`` (``shared.domain.settings``) stays the one class that reads the app settings from the
environment; these views are cut from it (``settings.training``, ``settings.scoring``...) by the
composition root (``bootstrap``), once per process. A field keeps its name in every view, so a
service reads ``config.cost_fn`` where it read ``settings.cost_fn``. Secrets stay ``SecretStr``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)  # built on first use, not at import


class StorageConfig(_Config):
    """Where the data lives and how to reach it (``shared.adapters.storage``)."""

    app_env: Literal["development", "production"]
    storage_connection: str
    storage_blob_uri: str | None
    storage_account_name: str | None
    storage_credential_client_id: str | None


class EtlConfig(_Config):
    """Landing files validated against the dataset's contract (``shared.etl``)."""

    dataset_name: str
    model_name: str  # the champion whose training profile each file's report is compared with
    customer_pseudonym_key: SecretStr | None
    customer_pseudonym_previous_keys: SecretStr | None  # an erasure under an older key still keeps a customer out


class ScoringConfig(_Config):
    """Serving the champion over HTTP and recording what was served (``shared.scoring``)."""

    dataset_name: str
    model_name: str
    score_max_batch: int
    score_max_body_bytes: int
    model_refresh_seconds: float
    ort_intra_op_threads: int
    predictions_record: bool
    predictions_max_buffered: int
    predictions_flush_rows: int
    predictions_flush_seconds: float
    customer_pseudonym_key: SecretStr | None


class OnlineStoreConfig(_Config):
    """The online store of entity state that behavioural features are read from and placed in at scoring
    (``shared.adapters.online_store``, ``shared.scoring.online``)."""

    app_env: Literal["development", "production"]
    dataset_name: str
    online_store_url: str | None
    online_store_password: SecretStr | None
    online_store_unavailable: Literal["missing", "refuse"]
    storage_credential_client_id: str | None


class TrainingConfig(_Config):
    """Retraining, the gate, the Dask cluster and MLflow (``training``)."""

    dataset_name: str
    model_name: str
    cost_fn: float
    cost_fp: float
    train_seed: int
    train_num_boost_round: int
    train_time_budget_seconds: float
    train_search_trials: int
    train_search_seconds: float
    train_max_bin: int
    train_window_rows: int | None
    train_window_days: float | None
    train_compare_families: bool
    dask_scheduler_address: str | None
    dask_tls_ca_file: str | None
    dask_tls_cert_file: str | None
    dask_tls_key_file: str | None
    train_distributed_rows: int | None
    train_search_rows: int
    promotion_pr_auc_margin: float
    mlflow_tracking_uri: str
    mlflow_experiment: str
    mlflow_artifact_root: str | None
    drift_psi_threshold: float
    drift_alert_share: float


class StreamingConfig(_Config):
    """Scoring the Event Hubs stream exactly once and raising alerts (``shared.streaming``)."""

    dataset_name: str
    model_name: str
    eventhub_connection: str | None
    eventhub_namespace: str | None
    eventhub_name: str
    alerts_hub_name: str
    stream_retry_attempts: int
    stream_retry_backoff_seconds: float
    deadletter_spool_dir: str
    ort_intra_op_threads: int
    customer_pseudonym_key: SecretStr | None


class FederatedConfig(_Config):
    """Federated rounds: banks' keys, the aggregator, privacy, and the round's close (``shared.federated``)."""

    dataset_name: str
    model_name: str
    key_vault_url: str | None
    fl_bank_keys: SecretStr | None
    fl_admin_key: SecretStr | None
    fl_experiment: str
    fl_min_clients: int
    fl_round_deadline_seconds: float
    fl_mode: Literal["secure", "visible"]
    fl_aggregator: Literal["fedavg", "median", "trimmed_mean"] | None
    fl_phase_seconds: float
    fl_server_signing_key: SecretStr | None
    fl_trim_beta: float | None
    fl_clip_bound: float | None
    fl_noise_multiplier: float | None
    fl_dp_delta: float
    fl_aggregation_lease_seconds: float
    fl_max_weight_share: float
    fl_max_body_bytes: int
    cost_fn: float
    cost_fp: float
    promotion_pr_auc_margin: float
    mlflow_tracking_uri: str
    mlflow_experiment: str  # a published round's model is a run of the retraining experiment
    mlflow_artifact_root: str | None


class MonitoringConfig(_Config):
    """The daily run: realised performance, live drift and alerts (``shared.monitoring``)."""

    dataset_name: str
    model_name: str
    monitor_schedule: str
    monitor_lookback_days: int
    drift_psi_threshold: float
    drift_alert_share: float
    fl_experiment: str
    cost_fn: float
    cost_fp: float


class GovernanceConfig(_Config):
    """Admin routes, pseudonyms, GDPR access and erasure, the registry (``shared.governance``)."""

    dataset_name: str
    model_name: str
    admin_key: SecretStr | None
    customer_pseudonym_key: SecretStr | None
    customer_pseudonym_previous_keys: SecretStr | None
    audit_chain_key: SecretStr | None  # also read by every AuditLog from the environment (one setting, one name)
    audit_anchor_blob_uri: str | None
    audit_anchor_connection: SecretStr | None
    cost_fn: float
    cost_fp: float


class AdminAccessConfig(_Config):
    """Who may call the admin routes (``shared.governance.admin_access``): people signed in with Entra ID holding
    the route's app role; the shared admin keys only outside production."""

    app_env: Literal["development", "production"]
    admin_key: SecretStr | None
    fl_admin_key: SecretStr | None
    admin_entra_tenant_id: str | None
    admin_entra_audience: str | None
    admin_entra_role: str
    fl_admin_entra_role: str
    admin_entra_jwks_url: str | None

    @property
    def audiences(self) -> tuple[str, ...]:
        """The accepted ``aud`` values (``ADMIN_ENTRA_AUDIENCE``, comma-separated)."""
        return tuple(a.strip() for a in (self.admin_entra_audience or "").split(",") if a.strip())

    @property
    def entra(self) -> bool:
        """Whether Entra ID admin sign-in is configured."""
        return bool(self.admin_entra_tenant_id and self.audiences)


class TelemetryConfig(_Config):
    """Where spans and metrics go (``shared.adapters.telemetry``)."""

    telemetry_exporter: Literal["auto", "azure-monitor", "console", "none"]
    applicationinsights_connection_string: SecretStr | None


CONCERNS: dict[str, type[_Config]] = {
    "storage": StorageConfig,
    "etl": EtlConfig,
    "scoring": ScoringConfig,
    "online_store": OnlineStoreConfig,
    "training": TrainingConfig,
    "streaming": StreamingConfig,
    "federated": FederatedConfig,
    "monitoring": MonitoringConfig,
    "governance": GovernanceConfig,
    "admin_access": AdminAccessConfig,
    "telemetry": TelemetryConfig,
}

# Settings no service reads: the Functions host reads them at registration (``%RETRAIN_SCHEDULE%``, the blob
# trigger's source), so they belong to no concern's view.
HOST_LEVEL: tuple[str, ...] = ("retrain_schedule", "blob_trigger_source")
