"""The retraining pipeline against Azurite: publish, promote, refuse, fail safely, older versions."""

from __future__ import annotations

import json

import numpy as np
import pytest

import training.pipeline as pipeline
from shared.errors import TrainingError
from shared.etl.service import run_etl
from shared.model_store import ModelStore
from shared.scorer import load_model


@pytest.fixture
def curated(store, settings, generated_csv):
    store.put_bytes("raw", "gen.csv", generated_csv.read_bytes())
    return run_etl(store, settings, name="gen.csv")


def test_first_model_promoted_and_published_with_manifest(store, settings, curated):
    s = pipeline.run_training(store, settings)
    assert s["promoted"] and s["promotion_reason"].startswith("first model")
    assert s["dataset_version"] == curated["dataset_version"]
    assert s["auc"] > 0.9 and s["parity_max_abs_diff"] < 1e-4
    models = ModelStore(store, settings.model_name)
    assert models.champion()[0] == s["model_version"]
    m = models.manifest(s["model_version"])
    assert m["feature_names"] == [f"V{i}" for i in range(1, 29)] + ["Amount"]
    assert m["trained_on"] == [curated["outputs"][0].removeprefix("curated/")]
    assert m["split"]["train"][1] <= m["split"]["valid"][0] <= m["split"]["valid"][1] <= m["split"]["test"][0]
    assert 0.05 <= m["threshold"] <= 0.95
    model = load_model(models, s["model_version"], expected_features=m["feature_names"], threads=1)
    assert model.predict_proba(np.zeros((3, 29), dtype=np.float32)).shape == (3,)
    report = json.loads(store.get_bytes("reports", f"training/{s['model_version']}.json")[0])
    assert len(report["cost_curve"]) == 91


def test_equal_challenger_is_not_promoted(store, settings, curated):
    first = pipeline.run_training(store, settings)
    second = pipeline.run_training(store, settings)
    assert not second["promoted"] and "not lower than the champion" in second["promotion_reason"]
    assert ModelStore(store, settings.model_name).champion()[0] == first["model_version"]


def test_better_challenger_is_promoted():
    new = {"cost": 10.0, "pr_auc": 0.80}
    assert pipeline.decide_promotion(new, {"cost": 20.0, "pr_auc": 0.805}, 0.01)[0]
    assert not pipeline.decide_promotion(new, {"cost": 20.0, "pr_auc": 0.85}, 0.01)[0]
    assert not pipeline.decide_promotion(new, {"cost": 10.0, "pr_auc": 0.5}, 0.01)[0]


def test_failed_parity_fails_the_run_and_leaves_the_champion(store, settings, curated, monkeypatch):
    first = pipeline.run_training(store, settings)
    real = pipeline.check_parity
    monkeypatch.setattr(pipeline, "check_parity", lambda b, o, x: real(b, o, x, tolerance=0.0))
    with pytest.raises(TrainingError, match="disagree"):
        pipeline.run_training(store, settings)
    models = ModelStore(store, settings.model_name)
    assert models.champion()[0] == first["model_version"]
    assert models.versions() == [first["model_version"]]


def test_named_older_dataset_version(store, settings, curated, sample_csv):
    store.put_bytes("raw", "more.csv", sample_csv.read_bytes())
    newer = run_etl(store, settings, name="more.csv")
    assert newer["dataset_version"] != curated["dataset_version"]
    s = pipeline.run_training(store, settings, dataset_version=curated["dataset_version"])
    assert s["dataset_version"] == curated["dataset_version"]
    m = ModelStore(store, settings.model_name).manifest(s["model_version"])
    assert len(m["trained_on"]) == 1
