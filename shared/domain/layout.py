"""The storage layout: every container and every blob path the services write for one another, in one home.

The services talk through Blob: the ETL writes curated Parquet and its manifest for training, training
writes models and reports for the scorer and the monitor, the stream writes its ledger, the federated
rounds their state. Each container is named here once, and each kind of path is a function here, so
no other module spells a container or a path prefix (``tests/test_layout.py`` fails on a string
literal naming a container elsewhere). The functions are pure: no I/O, no SDK.

A path function returns the blob name *inside* its container; ``display`` joins the two for a report
or a log line (``curated/creditcard/v3/...``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

# --- the containers --------------------------------------------------------------------------------
RAW: Final = "raw"  # landing files (the blob trigger's source)
QUARANTINE: Final = "quarantine"  # refused files and rows, with their reasons
CURATED: Final = "curated"  # versioned Parquet, the datasets' manifests, labels, erasure markers
MODELS: Final = "models"  # model versions, their manifests and cards, the champion pointer
REPORTS: Final = "reports"  # run reports (ETL, training, drift, monitoring, federated, audit)
SCORED: Final = "scored"  # the stream's exactly-once ledger and scored events
PREDICTIONS: Final = "predictions"  # what the HTTP routes served, and their request counts
MLFLOW: Final = "mlflow"  # MLflow's artifact store in Azure
ALERTS: Final = "alerts"  # fraud alerts raised by the stream
DEADLETTER: Final = "deadletter"  # stream events that could not be scored, byte for byte
FEDERATED: Final = "federated"  # rounds' state, updates, global models, nonces
AUDIT: Final = "audit"  # the hash-chained audit trail
ANCHORS: Final = "anchors"  # in a second storage account: the audit chain's heads, as the daily run saw them

CONTAINERS: Final = (
    RAW,
    QUARANTINE,
    CURATED,
    MODELS,
    REPORTS,
    SCORED,
    PREDICTIONS,
    MLFLOW,
    ALERTS,
    DEADLETTER,
    FEDERATED,
    AUDIT,
)


def display(container: str, name: str) -> str:
    """``container/name``, as reports, logs and error messages show a blob."""
    return f"{container}/{name}"


# --- raw ----------------------------------------------------------------------------------------------
RAW_LABELS_PREFIX: Final = "labels/"  # delayed labels land here, with a contract of their own


# --- quarantine (the ETL's refusals) ------------------------------------------------------------------


QUARANTINE_ROWS_COLUMNS: Final = ("line", "reason", "raw")  # a file's refused rows: the header of their CSV


def quarantine_rows(dataset: str, tag: str) -> str:
    """The refused rows of one processed file (CSV: line, reason, row) in ``quarantine``."""
    return f"{dataset}/rows/{tag}.csv"


def quarantine_file(dataset: str, version: str, name: str) -> str:
    """A whole refused file, byte for byte, in ``quarantine`` (``version``: its upload time and ETag)."""
    return f"{dataset}/files/{version}/{name}"


def is_quarantined_file(name: str) -> bool:
    """Whether a blob of ``quarantine`` is a whole refused file (``quarantine_file``), kept as the bank sent it."""
    parts = name.split("/")
    return len(parts) >= 4 and parts[1] == "files"


# --- curated ------------------------------------------------------------------------------------------
LABELS_PREFIX: Final = "labels/"  # curated labels, by the ETL's label path
ERASURES_PREFIX: Final = "_erasures/"  # one marker (the erasure plan) per erased pseudonym
ERASURE_REQUESTS_PREFIX: Final = "_erasure_requests/"  # one empty blob per erasure asked for and not finished
ERASURE_LOCK: Final = "_erasure.lock"  # held by the one erasure running (erasures are serialised)
CONTRACTS_PREFIX: Final = "_contracts/"  # dataset contracts a bank uploaded (fraudops contract upload)


def dataset_manifest(dataset: str) -> str:
    """The dataset's manifest in ``curated``: its versions and their parts."""
    return f"{dataset}/_manifest.json"


def curated_partition(dataset: str, ingest_date: str) -> str:
    """The folder of the parts ingested on one UTC day (``YYYY-MM-DD``) in ``curated``."""
    return f"{dataset}/ingest_date={ingest_date}"


def curated_part(partition: str, stem: str, sha256: str) -> str:
    """One curated Parquet part in ``curated``, named by its source file's stem and its content."""
    return f"{partition}/{stem}-{sha256[:16]}.parquet"


