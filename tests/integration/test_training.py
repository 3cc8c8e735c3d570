"""The retraining pipeline against Azurite and a real MLflow SQLite store: publish, promote, refuse,
fail safely, older versions, drift, quality against the Bayes optimum."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow.csv as pacsv
import pytest

import training.finish as finish
import training.pipeline as pipeline
from shared.adapters.model_store import ModelStore
from shared.domain.contracts import get_contract
from shared.domain.errors import BlobNotFoundError, ConcurrentUpdateError, TrainingError
from shared.domain.settings import Settings
from shared.etl.service import run_etl
from shared.scoring.scorer import load_model
from training.generate import generate
from training.monitoring import check_drift
from training.search import STARTS


def _mlflow(settings):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)


@pytest.fixture
def curated(store, settings, generated_csv):
    store.put_bytes("raw", "gen.csv", generated_csv.read_bytes())
    return run_etl(store, settings.etl, name="gen.csv")


# the one test that fits every family: about 100 s on a quiet machine, over 300 s on a busy one
@pytest.mark.timeout(600)
def test_first_model_promoted_and_published_with_manifest(store, settings, curated):
    config = dataclasses.replace(pipeline.TrainConfig.from_settings(settings), compare_families=True)
    s = pipeline.run_training(store, config=settings.training, storage=settings.storage, run_config=config)
    assert s.promoted and s.promotion_reason.startswith("first model")
    assert s.dataset_version == curated.dataset_version
    assert s.auc > 0.9 and s.parity_max_abs_diff < 1e-4
    models = ModelStore(store, settings.model_name)
    assert models.champion()[0] == s.model_version
    m = models.manifest(s.model_version)
    assert m.feature_names == [f"V{i}" for i in range(1, 29)] + ["Amount"]
    assert m.trained_on == [curated.outputs[0].removeprefix("curated/")]
    contract = get_contract(settings.dataset_name)  # the manifest names the contract the model was trained on
    assert (m.contract_sha256, m.contract_input_sha256) == (contract.sha256, contract.input_sha256)
    split = m.split
    for fold in split["folds"]:  # every validation block after its training rows, the test part after all of dev
        assert fold["train"][1] <= fold["valid"][0] <= fold["valid"][1] <= split["test"][0]
    assert split["dev"][2] + split["test"][2] == split["window_rows"] == curated.rows_valid
    # the served model learnt from every labelled row; the figures are the backtest model's, and say so
    figures = m.figures
    assert figures["published_rows"] == curated.rows_valid and figures["backtest_rows"] == split["dev"][2]
    assert "backtest" in figures["metrics"] and figures["published_boost_rounds"] >= figures["backtest_boost_rounds"]
    assert m.hyperparameters["num_boost_round"] == figures["published_boost_rounds"]
    booster = lgb.Booster(model_str=models.file(s.model_version, "model.txt").decode())
    assert booster.num_trees() == figures["published_boost_rounds"]
    assert 0.05 <= m.threshold <= 0.95
    model = load_model(models, s.model_version, expected_features=m.feature_names, threads=1)
    assert model.predict_proba(np.zeros((3, 29), dtype=np.float32)).shape == (3,)
    report = json.loads(store.get_bytes("reports", f"training/{s.model_version}.json")[0])
    assert report["status"] == "promoted" and report["finished_at"] >= report["started_at"]  # the outcome, explicit
    assert len(report["cost_curve"]) == 91
    assert report["baseline_metrics"]["auc"] > 0.8 and report["search"]["trials"] == 3
    assert report["search"]["max_bin"] == 255  # TRAIN_MAX_BIN reached the search, and the record says so
    assert m.training_profile["rows"] == curated.rows_valid
    assert m.score_profile["rows"] > 0 and abs(sum(m.score_profile["shares"]) - 1) < 1e-9
    assert not s.drift.checked and "no champion" in s.drift.message
    # five families on the same folds, as a table in the report and a CSV beside it
    families = [r["family"] for r in report["models_comparison"]]
    assert families == ["lightgbm", "logistic_regression", "hist_gradient_boosting", "extra_trees", "mlp"]
    assert all(0.0 < r["pr_auc"] <= 1.0 and r["cost"] >= 0 for r in report["models_comparison"])
    table = store.get_bytes("reports", f"training/{s.model_version}/models_comparison.csv")[0].decode().splitlines()
    assert table[0].startswith("family,pr_auc,") and len(table) == 6
    shap = store.get_bytes("reports", f"training/{s.model_version}/shap_importance.csv")[0].decode().splitlines()
    assert shap[0] == "feature,mean_abs_shap" and len(shap) == 30  # every feature, largest first
    values = [float(line.split(",")[1]) for line in shap[1:]]
    assert values == sorted(values, reverse=True) and values[0] > 0
    examples = report["explanations"]["examples"]
    assert set(examples) <= {"caught fraud", "false alarm"} and "caught fraud" in examples
    assert examples["caught fraud"]["label"] == 1 and examples["caught fraud"]["probability"] > 0.5
    # issue 39, finding 6: one transaction's values were kept in the report and MLflow for the model's life; the
    # example is the median of ten, matching no one transaction of the test part
    assert examples["caught fraud"]["rows"] == 10
    metrics = report["metrics"]
    assert metrics["accuracy"] > 0.9 and 0.0 <= metrics["false_alarm_rate"] < 0.1
    assert (
        metrics["frauds_caught"] + metrics["frauds_missed"] + metrics["false_alarms"] + metrics["true_negatives"]
        == (split["test"][2])
    )
    page = store.get_bytes("reports", f"training/{s.model_version}.html")[0].decode()
    # cost, ROC, PR, gain, global SHAP and one waterfall per example
    assert page.count("<svg") == 5 + len(examples) and "logistic baseline" in page and s.promotion_reason in page
    assert "Model comparison" in page and "hist_gradient_boosting" in page and "Which model each figure" in page
    # the model card beside the model: figures with their intervals, per segment, from the manifest
    assert s.model_card == [f"models/{settings.model_name}/{s.model_version}/model_card.{e}" for e in ("md", "html")]
    card = store.get_bytes("models", f"{settings.model_name}/{s.model_version}/model_card.md")[0].decode()
    low, high = m.metric_intervals["auc"]
    assert low <= metrics["auc"] <= high and f"| ROC-AUC | {metrics['auc']:.4g} | {low:.4g} to {high:.4g} |" in card
    for key in ("amount", "time_of_day"):  # every test row in exactly one segment
        assert sum(r["rows"] for r in m.segments[key]) == split["test"][2]
        assert sum(r["frauds"] for r in m.segments[key]) == metrics["frauds"]
    assert "## Performance per segment" in card and "night (00-06)" in card and "## Drift at training" in card


def _quick(settings: Settings) -> pipeline.TrainConfig:
    """A run whose search tries one start: for the tests about what a run records, compares and refuses (the
    search itself is tested by the first model's test, the quality test and the distributed one)."""
    return dataclasses.replace(pipeline.TrainConfig.from_settings(settings), search_trials=1)


def test_mlflow_run_and_registry_read_back(store, settings, curated):
    first = pipeline.run_training(
        store, config=settings.training, storage=settings.storage, run_config=_quick(settings)
    )
    second = pipeline.run_training(
        store, config=settings.training, storage=settings.storage, run_config=_quick(settings)
    )
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
    assert {"cost_curve.json", "feature_importance.json", "training_report.html", "model_card.md"} <= artifacts
    curve = json.loads(Path(client.download_artifacts(run.info.run_id, "cost_curve.json")).read_text())
    assert curve["curve"] == first.cost_curve
    assert client.get_run(second.mlflow["run_id"]).data.tags["promoted"] == "False"
    import mlflow.onnx

    onnx_model = mlflow.onnx.load_model(f"models:/{settings.model_name}@champion")
    assert onnx_model.graph.input[0].name == "features"
    # the requirements a pyfunc user installs to load it: the ONNX flavour's, pinned as this run had them
    requirements = Path(mlflow.pyfunc.get_model_dependencies(f"models:/{settings.model_name}@champion"))
    assert {r.split("==")[0] for r in requirements.read_text().split()} >= {"onnx", "onnxruntime"}


def test_equal_challenger_is_not_promoted(store, settings, curated, telemetry):
    outcomes = {k: telemetry.total("fraudops.retrain.runs", outcome=k) for k in ("promoted", "kept_champion")}
    first = pipeline.run_training(
        store, config=settings.training, storage=settings.storage, run_config=_quick(settings)
    )
    second = pipeline.run_training(
        store, config=settings.training, storage=settings.storage, run_config=_quick(settings)
    )
    # the champion was refitted on these very rows: no fair comparison, so it stays
    assert not second.promoted and "was trained on the test rows" in second.promotion_reason
    assert ModelStore(store, settings.model_name).champion()[0] == first.model_version
    # each run is a trace of its named steps, and its outcome is counted
    steps = [s.name for s in telemetry.spans() if s.name.startswith("train.")]
    assert steps == ["train.prepare", "train.fit", "train.export", "train.judge", "train.publish", "train.run"] * 2
    assert telemetry.total("fraudops.retrain.runs", outcome="promoted") - outcomes["promoted"] == 1
    assert telemetry.total("fraudops.retrain.runs", outcome="kept_champion") - outcomes["kept_champion"] == 1


def test_a_champion_is_compared_only_on_rows_it_never_trained_on(store, settings, curated, tmp_path):
    first = pipeline.run_training(
        store, config=settings.training, storage=settings.storage, run_config=_quick(settings)
    )
    # 20,000 newer rows: more than the test part of the two files' window (a fifth of 80,000), so the whole
    # test part is new to the champion, and a window of the newest file alone still holds frauds in every part
    newer = tmp_path / "newer.csv"
    generate(20_000, 8, newer, fraud_rate=0.01)
    store.put_bytes("raw", "newer.csv", newer.read_bytes())
    run_etl(store, settings.etl, name="newer.csv")
    second = pipeline.run_training(
        store, config=settings.training, storage=settings.storage, run_config=_quick(settings)
    )
    new_rows = second.split["test"][2]  # the newer file holds the whole test part: all of it is new to the champion
    assert f"on the {new_rows} test rows the champion never trained on" in second.promotion_reason
    assert second.champion_metrics and second.champion_metrics["rows"] == new_rows
    assert second.champion_before == first.model_version
    # a window of the newest rows only: the older file is left out of the run, and of the published model
    config = dataclasses.replace(pipeline.TrainConfig.from_settings(settings), window_rows=1000, search_trials=1)
    windowed = pipeline.run_training(store, config=settings.training, storage=settings.storage, run_config=config)
    manifest = ModelStore(store, settings.model_name).manifest(windowed.model_version)
    assert len(manifest.trained_on) == 1 and manifest.split["files_left_out"] == 1
    assert manifest.figures["published_rows"] == manifest.split["window_rows"] < second.split["window_rows"]


def test_failed_parity_fails_the_run_and_leaves_the_champion(store, settings, curated, monkeypatch):
    first = pipeline.run_training(
        store, config=settings.training, storage=settings.storage, run_config=_quick(settings)
    )
    real = finish.check_parity
    monkeypatch.setattr(finish, "check_parity", lambda b, o, x, **kw: real(b, o, x, tolerance=0.0, **kw))
    with pytest.raises(TrainingError, match="disagree"):
        pipeline.run_training(store, config=settings.training, storage=settings.storage, run_config=_quick(settings))
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


def test_run_without_data_fails_with_a_reason_and_a_report(store, settings, telemetry):
    failed = telemetry.total("fraudops.retrain.runs", outcome="failed")
    with pytest.raises(BlobNotFoundError, match="run the ETL first"):
        pipeline.run_training(store, config=settings.training, storage=settings.storage)
    assert telemetry.total("fraudops.retrain.runs", outcome="failed") == failed + 1
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
    pipeline.run_training(store, config=settings.training, storage=settings.storage, run_config=_quick(settings))
    # 5,000 rows a file: PSI's sampling noise over ten bins is about 0.003 there (the threshold is 0.2), while
    # the least moved feature's PSI stays about 0.3; the retraining at the end reads every file
    fresh, shifted = tmp_path / "fresh.csv", tmp_path / "shifted.csv"
    generate(5_000, 99, fresh, fraud_rate=0.01)
    table = pacsv.read_csv(fresh)
    moved = {
        name: np.asarray(table.column(name)) * 1.5 + 1.0
        for name in ("V1", "V2", "V3", "V4", "V5", "V6", "V7", "V8", "V9", "V10")
    }
    for name, values in moved.items():
        table = table.set_column(table.schema.get_field_index(name), name, [values])
    pacsv.write_csv(table, shifted)
    store.put_bytes("raw", "fresh.csv", fresh.read_bytes())
    run_etl(store, settings.etl, name="fresh.csv")
    calm = check_drift(store, config=settings.training)
    assert calm.checked and not calm.alert and calm.drifted_features == []
    store.put_bytes("raw", "shifted.csv", shifted.read_bytes())
    run_etl(store, settings.etl, name="shifted.csv")
    alarmed = check_drift(store, config=settings.training)
    assert alarmed.alert and set(alarmed.drifted_features) == set(moved)
    assert alarmed.current.startswith("curated/creditcard/") and "shifted" in alarmed.current
    assert json.loads(store.get_bytes("reports", alarmed.report.removeprefix("reports/"))[0])["alert"]
    retrained = pipeline.run_training(
        store, config=settings.training, storage=settings.storage, run_config=_quick(settings)
    )
    assert retrained.drift_alert and "drift: 10 of 29 features" in retrained.promotion_reason


HOLDOUT_ROWS = 100_000


@pytest.fixture(scope="module")
def fullsize_csv(tmp_path_factory):
    """The issue's setting: 284,807 generated rows at the real fraud rate (0.172 %), then 100,000 later rows for
    the holdout, with the true probabilities of all of them."""
    path = tmp_path_factory.mktemp("full") / "full.csv"
    generate(284_807 + HOLDOUT_ROWS, 3, path, truth=path.with_suffix(".truth.csv"))
    return path


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quality_against_the_bayes_optimum(store, settings, fullsize_csv, tmp_path):
    """The published model (refitted on every ingested row) on the later rows no model has seen. One seed's gap
    carries the holdout's own noise, so it must be within the target plus twice its paired-bootstrap deviation;
    ``make bench-train`` measures the mean over seeds and mechanisms against the target itself."""
    from shared.scoring.scorer import Scorer
    from training.evaluation import paired_auc_gap

    lines = fullsize_csv.read_bytes().splitlines(keepends=True)
    ingested = tmp_path / "ingested.csv"
    ingested.write_bytes(b"".join(lines[: len(lines) - HOLDOUT_ROWS]))
    with ingested.open("rb") as f:
        store.upload_stream("raw", "full.csv", f)
    run_etl(store, settings.etl, name="full.csv")
    # the starting configurations, never cut by a deadline: the same result on a busy machine. Binned at 255 to
    # keep ``make test`` short; ``make bench-train`` measures the default bins on every mechanism
    config = dataclasses.replace(
        pipeline.TrainConfig.from_settings(settings),
        search_trials=len(STARTS),
        search_seconds=1200,
        budget_seconds=2400,
    )
    s = pipeline.run_training(store, config=settings.training, storage=settings.storage, run_config=config)
    features = [f"V{i}" for i in range(1, 29)] + ["Amount"]
    table = pacsv.read_csv(fullsize_csv, convert_options=pacsv.ConvertOptions(include_columns=[*features, "Class"]))
    x = np.column_stack([np.asarray(table.column(f))[-HOLDOUT_ROWS:] for f in features]).astype(np.float32)
    y = np.asarray(table.column("Class"))[-HOLDOUT_ROWS:].astype(int)
    truth = np.asarray(pacsv.read_csv(fullsize_csv.with_suffix(".truth.csv")).column("fraud_probability"))
    scorer = Scorer(ModelStore(store, settings.model_name), feature_names=features, refresh_seconds=30, threads=2)
    scores = scorer.pinned(s.model_version).predict_proba(x)
    roc, roc_sd = paired_auc_gap(y, truth[-HOLDOUT_ROWS:], scores)
    pr, pr_sd = paired_auc_gap(y, truth[-HOLDOUT_ROWS:], scores, pr=True)
    print(f"holdout ROC-AUC gap {roc:.4f} (sd {roc_sd:.4f}); PR-AUC gap {pr:.4f} (sd {pr_sd:.4f})")
    assert roc < 0.005 + 2 * roc_sd
    assert pr < 0.08 + 2 * pr_sd
    assert s.baseline_metrics["auc"] > 0.9 and s.search["trials"] == len(STARTS)


def test_a_model_with_derived_columns_serves_explains_and_reports_on_the_contract_s_features(
    store, settings, curated, monkeypatch
):
    """When the folds choose products and the linear score, the published ONNX graph computes them itself
    from the 29 inputs, the booster and the graph agree, the manifest lists them, and explanations come
    back on the inputs."""
    import training.search as search
    from shared.scoring.scorer import Scorer

    monkeypatch.setattr(search, "STARTS", ({**search.ADDITIVE, "interactions": True, "linear": True},))
    # binned as in production: with thousands of bins, float64 thresholds rounded to float32 broke parity
    default_bins = Settings.model_fields["train_max_bin"].default
    config = dataclasses.replace(pipeline.TrainConfig.from_settings(settings), search_trials=1, max_bin=default_bins)
    s = pipeline.run_training(store, config=settings.training, storage=settings.storage, run_config=config)
    assert s.search["interactions"] is True and s.search["linear"] is True
    assert s.parity_max_abs_diff < 1e-4 and s.search["max_bin"] == 4095
    models = ModelStore(store, settings.model_name)
    m = models.manifest(s.model_version)
    features = m.feature_names
    derived = m.derived_features
    assert 2 <= len(derived) <= 7 and all(set(d["of"]) <= set(features) and d["scale"][0] > 0 for d in derived)
    assert derived[-1]["name"] == "linear_score" and derived[-1]["of"] == features
    assert {d["name"] for d in derived} <= set(m.feature_importance)  # the booster's own columns
    scorer = Scorer(models, feature_names=features, refresh_seconds=30, threads=1)
    model = scorer.pinned(s.model_version)
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((500, len(features))).astype(np.float32)
    booster = lgb.Booster(model_str=models.file(s.model_version, "model.txt").decode())
    from shared.scoring.derived import Derived

    products = Derived.from_manifest(derived, features)
    expected = booster.predict(products.apply(rows).astype(np.float64))
    assert np.max(np.abs(model.predict_proba(rows) - expected)) < 1e-4
    [explained] = scorer.explainers.get(s.model_version, features).explain(rows[:1], top_k=len(features))
    assert {c["feature"] for c in explained["contributions"]} == set(features)
    assert explained["raw_score"] == pytest.approx(float(booster.predict(products.apply(rows[:1]), raw_score=True)[0]))
    html = store.get_bytes("reports", f"training/{s.model_version}.html")[0].decode()
    assert "Derived features" in html and derived[0]["name"] in html
