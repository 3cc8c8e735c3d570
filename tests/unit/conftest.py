"""Unit tests run on the in-memory store (the blob store's port), never on Azurite."""

from __future__ import annotations

import pytest

from shared.adapters.memory_store import MemoryBlobStore


@pytest.fixture
def memory_store() -> MemoryBlobStore:
    s = MemoryBlobStore()
    s.ensure_containers()
    return s


@pytest.fixture(scope="session")
def small_model():
    """A small LightGBM model as ONNX plus its booster text, trained once per session."""
    import lightgbm as lgb

    from shared.domain.contracts import get_contract
    from training.generate import sample_features
    from training.onnx_export import to_onnx

    x, y = sample_features(4000, 3, fraud_rate=0.05)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1},
        lgb.Dataset(x, y, feature_name=get_contract("creditcard").feature_names),
        num_boost_round=10,
    )
    return to_onnx(booster, get_contract("creditcard").feature_names), x
