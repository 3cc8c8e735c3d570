"""The simulation runs the real protocol over HTTP: federated matches centralised; median resists poison."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_simulate_iid_matches_the_centralised_model(store, settings, capsys):
    from shared.cli import main

    assert main(["federated", "simulate", "--banks", "3", "--rounds", "2"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["rounds"] == 2 and len(summary["history"]) == 2 and summary["aggregator"] == "fedavg"
    assert abs(summary["federated_auc"] - summary["centralized_auc"]) < 0.005
    assert summary["poisoned_banks"] == 0 and summary["federated_pr_auc"] > 0.5
    # every closed model round is published as an ONNX "federated" model the scorer can serve pinned
    import numpy as np

    from shared.model_store import ModelStore
    from shared.scorer import load_model

    models = ModelStore(store, settings.model_name)
    versions = [v for v in models.versions() if v.startswith(f"fl-{summary['experiment']}-")]
    assert versions == [f"fl-{summary['experiment']}-r1", f"fl-{summary['experiment']}-r2"]
    manifest = models.manifest(versions[-1])
    assert manifest["kind"] == "federated" and manifest["parity_max_abs_diff"] < 1e-4
    served = load_model(models, versions[-1], expected_features=manifest["feature_names"], threads=1)
    p = served.predict_proba(np.zeros((2, 29), np.float32))
    assert p.shape == (2,) and np.all((p > 0) & (p < 1))


@pytest.mark.slow
def test_median_resists_a_poisoned_bank_where_fedavg_does_not(store, settings):
    from shared.federated.simulate import simulate

    robust = simulate(banks=5, rounds=2, poison=1, aggregator="median", rows=30_000)
    naive = simulate(banks=5, rounds=2, poison=1, aggregator="fedavg", rows=30_000)
    assert abs(robust["federated_auc"] - robust["centralized_auc"]) < 0.01
    assert naive["federated_auc"] < robust["federated_auc"] - 0.2


def test_simulate_refuses_more_poisoned_banks_than_banks(store, settings, capsys):
    from shared.cli import main

    assert main(["federated", "simulate", "--banks", "2", "--poison", "2"]) == 2
    assert "below --banks" in capsys.readouterr().err
