"""The scorer's champion refresh on the in-memory store: swaps a verified model, keeps serving past a bad one."""

from __future__ import annotations

import numpy as np
import pytest

from shared.adapters.model_store import ModelStore
from shared.domain.contract import CREDITCARD
from shared.domain.errors import ModelNotAvailableError
from shared.scoring.scorer import Scorer

FEATURES = CREDITCARD.feature_names


def _publish(models, version, onnx_bytes, **over):
    manifest = {"feature_names": FEATURES, "input_name": "features", "threshold": 0.5, "kind": "lightgbm", **over}
    models.publish(version, onnx_bytes, manifest)
    models.promote(version, expected_etag=models.champion()[1], reason="test")


def test_no_model_yet_is_a_reason_not_a_crash(memory_store):
    scorer = Scorer(ModelStore(memory_store, "fraud"), feature_names=FEATURES, refresh_seconds=0)
    with pytest.raises(ModelNotAvailableError, match="no model has been published"):
        scorer.current()


def test_a_new_champion_is_picked_up_and_a_tampered_one_refused(memory_store, small_model):
    onnx_bytes, x = small_model
    models = ModelStore(memory_store, "fraud")
    scorer = Scorer(models, feature_names=FEATURES, refresh_seconds=0)
    _publish(models, "v1", onnx_bytes)
    first = scorer.current()
    assert first.version == "v1" and np.all((p := first.predict_proba(x[:50])) >= 0) and np.all(p <= 1)
    _publish(models, "v2", onnx_bytes, threshold=0.2)
    assert scorer.current().version == "v2" and scorer.current().threshold == 0.2
    _publish(models, "v3", onnx_bytes)
    memory_store.put_bytes("models", "fraud/v3/model.onnx", onnx_bytes + b"tampered")  # bytes no longer match sha256
    assert scorer.current().version == "v2"  # refused, logged, and the verified model keeps serving


def test_a_model_with_the_wrong_feature_order_is_refused(memory_store, small_model):
    onnx_bytes, _ = small_model
    models = ModelStore(memory_store, "fraud")
    _publish(models, "v1", onnx_bytes, feature_names=list(reversed(FEATURES)))
    with pytest.raises(ModelNotAvailableError):
        Scorer(models, feature_names=FEATURES, refresh_seconds=0).current()
