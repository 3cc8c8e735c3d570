"""The HTTP API over a real socket (uvicorn on a free loopback port) and the scorer's model lifecycle."""

from __future__ import annotations

import httpx
import pytest

from cli.server import running_server
from shared.adapters.model_store import ModelStore
from shared.etl.service import run_etl
from shared.scoring.scorer import Scorer
from training.pipeline import run_training

FEATURES = [f"V{i}" for i in range(1, 29)] + ["Amount"]


def _txn(i: int = 0, **over) -> dict:
    body = {"transaction_id": f"t{i}", "Time": 10.0, **{f: 0.1 for f in FEATURES}}
    body.update(over)
    return body


_TRAINED: dict = {}  # one training run for the module: its summary and every blob it left


@pytest.fixture
def trained(store, settings, generated_csv):
    """A champion trained on the generated rows. The run happens once; each later test gets the same blobs
    written back into its own emptied store (training is the slow part, not what these tests are about)."""
    if not _TRAINED:
        store.put_bytes("raw", "gen.csv", generated_csv.read_bytes())
        run_etl(store, settings.etl, name="gen.csv")
        import dataclasses

        from training.pipeline import TrainConfig

        quick = dataclasses.replace(TrainConfig.from_settings(settings), search_trials=1)  # serving is tested here
        _TRAINED["summary"] = run_training(store, config=settings.training, storage=settings.storage, run_config=quick)
        _TRAINED["blobs"] = {
            (container, name): store.get_bytes(container, name)[0]
            for container in ("raw", "curated", "models", "reports")
            for name in store.list_names(container)
        }
    else:
        for (container, name), data in _TRAINED["blobs"].items():
            store.put_bytes(container, name, data)
    return _TRAINED["summary"]


def test_health_is_503_with_a_reason_before_any_model(store):
    with running_server() as url:
        r = httpx.get(f"{url}/api/health")
        assert r.status_code == 503
        assert r.json()["model_loaded"] is False and "no model" in r.json()["reason"]
        assert httpx.post(f"{url}/api/score", json={"transactions": [_txn()]}).status_code == 503


def test_score_model_and_health_over_http(trained):
    with running_server() as url, httpx.Client(base_url=url) as http:
        health = http.get("/api/health").json()
        assert health == {
            "status": "ok",
            "model_loaded": True,
            "model_version": trained.model_version,
            "reason": None,
        }
        fraud_like = _txn(1, V14=-12.0, V17=-9.0, V12=-9.0, V10=-7.0, V3=-8.0)
        r = http.post("/api/score", json={"transactions": [_txn(0), fraud_like]})
        assert r.status_code == 200
        body = r.json()
        assert body["model_version"] == trained.model_version and body["threshold"] == trained.threshold
        normal, fraud = body["results"]
        assert normal["transaction_id"] == "t0" and fraud["fraud_probability"] > normal["fraud_probability"]
        assert normal["is_fraud"] == (normal["fraud_probability"] >= body["threshold"])
        model = http.get("/api/model").json()
        assert model["version"] == trained.model_version and len(model["sha256"]) == 64
        assert http.get("/api/openapi.json").json()["paths"]["/api/score"]["post"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"transactions": []}, "transactions"),
        ({"transactions": [{k: v for k, v in _txn().items() if k != "V3"}]}, "V3"),
        ({"transactions": [_txn(Amount=-1.0)]}, "Amount"),
        ({"transactions": [_txn(V1="abc")]}, "V1"),
        ({"transactions": [_txn(surprise=1)]}, "surprise"),
    ],
)
def test_bad_input_is_422_naming_the_field(trained, body, field):
    with running_server() as url:
        r = httpx.post(f"{url}/api/score", json=body)
        assert r.status_code == 422
        assert field in r.text


def test_nan_literal_is_rejected(trained):
    raw = '{"transactions": [' + str(_txn()).replace("'", '"').replace('"V2": 0.1', '"V2": NaN') + "]}"
    with running_server() as url:
        r = httpx.post(f"{url}/api/score", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422 and "V2" in r.text


def test_batch_over_the_limit_is_413(trained, monkeypatch):
    from shared.domain.settings import get_settings

    monkeypatch.setenv("SCORE_MAX_BATCH", "2")
    get_settings.cache_clear()
    with running_server() as url:
        r = httpx.post(f"{url}/api/score", json={"transactions": [_txn(i) for i in range(3)]})
        assert r.status_code == 413 and "limit of 2" in r.json()["detail"]
    get_settings.cache_clear()


def test_corrupt_champion_is_refused_and_the_old_one_keeps_serving(store, settings, trained):
    models = ModelStore(store, settings.model_name)
    scorer = Scorer(models, feature_names=FEATURES, refresh_seconds=0)
    assert scorer.current().version == trained.model_version
    manifest = models.manifest(trained.model_version)
    models.publish("corrupt", b"not an onnx model", {**manifest.to_dict(), "created_at": None})
    _, etag = models.champion()
    models.promote("corrupt", expected_etag=etag, reason="test")
    # the manifest's sha256 is of these bytes, so integrity passes and ONNX Runtime refuses them
    assert scorer.current().version == trained.model_version
    store.put_bytes("models", f"{settings.model_name}/corrupt/model.onnx", b"tampered")
    assert scorer.current().version == trained.model_version


def test_new_champion_is_picked_up_without_restart(store, settings, trained):
    models = ModelStore(store, settings.model_name)
    scorer = Scorer(models, feature_names=FEATURES, refresh_seconds=0)
    assert scorer.current().version == trained.model_version
    onnx = models.file(trained.model_version, "model.onnx")
    models.publish("v2", onnx, {**models.manifest(trained.model_version).to_dict(), "created_at": None})
    models.promote("v2", expected_etag=models.champion()[1], reason="test")
    assert scorer.current().version == "v2"


def test_first_model_is_found_at_once_despite_a_long_refresh_interval(store, settings):
    from cli.devtools.models import publish_synthetic_model

    models = ModelStore(store, settings.model_name)
    scorer = Scorer(models, feature_names=FEATURES, refresh_seconds=3600)
    with pytest.raises(Exception, match="no model has been published"):
        scorer.current()
    first = publish_synthetic_model(store, settings.model_name, version="20261201T000000Z-aaaaaaaa", trees=3, rows=3000)
    assert scorer.current().version == first.version  # not an hour later


def test_a_route_naming_the_dataset_scores_it_and_another_dataset_is_404_naming_the_known_ones(trained):
    with running_server() as url, httpx.Client(base_url=url) as http:
        named = http.post("/api/datasets/creditcard/score", json={"transactions": [_txn(0)]})
        plain = http.post("/api/score", json={"transactions": [_txn(0)]})
        assert named.status_code == 200 and named.json()["results"] == plain.json()["results"]
        other = http.post("/api/datasets/card_transactions/score", json={"transactions": [_txn(0)]})
        assert other.status_code == 404
        assert "scores dataset 'creditcard', not 'card_transactions'" in other.json()["detail"]
        assert "card_transactions, creditcard, home_credit" in other.json()["detail"]
        contract = http.get("/api/datasets/creditcard/contract").json()
        assert contract["roles"]["label"] == "Class (fraud = 1)" and contract["features"] == 29
        assert http.get("/api/datasets/nope/contract").status_code == 404
