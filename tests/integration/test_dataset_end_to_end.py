"""A dataset other than creditcard, end to end with its own contract: ETL, train, serve over HTTP, stream,
labels and monitoring (the demo, ``fraudops --dataset card_transactions demo``), then access and erasure."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT
from tests.test_cli import _blobs_holding, _fraudops


@pytest.mark.slow
def test_card_transactions_runs_end_to_end_and_a_customer_is_found_and_erased(store, azurite, tmp_path):
    r = _fraudops(
        "--dataset", "card_transactions", "demo", "--rows", "40000", "--workdir", str(tmp_path),
        env_conn=azurite, cwd=ROOT, mlflow=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["dataset"] == "card_transactions"
    assert summary["etl"]["rows_valid"] + summary["etl"]["rows_duplicate"] == 40000
    assert summary["promoted"] and summary["serving_version"] == summary["model_version"]
    assert 0.6 < summary["auc"] <= 1.0
    assert [s["transaction_id"] for s in summary["scored_over_http"]][:1] == ["demo-0-normal"]
    stream = summary["stream_replay"]
    assert stream["deadlettered"] == 1 and stream["scored"] == stream["sent"] - 1
    m = summary["monitoring"]
    assert m["labelled"] == m["labels_in"] > 5 and m["level"] in ("ok", "warning", "critical")
    # the categories were recorded as sent, and both personal columns are pseudonymised everywhere
    assert not _blobs_holding(store, b"demo-customer-"), "a clear customer id is stored"
    landed = [b for b in _blobs_holding(store, b"K00") if not b.startswith("raw/")]  # raw/: the file as sent
    assert not landed, f"a clear card token is stored: {landed}"

    access = _fraudops(
        "--dataset", "card_transactions", "gdpr", "access", "--customer", "demo-customer-0001",
        "--out", str(tmp_path / "access.json"), env_conn=azurite, cwd=ROOT,
    )  # fmt: skip
    assert access.returncode == 0, access.stderr[-2000:]
    found = json.loads((tmp_path / "access.json").read_text())
    assert found["records"] > 0 and any(w.startswith("predictions/") for w in found["where"]), found["where"]
    erased = _fraudops(
        "--dataset", "card_transactions", "gdpr", "erase", "--customer", "demo-customer-0001",
        env_conn=azurite, cwd=ROOT,
    )  # fmt: skip
    assert erased.returncode == 0, erased.stderr[-2000:]
    again = _fraudops(
        "--dataset", "card_transactions", "gdpr", "access", "--customer", "demo-customer-0001",
        "--out", str(tmp_path / "again.json"), env_conn=azurite, cwd=ROOT,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((tmp_path / "again.json").read_text())["records"] == 0, "nothing is left about the customer"
