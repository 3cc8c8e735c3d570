"""TreeSHAP explanations from the published booster, on the in-memory store."""

from __future__ import annotations

import numpy as np
import pytest

from cli.devtools.models import publish_synthetic_model
from shared.adapters.model_store import ModelStore
from shared.domain.contracts import get_contract
from shared.scoring.explain import CannotExplainError, Explainers

CREDITCARD = get_contract("creditcard")


def test_contributions_add_up_to_the_raw_score_and_are_ranked(memory_store):
    publish_synthetic_model(memory_store, "fraud", version="x1", trees=20, rows=4000)
    from training.generate import sample_features

    x, _ = sample_features(5, 9, fraud_rate=0.5)
    explained = Explainers(ModelStore(memory_store, "fraud")).get("x1", CREDITCARD.feature_names).explain(x, top_k=5)
    assert len(explained) == 5
    for e in explained:
        contributions = [c["contribution"] for c in e["contributions"]]
        assert len(contributions) == 5
        assert contributions == sorted(contributions, key=abs, reverse=True)  # largest first
    # TreeSHAP is exact: base value plus every feature's contribution is the booster's own raw score
    import lightgbm as lgb

    booster = lgb.Booster(model_str=ModelStore(memory_store, "fraud").file("x1", "model.txt").decode())
    raw = booster.predict(x.astype(np.float64), raw_score=True)
    assert np.allclose([e["raw_score"] for e in explained], raw, atol=1e-6)


def test_a_model_without_its_booster_cannot_explain(memory_store):
    models = ModelStore(memory_store, "fraud")
    models.publish("bare", b"onnx", {"feature_names": CREDITCARD.feature_names, "threshold": 0.5})
    with pytest.raises(CannotExplainError):
        Explainers(models).get("bare", CREDITCARD.feature_names)


def test_an_explanation_of_a_missing_value_fits_the_declared_response_schema(memory_store):
    """A missing feature (NaN, as a contract with nullable columns or missing behaviour sends it) is explained
    with its value null; the schema used to declare a number there, so the answer broke its own document."""
    import orjson

    from api.schemas import Explanation

    publish_synthetic_model(memory_store, "fraud", version="x1", trees=3, rows=2000)
    from training.generate import sample_features

    x, _ = sample_features(2, 9, fraud_rate=0.5)
    x[:, :] = np.nan  # every feature missing: each contribution names a value the model did not get
    [explained, _] = Explainers(ModelStore(memory_store, "fraud")).get("x1", CREDITCARD.feature_names).explain(x)
    sent = orjson.loads(orjson.dumps(explained))
    assert sent["contributions"] and all(c["value"] is None for c in sent["contributions"])
    Explanation.model_validate(sent)
