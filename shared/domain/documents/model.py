"""The model's stored documents: a version's manifest and the champion pointer (``models`` container).

The manifest is written by whoever publishes a version (``training.pipeline``, the federated round's
``shared.federated.export``, the synthetic model of ``cli.devtools.models``) through
``ModelStore.publish``, and read by the scorer, the gate, the monitor, the registry, the model card
and MLflow. The fields a trained LightGBM model carries and those a federated round's model carries
are both optional here: a reader asks for what its kind has.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import Field

from shared.domain import layout
from shared.domain.documents import StoredDocument
from shared.domain.errors import ModelIntegrityError

LIGHTGBM: Final = "lightgbm"  # ``kind`` of a model retrained by ``training``
FEDERATED: Final = layout.FEDERATED_KIND  # ``kind`` of a federated round's model


class ModelDescription(StoredDocument):
    """What a publisher says about a version (``ModelStore.publish`` adds the identity and the digests).

    ``threshold`` and ``feature_names`` are optional because a manifest may lack them (tests publish bare
    versions); a version without them cannot be served (the scorer refuses it)."""

    # how to serve it
    kind: str = LIGHTGBM  # LIGHTGBM (retraining) or FEDERATED (a federated round)
    feature_names: list[str] = Field(default_factory=list)
    input_name: str = "features"
    threshold: float | None = None
    derived_features: list[dict[str, Any]] = Field(default_factory=list)
    categories: dict[str, list[str]] = Field(default_factory=dict)  # each categorical feature's codes, in order

    # how it scored
    metrics: dict[str, Any] = Field(default_factory=dict)
    baseline_metrics: dict[str, Any] | None = None
    metric_intervals: dict[str, Any] | None = None
    segments: dict[str, list[dict[str, Any]]] | None = None  # per kind of segment (amount, time of day), its rows
    figures: dict[str, Any] | None = None
    parity_max_abs_diff: float | None = None
    cost_fn: float | None = None
    cost_fp: float | None = None

    # what it was trained on
    dataset: str | None = None
    contract_sha256: str | None = None  # the dataset's contract file (its canonical form) at training
    contract_input_sha256: str | None = None  # the part of it that shapes the model's input: serving checks it
    dataset_version: str | None = None
    trained_on: list[str] | None = None
    split: dict[str, Any] | None = None
    hyperparameters: dict[str, Any] | None = None
    search: dict[str, Any] | None = None
    models_comparison: list[dict[str, Any]] | None = None
    feature_importance: dict[str, float] | None = None  # gain (LightGBM) or weight (federated) per feature
    shap_importance: list[dict[str, Any]] | None = None
    drift_at_training: dict[str, Any] | None = None
    training_profile: dict[str, Any] | None = None  # the features' distribution (live drift's reference)
    score_profile: dict[str, Any] | None = None  # the scores live traffic should resemble
    training_seconds: float | None = None

    # a federated round's model
    experiment: str | None = None
    round: int | None = None
    aggregator: str | None = None
    fl_mode: str | None = None  # "secure": the server saw only the sum of the banks' steps
    participants: list[str] | None = None
    bank_metrics: dict[str, Any] | None = None
    bank_reports: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    clip_bound: float | None = None
    clipped: int | list[str] | None = None
    noise_multiplier: float | None = None
    noise_std: float | None = None
    epsilon: float | None = None
    dp_delta: float | None = None


class ModelManifest(ModelDescription):
    """One published model version: its description, and what the model store adds when it writes it."""

    version: str
    model_name: str
    created_at: str
    sha256: str  # of model.onnx
    onnx_bytes: int | None = None
    files: dict[str, str] = Field(default_factory=dict)  # every other file's sha256 (model.txt...)

    def decision_threshold(self) -> float:
        """The threshold a score is compared with; ``ModelIntegrityError`` when this manifest records none."""
        if self.threshold is None:
            raise ModelIntegrityError(f"model {self.version}: its manifest records no threshold")
        return float(self.threshold)

    def digest_of(self, filename: str) -> str | None:
        """The sha256 this manifest records for one of the version's files; ``None`` when it records none."""
        return self.sha256 if filename == "model.onnx" else self.files.get(filename)


class ChampionPointer(StoredDocument):
    """The champion pointer: the version served, the manifest digest it pins, and who moved it, when and why."""

    version: str
    manifest_sha256: str | None = None  # pointers written before pinning carry none
    promoted_at: str | None = None
    reason: str | None = None
    actor: str | None = None
    previous: str | None = None
    act: str | None = None  # "promotion" or "rollback": the audited act that moved it
    act_id: str | None = None  # that act's id in the audit chain (a move whose line failed is recorded later)


class Deprecation(StoredDocument):
    """Who deprecated a version, when and why (create-only): it can no longer be promoted or pinned."""

    version: str
    at: str
    actor: str
    reason: str
