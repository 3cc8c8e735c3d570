"""Application settings: one class, read from the environment through a cached getter.

Every field is an app setting in Azure and an entry of ``local.settings.json.example``.
Nothing here runs at import time; ``get_settings()`` builds the object on first use, and the
composition root (``shared.bootstrap``) cuts it into one config per concern for the services.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.domain.config import (
    AdminAccessConfig,
    EtlConfig,
    FederatedConfig,
    GovernanceConfig,
    MonitoringConfig,
    OnlineStoreConfig,
    ScoringConfig,
    StorageConfig,
    StreamingConfig,
    TelemetryConfig,
    TrainingConfig,
)

DEV_STORAGE = "UseDevelopmentStorage=true"
KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("
EXAMPLE_SECRETS = (
    "local-admin-key",
    "local-governance-key",
    "local-key-a",
    "local-key-b",
    "local-key-c",
)  # local.settings.json.example

log = logging.getLogger(__name__)


class Settings(BaseSettings):
    """Every setting the app reads. Names are the app-setting names, case-sensitive."""

    model_config = SettingsConfigDict(
        case_sensitive=True,
        extra="ignore",
        populate_by_name=True,
        frozen=True,
        env_ignore_empty=True,  # "" in local.settings.json means "unset"
        hide_input_in_errors=True,  # an error names the setting, never echoes the values (secrets among them)
        defer_build=True,  # its validator is built when the settings are first read, not at import (cold start)
    )

    app_env: Literal["development", "production"] = Field(
        default="development",
        validation_alias="APP_ENV",
        description="'production' refuses development defaults such as Azurite storage.",
    )
    storage_connection: str = Field(
        default=DEV_STORAGE,
        validation_alias=AliasChoices("DataStorage", "AzureWebJobsStorage"),
        description="The data's storage connection string (the blob trigger's connection, DataStorage); "
        "falls back to the host's AzureWebJobsStorage; Azurite by default.",
    )
    storage_blob_uri: str | None = Field(
        default=None,
        validation_alias="DataStorage__blobServiceUri",
        description="Identity-based data storage (Azure): the data account's blob endpoint; wins over the rest.",
    )
    storage_account_name: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AzureWebJobsStorage__accountName"),
        description="Identity-based storage in the host's own account (a one-account deployment); "
        "wins over the connection string.",
    )
    storage_credential_client_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DataStorage__clientId", "AzureWebJobsStorage__clientId"),
        description="Client id of the user-assigned managed identity used for storage.",
    )
    dataset_name: str = Field(default="creditcard", validation_alias="DATASET_NAME")
    model_name: str = Field(default="fraud", validation_alias="MODEL_NAME")
    retrain_schedule: str = Field(default="0 0 2 * * *", validation_alias="RETRAIN_SCHEDULE")
    blob_trigger_source: Literal["LogsAndContainerScan", "EventGrid"] = Field(
        default="LogsAndContainerScan",
        validation_alias="BLOB_TRIGGER_SOURCE",
    )

    # Training
    cost_fn: float = Field(default=10.0, gt=0, validation_alias="COST_FN")
    cost_fp: float = Field(default=1.0, gt=0, validation_alias="COST_FP")
    train_seed: int = Field(default=42, validation_alias="TRAIN_SEED")
    train_num_boost_round: int = Field(default=1500, ge=10, validation_alias="TRAIN_NUM_BOOST_ROUND")
    train_time_budget_seconds: float = Field(default=600.0, gt=0, validation_alias="TRAIN_TIME_BUDGET_SECONDS")
    train_search_trials: int = Field(default=20, ge=1, validation_alias="TRAIN_SEARCH_TRIALS")
    train_search_seconds: float = Field(default=180.0, gt=0, validation_alias="TRAIN_SEARCH_SECONDS")
    train_max_bin: int = Field(
        default=4095,
        ge=15,
        le=65535,
        validation_alias="TRAIN_MAX_BIN",
        description="LightGBM bins per feature (its default is 255); more bins keep the tails' splits exact.",
    )
    train_window_rows: int | None = Field(
        default=1_000_000,
        ge=1000,
        validation_alias="TRAIN_WINDOW_ROWS",
        description="Newest labelled rows a retrain reads (whole files, newest first); bounds its memory.",
    )
    train_window_days: float | None = Field(
        default=None,
        gt=0,
        validation_alias="TRAIN_WINDOW_DAYS",
        description="Also leave out files ingested more than this many days before the newest; unset: no limit.",
    )
    train_compare_families: bool = Field(
        default=True,
        validation_alias="TRAIN_COMPARE_FAMILIES",
        description="Compare HistGradientBoosting, extra-trees and an MLP on the same folds (the report's table).",
    )
    dask_scheduler_address: str | None = Field(
        default=None,
        validation_alias="DASK_SCHEDULER_ADDRESS",
        description="Retrain on this Dask cluster (tcp:// or tls://host:8786; 'local' starts one on this machine); "
        "unset: only a window over TRAIN_DISTRIBUTED_ROWS needs one.",
    )
    dask_tls_ca_file: str | None = Field(
        default=None, validation_alias="DASK_TLS_CA_FILE", description="The Dask cluster's CA (tls:// addresses)."
    )
    dask_tls_cert_file: str | None = Field(
        default=None, validation_alias="DASK_TLS_CERT_FILE", description="This client's certificate for tls://."
    )
    dask_tls_key_file: str | None = Field(
        default=None, validation_alias="DASK_TLS_KEY_FILE", description="This client's private key for tls://."
    )
    train_distributed_rows: int | None = Field(
        default=2_000_000,
        ge=1000,
        validation_alias="TRAIN_DISTRIBUTED_ROWS",
        description="A training window of more rows is retrained on the Dask cluster (DASK_SCHEDULER_ADDRESS); "
        "unset: only when an address is set.",
    )
    train_search_rows: int = Field(
        default=250_000,
        ge=1000,
        validation_alias="TRAIN_SEARCH_ROWS",
        description="Distributed retraining: rows of the time-ordered sample the configuration search runs on.",
    )
    promotion_pr_auc_margin: float = Field(default=0.01, ge=0, validation_alias="PROMOTION_PR_AUC_MARGIN")
    mlflow_tracking_uri: str = Field(
        default="sqlite:///.mlflow/mlflow.db",
        validation_alias="MLFLOW_TRACKING_URI",
        description="MLflow tracking and registry; the default is an embedded SQLite file (no server).",
    )
    mlflow_experiment: str = Field(default="fraud-retraining", validation_alias="MLFLOW_EXPERIMENT")
    mlflow_artifact_root: str | None = Field(
        default=None,
        validation_alias="MLFLOW_ARTIFACT_ROOT",
        description="Where new MLflow experiments keep artifacts (wasbs://mlflow@<account>.blob.core.windows.net/ in "
        "Azure); unset: beside the SQLite file.",
    )
    drift_psi_threshold: float = Field(default=0.2, gt=0, validation_alias="DRIFT_PSI_THRESHOLD")
    drift_alert_share: float = Field(default=0.3, gt=0, le=1, validation_alias="DRIFT_ALERT_SHARE")

    # Streaming
    eventhub_connection: str | None = Field(
        default=None,
        validation_alias="EVENTHUB",
        description="Event Hubs connection string (the trigger's connection); unset means local replay only.",
    )
    eventhub_namespace: str | None = Field(
        default=None,
        validation_alias="EVENTHUB__fullyQualifiedNamespace",
        description="Identity-based Event Hubs (Azure): the namespace host; wins over the connection string.",
    )
    eventhub_name: str = Field(default="transactions", validation_alias="EVENTHUB_NAME")
    alerts_hub_name: str = Field(default="fraud-alerts", validation_alias="FRAUD_ALERTS_HUB")
    stream_retry_attempts: int = Field(default=4, ge=1, le=10, validation_alias="STREAM_RETRY_ATTEMPTS")
    stream_retry_backoff_seconds: float = Field(default=0.5, gt=0, validation_alias="STREAM_RETRY_BACKOFF_SECONDS")
    deadletter_spool_dir: str = Field(
        default="/tmp/fraudops-deadletter",
        validation_alias="DEADLETTER_SPOOL_DIR",
        description="Where a batch goes when even deadletter/ cannot be reached (logged at CRITICAL).",
    )

    # Federated learning
    key_vault_url: str | None = Field(
        default=None,
        validation_alias="KEY_VAULT_URL",
        description="Key Vault with the banks' keys (fl-bank-<id>); unset: FL_BANK_KEYS is used.",
    )
    fl_bank_keys: SecretStr | None = Field(
        default=None,
        validation_alias="FL_BANK_KEYS",
        description='Local only: JSON {"bank id": "key"} when no Key Vault is configured.',
    )
    fl_admin_key: SecretStr | None = Field(default=None, validation_alias="FL_ADMIN_KEY")
    customer_pseudonym_key: SecretStr | None = Field(
        default=None,
        validation_alias="CUSTOMER_PSEUDONYM_KEY",
        description="Key of the HMAC that replaces customer ids before anything is stored; unset: a development key.",
    )
    customer_pseudonym_previous_keys: SecretStr | None = Field(
        default=None,
        validation_alias="CUSTOMER_PSEUDONYM_PREVIOUS_KEYS",
        description='The keys CUSTOMER_PSEUDONYM_KEY replaced, a JSON list ("v1:..." or a bare first key): access '
        "and erasure look for a customer under each, so a rotation orphans nothing.",
    )
    audit_chain_key: SecretStr | None = Field(
        default=None,
        validation_alias="AUDIT_CHAIN_KEY",
        description="Key that signs each audit line (HMAC), so whoever may append without it cannot forge one; "
        "unset: lines are hashed, not signed (production refuses to start without it).",
    )
    audit_anchor_blob_uri: str | None = Field(
        default=None,
        validation_alias="AUDIT_ANCHOR_BLOB_URI",
        description="Blob endpoint of a second storage account (identity-based) where the daily run anchors the "
        "audit chain's head and compares with it; unset: no anchor outside the data account.",
    )
    audit_anchor_connection: SecretStr | None = Field(
        default=None,
        validation_alias="AUDIT_ANCHOR_CONNECTION",
        description="Local runs: a connection string for the anchor account (AUDIT_ANCHOR_BLOB_URI in Azure).",
    )
    admin_key: SecretStr | None = Field(
        default=None,
        validation_alias="ADMIN_KEY",
        description="Key of the governance admin routes (/api/admin/...); unset: those routes answer 401.",
    )
    admin_entra_tenant_id: str | None = Field(
        default=None,
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        validation_alias="ADMIN_ENTRA_TENANT_ID",
        description="Entra ID tenant (its id) whose people may call the admin routes with a bearer token; with "
        "ADMIN_ENTRA_AUDIENCE. Production accepts nothing else (admin keys are for local runs).",
    )
    admin_entra_audience: str | None = Field(
        default=None,
        validation_alias="ADMIN_ENTRA_AUDIENCE",
        description="The admin app registration's application ID URI and/or client id (comma-separated): a token's "
        "'aud' must be one of them. The first is what the CLI asks a token for.",
    )
    admin_entra_role: str = Field(
        default="Fraudops.Admin",
        min_length=1,
        validation_alias="ADMIN_ENTRA_ROLE",
        description="The app role (in the token's 'roles') the governance admin routes (/api/admin/...) demand.",
    )
    fl_admin_entra_role: str = Field(
        default="Fraudops.FederatedAdmin",
        min_length=1,
        validation_alias="FL_ADMIN_ENTRA_ROLE",
        description="The app role the federated admin routes (aggregate, a round's banks) demand: its own duty, as "
        "FL_ADMIN_KEY was its own key.",
    )
    admin_entra_jwks_url: str | None = Field(
        default=None,
        validation_alias="ADMIN_ENTRA_JWKS_URL",
        description="Where the tenant's signing keys are read; unset: "
        "https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys (tests point it at a local server).",
    )
    fl_experiment: str = Field(default="fraud-lr", validation_alias="FL_EXPERIMENT")
    fl_min_clients: int = Field(default=3, ge=1, validation_alias="FL_MIN_CLIENTS")
    fl_round_deadline_seconds: float = Field(default=3600.0, gt=0, validation_alias="FL_ROUND_DEADLINE_SECONDS")
    fl_mode: Literal["secure", "visible"] = Field(
        default="secure",
        validation_alias="FL_MODE",
        description="secure (the default): secure aggregation, the server learns only the sum of the banks' "
        "clipped updates, never one bank's; visible: the server stores each update and may combine them with a "
        "robust aggregator (docs: what each mode defends against).",
    )
    fl_aggregator: Literal["fedavg", "median", "trimmed_mean"] | None = Field(
        default=None,
        validation_alias="FL_AGGREGATOR",
        description="How the banks' updates are combined. Unset: fedavg of clipped steps in secure mode (the only "
        "one a secure sum allows), trimmed_mean in visible mode. median and trimmed_mean, which one bank cannot "
        "steer at a quorum of 3 or more, need FL_MODE=visible; fedavg in visible mode only with FL_CLIP_BOUND.",
    )
    fl_phase_seconds: float = Field(
        default=600.0,
        gt=0,
        validation_alias="FL_PHASE_SECONDS",
        description="Secure rounds: how long a phase waits for silent banks before it goes on without them "
        "(dropouts), as long as more than half the members answered.",
    )
    fl_server_signing_key: SecretStr | None = Field(
        default=None,
        validation_alias="FL_SERVER_SIGNING_KEY",
        description="Secret (at least 32 characters) the Ed25519 key that signs each served global model is derived "
        "from; banks pin its public half (fraudops federated server-key) in their roster and refuse a model it did "
        "not sign. Unset: models are served unsigned.",
    )
    fl_trim_beta: float | None = Field(
        default=None,
        ge=0,
        lt=0.5,
        validation_alias="FL_TRIM_BETA",
        description="Share trimmed at each end by trimmed_mean; unset: 20%, and at least one update at the quorum.",
    )
    fl_clip_bound: float | None = Field(
        default=None,
        gt=0,
        validation_alias="FL_CLIP_BOUND",
        description="L2 bound each bank's step is clipped to (by the bank in secure mode, by the server in visible "
        "mode). Unset in secure mode: adaptive, each round's bound follows the median of the banks' step norms.",
    )
    fl_noise_multiplier: float | None = Field(
        default=None,
        gt=0,
        validation_alias="FL_NOISE_MULTIPLIER",
        description="Differential privacy: Gaussian noise of this multiple of FL_CLIP_BOUND on the sum of the "
        "banks' steps (needs FL_CLIP_BOUND); in secure mode each bank adds its share before masking.",
    )
    fl_dp_delta: float = Field(default=1e-5, gt=0, lt=1, validation_alias="FL_DP_DELTA")
    fl_aggregation_lease_seconds: float = Field(
        default=300.0,
        gt=0,
        validation_alias="FL_AGGREGATION_LEASE_SECONDS",
        description="How long a caller holds a round it aggregates before another may resume the close.",
    )
    fl_max_weight_share: float = Field(default=0.5, gt=0, le=1, validation_alias="FL_MAX_WEIGHT_SHARE")
    fl_max_body_bytes: int = Field(default=32_000_000, ge=1024, validation_alias="FL_MAX_BODY_BYTES")

    # Scoring
    score_max_batch: int = Field(default=1000, ge=1, validation_alias="SCORE_MAX_BATCH")
    score_max_body_bytes: int = Field(default=2_000_000, ge=1024, validation_alias="SCORE_MAX_BODY_BYTES")
    model_refresh_seconds: float = Field(default=30.0, ge=0, validation_alias="MODEL_REFRESH_SECONDS")
    ort_intra_op_threads: int = Field(default=1, ge=1, validation_alias="ORT_INTRA_OP_THREADS")

    # The online store of entity state (behavioural features at scoring)
    online_store_url: str | None = Field(
        default=None,
        validation_alias="ONLINE_STORE_URL",
        description="Redis (rediss://host:port for Azure Managed Redis, reached with the app identity's Entra ID "
        "token unless ONLINE_STORE_PASSWORD is set); unset in development: an in-process store. Only read when "
        "the dataset's contract declares behavioural features.",
    )
    online_store_password: SecretStr | None = Field(default=None, validation_alias="ONLINE_STORE_PASSWORD")
    online_store_unavailable: Literal["missing", "refuse"] = Field(
        default="missing",
        validation_alias="ONLINE_STORE_UNAVAILABLE",
        description="When the online store cannot be reached: score with the behavioural features missing and say "
        "so (missing), or answer 503 (refuse).",
    )

    # Recording what was served, and telemetry
    predictions_record: bool = Field(
        default=True,
        validation_alias="PREDICTIONS_RECORD",
        description="Record every prediction served over HTTP to predictions/ (off the hot path, in batches).",
    )
    predictions_max_buffered: int = Field(
        default=100_000,
        ge=1,
        validation_alias="PREDICTIONS_MAX_BUFFERED",
        description="Predictions held in memory while storage is slow; beyond this, new ones are dropped and counted.",
    )
    predictions_flush_rows: int = Field(default=5_000, ge=1, validation_alias="PREDICTIONS_FLUSH_ROWS")
    predictions_flush_seconds: float = Field(default=5.0, gt=0, validation_alias="PREDICTIONS_FLUSH_SECONDS")
    monitor_schedule: str = Field(
        default="0 30 3 * * *",
        validation_alias="MONITOR_SCHEDULE",
        description="NCRONTAB of the daily monitoring run (it judges the previous UTC day).",
    )
    monitor_lookback_days: int = Field(
        default=30,
        ge=1,
        le=400,
        validation_alias="MONITOR_LOOKBACK_DAYS",
        description="Days of served predictions that realised performance covers (labels arrive weeks late).",
    )
    telemetry_exporter: Literal["auto", "azure-monitor", "console", "none"] = Field(
        default="auto",
        validation_alias="TELEMETRY_EXPORTER",
        description="Where spans and metrics go: auto is Azure Monitor when APPLICATIONINSIGHTS_CONNECTION_STRING "
        "is set (or the Functions worker's own set-up), else nowhere.",
    )
    applicationinsights_connection_string: SecretStr | None = Field(
        default=None,
        validation_alias="APPLICATIONINSIGHTS_CONNECTION_STRING",
        description="Application Insights (read by the host too); unset locally.",
    )

    # --- the per-concern views the composition root hands each service (shared.domain.config) ---
    def _view[C: BaseModel](self, cls: type[C]) -> C:
        return cls.model_validate({name: getattr(self, name) for name in cls.model_fields})

    @property
    def storage(self) -> StorageConfig:
        return self._view(StorageConfig)

    @property
    def etl(self) -> EtlConfig:
        return self._view(EtlConfig)

    @property
    def scoring(self) -> ScoringConfig:
        return self._view(ScoringConfig)

    @property
    def online_store(self) -> OnlineStoreConfig:
        return self._view(OnlineStoreConfig)

    @property
    def training(self) -> TrainingConfig:
        return self._view(TrainingConfig)

    @property
    def streaming(self) -> StreamingConfig:
        return self._view(StreamingConfig)

    @property
    def federated(self) -> FederatedConfig:
        return self._view(FederatedConfig)

    @property
    def monitoring(self) -> MonitoringConfig:
        return self._view(MonitoringConfig)

    @property
    def governance(self) -> GovernanceConfig:
        return self._view(GovernanceConfig)

    @property
    def admin_access(self) -> AdminAccessConfig:
        return self._view(AdminAccessConfig)

    @property
    def telemetry(self) -> TelemetryConfig:
        return self._view(TelemetryConfig)

    @field_validator(
        "fl_admin_key",
        "admin_key",
        "fl_bank_keys",
        "fl_server_signing_key",
        "customer_pseudonym_key",
        "customer_pseudonym_previous_keys",
        "audit_chain_key",
        "audit_anchor_connection",
        "online_store_password",
        mode="before",
    )
    @classmethod
    def _unresolved_key_vault_reference_is_unset(cls, value: object) -> object:
        """App Service leaves a Key Vault reference it cannot resolve as its literal text; never use that as a key."""
        if isinstance(value, str) and value.startswith(KEY_VAULT_REFERENCE):
            log.error(
                "a secret setting is an unresolved Key Vault reference (%s): is the secret there and does "
                "the app's identity have 'Key Vault Secrets User'? Treating it as unset",
                value[:120],
            )
            return None
        return value

    @field_validator("fl_server_signing_key")
    @classmethod
    def _signing_secret_is_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("FL_SERVER_SIGNING_KEY must be at least 32 characters of randomness")
        return value

    @field_validator("customer_pseudonym_previous_keys")
    @classmethod
    def _previous_keys_are_a_list(cls, value: SecretStr | None) -> SecretStr | None:
        """A JSON list of keys; said without echoing them."""
        import json

        if value is None:
            return value
        try:
            keys = json.loads(value.get_secret_value())
        except ValueError:
            keys = None
        if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
            raise ValueError('CUSTOMER_PSEUDONYM_PREVIOUS_KEYS must be a JSON list of keys, e.g. ["v1:old key"]')
        return value

    @model_validator(mode="after")
    def _entra_admin_is_whole(self) -> Settings:
        """Admin sign-in needs both the tenant and the audience: one alone would accept no token, silently."""
        if bool(self.admin_entra_tenant_id) != bool(self.admin_entra_audience):
            raise ValueError(
                "ADMIN_ENTRA_TENANT_ID and ADMIN_ENTRA_AUDIENCE go together: set both for Entra ID admin sign-in, "
                "or neither"
            )
        return self

    @model_validator(mode="after")
    def _refuse_dev_defaults_in_production(self) -> Settings:
        if (
            self.app_env == "production"
            and not (self.storage_blob_uri or self.storage_account_name)
            and (self.storage_connection == DEV_STORAGE or "devstoreaccount1" in self.storage_connection)
        ):
            raise ValueError("APP_ENV=production but storage points at Azurite; set DataStorage__blobServiceUri")
        if self.app_env == "production":
            if self.fl_bank_keys is not None:
                raise ValueError("APP_ENV=production but FL_BANK_KEYS is set; bank keys belong in Key Vault")
            if self.customer_pseudonym_key is None:
                raise ValueError(
                    "APP_ENV=production but CUSTOMER_PSEUDONYM_KEY is not set: customer ids would be pseudonymised "
                    "with the development key"
                )
            if (self.dask_scheduler_address or "").startswith("tcp://"):
                raise ValueError(
                    "APP_ENV=production but DASK_SCHEDULER_ADDRESS is a tcp:// address: the training data and the job "
                    "would cross the network unencrypted and unauthenticated; use tls:// with DASK_TLS_* files"
                )
            if self.audit_chain_key is None:
                raise ValueError(
                    "APP_ENV=production but AUDIT_CHAIN_KEY is not set: audit lines would be hashed, not signed, and "
                    "anyone who may append to the audit container could write one that verifies"
                )
            for name, key in (("FL_ADMIN_KEY", self.fl_admin_key), ("ADMIN_KEY", self.admin_key)):
                if (key.get_secret_value() if key else "") in EXAMPLE_SECRETS:
                    raise ValueError(f"APP_ENV=production but {name} is the example key; set a secret of your own")
        return self


def load_settings() -> Settings:
    """The settings from the environment, read now (the composition root reads them once per process).

    A refused configuration is a ``ConfigurationError`` naming each setting and the rule it breaks, and
    nothing else: pydantic's own error carries the input (every setting, secrets included) for whoever
    logs it.
    """
    from shared.domain.errors import ConfigurationError

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_context=False, include_url=False)
        )
        raise ConfigurationError(f"the app settings are refused: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once by :func:`load_settings` (``shared.bootstrap.reset`` forgets them)."""
    return load_settings()
