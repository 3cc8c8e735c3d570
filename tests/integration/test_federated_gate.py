"""A federated round's model goes through the champion/challenger gate the retrained model goes through."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.adapters.model_store import ModelStore
from shared.domain.contracts import get_contract
from shared.domain.documents.federated import RoundState
from shared.etl.service import run_etl
from shared.federated import model as lr
from shared.federated.export import UNGATED_THRESHOLD, publish_round
from training.gate import judge
from training.window import load_window


@pytest.fixture
def curated(store, settings, generated_csv):
    store.put_bytes("raw", "gen.csv", generated_csv.read_bytes())
    return run_etl(store, settings.etl, name="gen.csv")


def _trained(store, settings) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A logistic regression trained on the curated data, as the banks together would train it."""
    window = load_window(store, get_contract(settings.dataset_name))
    x, y = window.x, window.y
    scaler = lr.scaler_from(lr.sufficient_statistics(x))
    return lr.train_local(lr.initial(x.shape[1]), scaler, x, y, steps=200), scaler


def _publish(store, settings, n, params, scaler, **state):
    return publish_round(
        store,
        model_name=settings.model_name,
        dataset=settings.dataset_name,
        experiment="gate",
        round_number=n,
        params=params,
        scaler=scaler,
        state=RoundState.model_validate(
            {
                "round": 1,
                "kind": "model",
                "status": "closed",
                "opened_at": 0.0,
                "deadline": 1.0,
                "min_clients": 2,
                "aggregator": "fedavg",
                "clip_bound": None,
                "max_weight_share": 0.5,
                "participants": {
                    b: {"examples": 10, "metrics": {}, "update": f"u/{b}", "received_at": 0.0}
                    for b in ("bank-a", "bank-b")
                },
                **state,
            }
        ),
        judge=lambda onnx_bytes: judge(store, onnx_bytes, config=settings.training),
    )


def test_without_curated_data_the_model_is_published_ungated_and_not_promoted(store, settings):
    scaler = {"mean": np.zeros(29, np.float32), "scale": np.ones(29, np.float32)}
    dp = {"clip_bound": 1.0, "noise_multiplier": 1.1, "dp_delta": 1e-5, "noise_std": 0.55, "epsilon": 9.6}
    published = _publish(store, settings, 1, lr.initial(29), scaler, clipped=["bank-b"], **dp)
    assert {k: getattr(published.manifest, k) for k in dp} == dp and published.manifest.clipped == ["bank-b"]
    assert published.verdict.status == "skipped" and "no curated data" in published.verdict.reason
    assert published.manifest.gate == published.verdict.record()  # what the manifest stores
    assert published.manifest.threshold == UNGATED_THRESHOLD and not published.promoted
    assert ModelStore(store, settings.model_name).champion()[0] is None


def test_a_winning_round_is_promoted_with_a_cost_chosen_threshold_and_a_losing_one_is_not(store, settings, curated):
    params, scaler = _trained(store, settings)
    models = ModelStore(store, settings.model_name)

    first = _publish(store, settings, 1, params, scaler)
    assert first.manifest.gate["status"] == "judged" and first.promoted
    assert first.promotion_reason.startswith("first model")
    assert models.champion()[0] == "fl-gate-r1"
    stored = models.manifest("fl-gate-r1")
    assert stored.threshold == first.manifest.gate["threshold"] != UNGATED_THRESHOLD  # chosen by cost, not 0.5
    assert stored.metrics["auc"] > 0.9 and stored.gate["dataset_version"] == curated.dataset_version
    report = json.loads(store.get_bytes("reports", "federated/fl-gate-r1.json")[0])
    assert report["promoted"] and report["metrics"] == stored.metrics

    useless = {"coef": np.zeros_like(params["coef"]), "intercept": params["intercept"]}  # ranks nothing
    second = _publish(store, settings, 2, useless, scaler)
    assert second.manifest.gate["status"] == "judged" and not second.promoted
    assert "not lower than the champion" in second.promotion_reason
    assert second.manifest.gate["champion"] == "fl-gate-r1" and models.champion()[0] == "fl-gate-r1"


def test_a_poisoned_round_before_any_champion_is_published_but_not_promoted(store, settings, curated):
    """Finding 8: with no champion the gate used to promote anything as "first model"."""
    params, scaler = _trained(store, settings)
    poisoned = {"coef": -params["coef"], "intercept": params["intercept"]}  # sign-flipped: ranks frauds last
    published = _publish(store, settings, 1, poisoned, scaler)
    gate = published.manifest.gate
    assert gate["status"] == "judged" and gate["champion"] is None and not published.promoted
    assert "below the logistic baseline" in published.promotion_reason
    assert gate["baseline_metrics"]["pr_auc"] > gate["metrics"]["pr_auc"] + settings.promotion_pr_auc_margin
    assert ModelStore(store, settings.model_name).champion()[0] is None