def curated_labels(tag: str) -> str:
    """The valid rows of one delayed-labels file (Parquet) in ``curated``."""
    return f"{LABELS_PREFIX}{tag}.parquet"


def stored_contract(dataset: str) -> str:
    """A dataset's uploaded contract file (in ``curated``)."""
    return f"{CONTRACTS_PREFIX}{dataset}.yaml"


def erasure_marker(pseudonym: str) -> str:
    """The erasure plan of one pseudonym in ``curated``."""
    return f"{ERASURES_PREFIX}{pseudonym}.json"


def erasure_request(pseudonym: str) -> str:
    """An erasure asked for and not finished yet, in ``curated`` (deleted when it is done)."""
    return f"{ERASURE_REQUESTS_PREFIX}{pseudonym}"


# --- models -------------------------------------------------------------------------------------------
CHAMPION: Final = "champion.json"
DEPRECATED: Final = "_deprecated"  # not a version name (those start with a letter or digit)


def model_file(model_name: str, version: str, filename: str) -> str:
    """A file of one model version in ``models`` (the caller checks ``version`` is a version name)."""
    return f"{model_name}/{version}/{filename}"


def champion_pointer(model_name: str) -> str:
    """The champion pointer of one model name in ``models``."""
    return f"{model_name}/{CHAMPION}"


def deprecation(model_name: str, version: str) -> str:
    """The create-only deprecation record of one version in ``models``."""
    return f"{model_name}/{DEPRECATED}/{version}.json"


# --- reports ------------------------------------------------------------------------------------------
ETL_REPORTS: Final = "etl/"
TRAINING_REPORTS: Final = "training/"
DRIFT_REPORTS: Final = "drift/"
MONITORING_REPORTS: Final = "monitoring/"
FEDERATED_REPORTS: Final = "federated/"
AUDIT_REPORTS: Final = "audit/"


def etl_report(dataset: str, tag: str, ext: str = "json") -> str:
    """One ETL run's report in ``reports``."""
    return f"{ETL_REPORTS}{dataset}/{tag}.{ext}"


def etl_reports(dataset: str | None = None) -> str:
    """What the ETL reports of one dataset (of every dataset: ``None``) start with in ``reports``."""
    return f"{ETL_REPORTS}{dataset}/" if dataset is not None else ETL_REPORTS


def training_report(name: str, ext: str = "json") -> str:
    """One retraining run's report in ``reports`` (``name`` is the model version or the failed run's name)."""
    return f"{TRAINING_REPORTS}{name}.{ext}"


def training_report_file(version: str, filename: str) -> str:
    """A table beside one retraining run's report in ``reports`` (``models_comparison.csv``...)."""
    return f"{TRAINING_REPORTS}{version}/{filename}"


def drift_report(name: str, ext: str = "json") -> str:
    """One drift check's report in ``reports``."""
    return f"{DRIFT_REPORTS}{name}.{ext}"


def monitoring_report(day: str, ext: str = "json") -> str:
    """The daily monitoring report of one UTC day in ``reports``."""
    return f"{MONITORING_REPORTS}{day}.{ext}"


def federated_report(version: str) -> str:
    """The outcome of one published federated round in ``reports``."""
    return f"{FEDERATED_REPORTS}{version}.json"


def audit_report(month: str, ext: str = "json") -> str:
    """The monthly audit report in ``reports``."""
    return f"{AUDIT_REPORTS}{month}.{ext}"


# --- audit --------------------------------------------------------------------------------------------
AUDIT_CHAIN_PREFIX: Final = "chain/"


def anchored_heads(year: str) -> str:
    """The audit heads anchored in one year, an append blob in ``anchors`` (the second account)."""
    return f"audit-heads/{year}.jsonl"


def audit_part(at: datetime) -> str:
    """The audit chain's part for the month of ``at`` in ``audit``."""
    return f"{AUDIT_CHAIN_PREFIX}{at:%Y-%m}.jsonl"


# --- predictions --------------------------------------------------------------------------------------
REQUESTS_PREFIX: Final = "_requests/"  # per-instance request counts beside the recorded predictions


def predictions_day(day: str) -> str:
    """What every HTTP record file of one UTC day (``YYYY-MM-DD``) starts with in ``predictions``."""
    return f"date={day}/"


