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

from datetime import datetime
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


# --- curated ------------------------------------------------------------------------------------------
LABELS_PREFIX: Final = "labels/"  # curated labels, by the ETL's label path
ERASURES_PREFIX: Final = "_erasures/"  # one marker (the erasure plan) per erased pseudonym


def dataset_manifest(dataset: str) -> str:
    """The dataset's manifest in ``curated``: its versions and their parts."""
    return f"{dataset}/_manifest.json"


def erasure_marker(pseudonym: str) -> str:
    """The erasure plan of one pseudonym in ``curated``."""
    return f"{ERASURES_PREFIX}{pseudonym}.json"


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


def training_report(name: str, ext: str = "json") -> str:
    """One retraining run's report in ``reports`` (``name`` is the model version or the failed run's name)."""
    return f"{TRAINING_REPORTS}{name}.{ext}"


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


def audit_part(at: datetime) -> str:
    """The audit chain's part for the month of ``at`` in ``audit``."""
    return f"{AUDIT_CHAIN_PREFIX}{at:%Y-%m}.jsonl"


# --- predictions --------------------------------------------------------------------------------------
REQUESTS_PREFIX: Final = "_requests/"  # per-instance request counts beside the recorded predictions


# --- federated ----------------------------------------------------------------------------------------
NONCES_PREFIX: Final = "_nonces/"  # storage.bicep deletes them after a day


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
    return f"{experiment}/round-{n}/updates/{bank}-{digest[:32]}.npz"


def global_model(experiment: str, n: int) -> str:
    """The global parameters a round starts from in ``federated``."""
    return f"{experiment}/global/round-{n}.npz"


def latest_round(experiment: str) -> str:
    """The pointer to an experiment's latest round in ``federated``."""
    return f"{experiment}/latest.json"


def scaler(experiment: str) -> str:
    """The experiment's feature scaler in ``federated``."""
    return f"{experiment}/scaler.npz"


# --- scored (the stream) ------------------------------------------------------------------------------


def stream_progress(partition: str) -> str:
    """The stream's progress marker of one Event Hubs partition in ``scored``."""
    return f"_progress/partition={partition}.json"
