"""The model's stored documents: a version's manifest and the champion pointer (``models`` container).

The manifest is written by whoever publishes a version (``training.pipeline``, the federated round's
``shared.federated.export``, the synthetic model of ``cli.devtools.models``) through
``ModelStore.publish``, and read by the scorer, the gate, the monitor, the registry, the model card
and MLflow. The fields a trained LightGBM model carries and those a federated round's model carries
are both optional here: a reader asks for what its kind has.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shared.domain.documents import StoredDocument


class ModelManifest(StoredDocument):
    """One published model version: what it is, what it was trained on, how it scored, how to serve it."""

    # written by the model store itself
    version: str
    model_name: str
    created_at: str
    sha256: str  # of model.onnx
    onnx_bytes: int | None = None
    files: dict[str, str] = Field(default_factory=dict)  # every other file's sha256

    # how to serve it
    kind: str = "lightgbm"  # "lightgbm" (retraining) or "federated" (a federated round)
    feature_names: list[str]
    input_name: str = "features"
    threshold: float
    derived_features: list[dict[str, Any]] = Field(default_factory=list)

    # how it scored
    metrics: dict[str, Any] = Field(default_factory=dict)
    baseline_metrics: dict[str, Any] | None = None
    metric_intervals: dict[str, Any] | None = None
    segments: list[dict[str, Any]] | None = None
    figures: dict[str, Any] | None = None
    parity_max_abs_diff: float | None = None
    cost_fn: float | None = None
    cost_fp: float | None = None

    # what it was trained on
    dataset: str | None = None
    dataset_version: str | None = None
    trained_on: list[str] | None = None
    split: dict[str, Any] | None = None
    hyperparameters: dict[str, Any] | None = None
    search: dict[str, Any] | None = None
    models_comparison: list[dict[str, Any]] | None = None
    feature_importance: list[dict[str, Any]] | None = None
    shap_importance: list[dict[str, Any]] | None = None
    drift_at_training: dict[str, Any] | None = None
    training_profile: dict[str, Any] | None = None  # the features' distribution (live drift's reference)
    score_profile: dict[str, Any] | None = None  # the scores live traffic should resemble
    training_seconds: float | None = None

    # a federated round's model
    experiment: str | None = None
    round: int | None = None
    aggregator: str | None = None
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


class ChampionPointer(StoredDocument):
    """The champion pointer: the version served, the manifest digest it pins, and who moved it, when and why."""

    version: str
    manifest_sha256: str | None = None  # pointers written before pinning carry none
    promoted_at: str | None = None
    reason: str | None = None
    actor: str | None = None
    previous: str | None = None


class Deprecation(StoredDocument):
    """Who deprecated a version, when and why (create-only): it can no longer be promoted or pinned."""

    version: str
    at: str
    actor: str
    reason: str