def prediction_records(day: str, name: str) -> str:
    """One flush's records of one UTC day in ``predictions`` (``name``: source, time, instance, sequence)."""
    return f"{predictions_day(day)}{name}.parquet"


def request_counts_day(day: str) -> str:
    """What every request-count file of one UTC day starts with in ``predictions``."""
    return f"{REQUESTS_PREFIX}date={day}/"


def request_counts(day: str, name: str) -> str:
    """One flush's request counts of one UTC day in ``predictions`` (``name``: instance, sequence)."""
    return f"{request_counts_day(day)}{name}.json"


# --- federated ----------------------------------------------------------------------------------------
NONCES_PREFIX: Final = "_nonces/"  # storage.bicep deletes them after a day
FEDERATED_KIND: Final = "federated"  # the manifest ``kind`` of a federated round's model (a word, not a container)


def nonce(bank: str, value: str) -> str:
    """A used request nonce of one bank in ``federated``."""
    return f"{NONCES_PREFIX}{bank}/{value}"


def round_prefix(experiment: str) -> str:
    """What every round's folder of an experiment starts with in ``federated``."""
    return f"{experiment}/round-"


def round_state(experiment: str, n: int) -> str:
    """One round's state document in ``federated``."""
    return f"{experiment}/round-{n}/state.json"


def round_update(experiment: str, n: int, bank: str, digest: str) -> str:
    """One bank's update to a round in ``federated`` (content-addressed)."""
    return f"{experiment}/round-{n}/updates/{bank}-{digest[:32]}.safetensors"


def round_phase_blob(experiment: str, n: int, phase: str, bank: str, digest: str) -> str:
    """What one bank sent in a secure round's phase (``shares``, ``masked``, ``unmask``), content-addressed."""
    return f"{experiment}/round-{n}/{phase}/{bank}-{digest[:32]}.bin"


def global_model(experiment: str, n: int) -> str:
    """The global parameters a round starts from in ``federated``."""
    return f"{experiment}/global/round-{n}.safetensors"


def legacy_global_model(experiment: str, n: int) -> str:
    """Where a server of wire format 1 stored a round's global parameters (read, never written)."""
    return f"{experiment}/global/round-{n}.npz"


def latest_round(experiment: str) -> str:
    """The pointer to an experiment's latest round in ``federated``."""
    return f"{experiment}/latest.json"


def scaler(experiment: str) -> str:
    """The experiment's feature scaler in ``federated``."""
    return f"{experiment}/scaler.safetensors"


def legacy_scaler(experiment: str) -> str:
    """Where a server of wire format 1 stored the scaler (read, never written)."""
    return f"{experiment}/scaler.npz"


# --- scored (the stream) ------------------------------------------------------------------------------


def stream_progress(partition: str) -> str:
    """The stream's progress marker of one Event Hubs partition in ``scored``."""
    return f"_progress/partition={partition}.json"


# the stream's outputs (``scored``, ``alerts``, ``deadletter``) are filed by the UTC hour of a batch's first
# event, and named by the batch: ``<partition>-<first sequence number>-<last sequence number>``


def stream_day(day: str) -> str:
    """What every stream output of one UTC day (``YYYY-MM-DD``) starts with, in any of its containers."""
    return f"date={day}/"


def stream_hour(when: datetime) -> str:
    """The hour folder of the stream's outputs for a batch whose first event was enqueued at ``when``."""
    utc = when.astimezone(UTC)
    return f"date={utc:%Y-%m-%d}/hour={utc:%H}"


def stream_scored(hour: str, batch: str) -> str:
    """One batch's scored archive (Parquet) in ``scored``."""
    return f"{hour}/{batch}.parquet"


def stream_alerts(hour: str, batch: str) -> str:
    """One batch's alerts (JSON lines) in ``alerts``."""
    return f"{hour}/{batch}.jsonl"


def stream_deadletter(hour: str, batch: str) -> str:
    """One batch's events that could not be scored (JSON lines) in ``deadletter``."""
    return f"{hour}/{batch}.jsonl"


def stream_failed_batch(hour: str, batch: str) -> str:
    """A whole batch dead-lettered (or spooled) with the reason it failed, in ``deadletter``."""
    return f"{hour}/{batch}-batch.jsonl"


def stream_unsent_alerts(hour: str, batch: str) -> str:
    """One batch's alerts the alerts hub refused (JSON lines) in ``deadletter``."""
    return f"{hour}/{batch}-unsent-alerts.jsonl"
