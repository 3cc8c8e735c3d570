"""A quickly trained LightGBM model published like a real one, for API tests and the scoring benchmark."""

from __future__ import annotations

import numpy as np

from shared.adapters.model_store import ModelStore
from shared.adapters.storage import BlobStore
from shared.domain.contracts import get_contract
from shared.domain.documents.model import LIGHTGBM, ModelDescription, ModelManifest


def publish_synthetic_model(
    store: BlobStore,
    model_name: str,
    *,
    version: str,
    trees: int = 50,
    rows: int = 20_000,
    seed: int = 0,
    promote: bool = True,
    threshold: float = 0.5,
) -> ModelManifest:
    """Train ``trees`` boosting rounds (no early stopping) on generated rows, publish ONNX + booster, promote."""
    import lightgbm as lgb

    from shared.domain import drift
    from shared.domain.telemetry import PROBABILITY_BUCKETS
    from training.generate import DATASET, sample_features
    from training.onnx_export import check_parity, to_onnx

    features = get_contract(DATASET).feature_names
    x, y = sample_features(rows, seed, fraud_rate=0.05)
    booster = lgb.train(
        {
            "objective": "binary",
            "num_leaves": 15,
            "learning_rate": 0.05,
            "verbose": -1,
            "seed": seed,
            "deterministic": True,
            "num_threads": 2,
        },
        lgb.Dataset(x, y, feature_name=features),
        num_boost_round=trees,
    )
    onnx_bytes = to_onnx(booster, features)
    parity = check_parity(booster, onnx_bytes, x[:2000])
    models = ModelStore(store, model_name)
    manifest = models.publish(
        version,
        onnx_bytes,
        ModelDescription(
            kind=LIGHTGBM,
            feature_names=features,
            input_name="features",
            threshold=threshold,
            metrics={"trees": trees},
            dataset_version="synthetic",
            parity_max_abs_diff=parity,
            # what a trained model carries for live drift (training.pipeline does the same)
            training_profile=drift.profile(x, features),
            score_profile=drift.score_profile(np.asarray(booster.predict(x)), PROBABILITY_BUCKETS),
        ),
        extra_files={"model.txt": booster.model_to_string().encode()},
    )
    if promote:
        models.promote(version, expected_etag=models.champion()[1], reason="synthetic model for tests")
    return manifest
