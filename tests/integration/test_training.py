"""The retraining pipeline against Azurite and a real MLflow SQLite store: publish, promote, refuse,
fail safely, older versions, drift, quality against the Bayes optimum."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest

import training.pipeline as pipeline
from shared.adapters.model_store import ModelStore
from shared.domain.errors import BlobNotFoundError, ConcurrentUpdateError, TrainingError
from shared.etl.service import run_etl
from shared.scoring.scorer import load_model
from training.generate import bayes_reference, generate
from training.monitoring import check_drift


def _mlflow(settings):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)


@pytest.fixture
def curated(store, settings, generated_csv):
    store.put_bytes("raw", "gen.csv", generated_csv.read_bytes())
    return run_etl(store, settings, name="gen.csv")


def test_first_model_promoted_and_published_with_manifest(store, settings, curated):
    s = pipeline.run_training(store, settings)
    assert s.promoted and s.promotion_reason.startswith("first model")
    assert s.dataset_version == curated.dataset_version
    assert s.auc > 0.9 and s.parity_max_abs_diff < 1e-4
    models = ModelStore(store, settings.model_name)
    assert models.champion()[0] == s.model_version
    m = models.manifest(s.model_version)
    assert m["feature_names"] == [f"V{i}" for i in range(1, 29)] + ["Amount"]
    assert m["trained_on"] == [curated.outputs[0].removeprefix("curated/")]
    assert m["split"]["train"][1] <= m["split"]["valid"][0] <= m["split"]["valid"][1] <= m["split"]["test"][0]
    assert 0.05 <= m["threshold"] <= 0.95
    model = load_model(models, s.model_version, expected_features=m["feature_names"], threads=1)
    assert model.predict_proba(np.zeros((3, 29), dtype=np.float32)).shape == (3,)
    report = json.loads(store.get_bytes("reports", f"training/{s.model_version}.json")[0])
    assert len(report["cost_curve"]) == 91
    assert report["baseline_metrics"]["auc"] > 0.8 and report["search"]["trials"] == 3
    assert m["training_profile"]["rows"] == m["split"]["train"][2]
    assert not s.drift.checked and "no champion" in s.drift.message
    page = store.get_bytes("reports", f"training/{s.model_version}.html")[0].decode()
    assert page.count("<svg") == 4 and "logistic baseline" in page and s.promotion_reason in page


def test_mlflow_run_and_registry_read_back(store, settings, curated):
    first = pipeline.run_training(store, settings)
    second = pipeline.run_training(store, settings)
    client = _mlflow(settings)
    champion = client.get_model_version_by_alias(settings.model_name, "champion")
    challenger = client.get_model_version_by_alias(settings.model_name, "challenger")
    assert (str(champion.version), str(challenger.version)) == ("1", "2")
    assert champion.tags["blob_model_version"] == first.model_version
    assert champion.run_id == first.mlflow["run_id"]
    assert challenger.tags["blob_model_version"] == second.model_version
    run = client.get_run(first.mlflow["run_id"])
    assert run.data.params["dataset_version"] == curated.dataset_version
    assert run.data.params["hp_num_leaves"] == str(first.hyperparameters["num_leaves"])
    assert run.data.metrics["test_auc"] == pytest.approx(first.auc)
    assert run.data.metrics["baseline_pr_auc"] == pytest.approx(first.baseline_metrics["pr_auc"])
    assert run.data.tags["promoted"] == "True"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"cost_curve.json", "feature_importance.json", "training_report.html"} <= artifacts
    curve = json.loads(Path(client.download_artifacts(run.info.run_id, "cost_curve.json")).read_text())
    assert curve["curve"] == first.cost_curve
    assert client.get_run(second.mlflow["run_id"]).data.tags["promoted"] == "False"
    import mlflow.onnx

    onnx_model = mlflow.onnx.load_model(f"models:/{settings.model_name}@champion")
    assert onnx_model.graph.input[0].name == "features"


def test_equal_challenger_is_not_promoted(store, settings, curated):
    first = pipeline.run_training(store, settings)
    second = pipeline.run_training(store, settings)
    assert not second.promoted and "not lower than the champion" in second.promotion_reason
    assert ModelStore(store, settings.model_name).champion()[0] == first.model_version


def test_failed_parity_fails_the_run_and_leaves_the_champion(store, settings, curated, monkeypatch):
    first = pipeline.run_training(store, settings)
    real = pipeline.check_parity
    monkeypatch.setattr(pipeline, "check_parity", lambda b, o, x: real(b, o, x, tolerance=0.0))
    with pytest.raises(TrainingError, match="disagree"):
        pipeline.run_training(store, settings)
    models = ModelStore(store, settings.model_name)
    assert models.champion()[0] == first.model_version
    assert models.versions() == [first.model_version]
    failures = store.list_names("reports", "training/failed-")
    assert len(failures) == 1
    report = json.loads(store.get_bytes("reports", failures[0])[0])
    assert report["status"] == "failed" and "disagree" in report["reason"] and report["champion_untouched"]
    failed = _mlflow(settings).search_runs(
        [_mlflow(settings).get_experiment_by_name(settings.mlflow_experiment).experiment_id],
        filter_string="attributes.status = 'FAILED'",
    )
    assert len(failed) == 1 and "disagree" in failed[0].data.tags["failure_reason"]


def test_run_without_data_fails_with_a_reason_and_a_report(store, settings):
    with pytest.raises(BlobNotFoundError, match="run the ETL first"):
        pipeline.run_training(store, settings)
    assert len(store.list_names("reports", "training/failed-")) == 1
    assert ModelStore(store, settings.model_name).champion() == (None, None)


def test_a_stale_champion_pointer_cannot_promote(store, settings):
    models = ModelStore(store, settings.model_name)
    for version in "abcd":
        models.publish(version, version.encode(), {})  # only a published version can be promoted
    models.promote("a", expected_etag=None, reason="first")
    with pytest.raises(ConcurrentUpdateError):
        models.promote("b", expected_etag=None, reason="a second first model")
    _, etag = models.champion()
    models.promote("c", expected_etag=etag, reason="won")
    with pytest.raises(ConcurrentUpdateError, match="changed while this run was training"):
        models.promote("d", expected_etag=etag, reason="lost the race")
    assert models.champion()[0] == "c"


def test_drift_on_shifted_data(store, settings, curated, tmp_path):
    pipeline.run_training(store, settings)
    fresh, shifted = tmp_path / "fresh.csv", tmp_path / "shifted.csv"
    generate(20_000, 99, fresh, fraud_rate=0.01)
    table = pacsv.read_csv(fresh)
    moved = {
        name: np.asarray(table.column(name)) * 1.5 + 1.0
        for name in ("V1", "V2", "V3", "V4", "V5", "V6", "V7", "V8", "V9", "V10")
    }
    for name, values in moved.items():
        table = table.set_column(table.schema.get_field_index(name), name, [values])
    pacsv.write_csv(table, shifted)
    store.put_bytes("raw", "fresh.csv", fresh.read_bytes())
    run_etl(store, settings, name="fresh.csv")
    calm = check_drift(store, settings)
    assert calm.checked and not calm.alert and calm.drifted_features == []
    store.put_bytes("raw", "shifted.csv", shifted.read_bytes())
    run_etl(store, settings, name="shifted.csv")
    alarmed = check_drift(store, settings)
    assert alarmed.alert and set(alarmed.drifted_features) == set(moved)
    assert alarmed.current.startswith("curated/creditcard/") and "shifted" in alarmed.current
    assert json.loads(store.get_bytes("reports", alarmed.report.removeprefix("reports/"))[0])["alert"]
    retrained = pipeline.run_training(store, settings)
    assert retrained.drift_alert and "drift: 10 of 29 features" in retrained.promotion_reason


@pytest.fixture(scope="module")
def fullsize_csv(tmp_path_factory):
    """The issue's setting: 284,807 generated rows at the real fraud rate (0.172 %), with the true probabilities."""
    path = tmp_path_factory.mktemp("full") / "full.csv"
    generate(284_807, 3, path, truth=path.with_suffix(".truth.csv"))
    return path


@pytest.mark.slow
def test_quality_against_the_bayes_optimum(store, settings, fullsize_csv):
    with fullsize_csv.open("rb") as f:
        store.upload_stream("raw", "full.csv", f)
    run_etl(store, settings, name="full.csv")
    s = pipeline.run_training(store, settings)
    bayes = bayes_reference(fullsize_csv, fullsize_csv.with_suffix(".truth.csv"), s.split["test"][2])
    print(f"test AUC {s.auc:.4f} vs Bayes {bayes['auc']:.4f}; PR-AUC {s.pr_auc:.4f} vs {bayes['pr_auc']:.4f}")
    assert bayes["auc"] - s.auc < 0.005
    assert bayes["pr_auc"] - s.pr_auc < 0.08
    assert s.baseline_metrics["auc"] > 0.9 and s.search["trials"] == 3
