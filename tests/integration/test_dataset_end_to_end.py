"""The three shipped contracts through the same end-to-end test: ETL, train, serve over HTTP, stream, labels and
monitoring (the demo, ``fraudops --dataset NAME demo``, on each dataset's generator), then access and erasure.

``creditcard`` has its own generator (several mechanisms of fraud), ``card_transactions`` too (online and
in-person fraud over categories, missing countries and amounts); ``home_credit`` is drawn from its contract
(``training.generators.by_contract``), the real sample's run being ``test_home_credit``. The demo's traffic
carries clear customer ids (``demo-customer-NNNN``): none may be stored.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT
from tests.test_cli import _blobs_holding, _fraudops

# per dataset: rows, a lower bound on the held-out ROC-AUC, a clear personal value of the file (besides the
# demo's customer ids) that must not be stored outside raw/ (the file as the bank sent it), and whether banks
# federate (plain numeric features)
CASES = {
    "creditcard": (20_000, 0.5, None, True),
    "card_transactions": (40_000, 0.6, b"K00", False),  # card tokens, declared personal
    "home_credit": (8_000, 0.6, None, False),  # no customer column: access and erasure are refused, with why
}


@pytest.mark.slow
@pytest.mark.parametrize("dataset", list(CASES))
def test_each_shipped_contract_runs_end_to_end(dataset, store, azurite, tmp_path):
    rows, min_auc, personal, federates = CASES[dataset]
    r = _fraudops(
        "--dataset", dataset, "demo", "--rows", str(rows), "--workdir", str(tmp_path),
        env_conn=azurite, cwd=ROOT, mlflow=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["dataset"] == dataset
    assert summary["etl"]["rows_in"] == rows == summary["etl"]["rows_valid"] + summary["etl"]["rows_duplicate"]
    assert summary["promoted"] and summary["serving_version"] == summary["model_version"]
    assert min_auc < summary["auc"] <= 1.0 and 0.0 < summary["pr_auc"] <= 1.0
    scored = summary["scored_over_http"]
    assert [s["transaction_id"] for s in scored] == [f"demo-{i}-{'fraud' if i > 2 else 'normal'}" for i in range(5)]
    assert all(0.0 <= s["fraud_probability"] <= 1.0 for s in scored)
    stream = summary["stream_replay"]
    assert stream["deadlettered"] == 1 and stream["scored"] == stream["sent"] - 1
    # labels for part of what was served, joined to both paths' records, then the monitoring run
    m = summary["monitoring"]
    assert m["labels_in"] == sum(1 for i in range(stream["scored"]) if i % 5 < 3) + 5 == m["labelled"]
    assert m["served"] == stream["scored"] + 5
    assert m["frauds_caught"] + m["frauds_missed"] >= 2  # the two HTTP frauds at least
    assert m["report"].startswith("reports/monitoring/") and m["level"] in ("ok", "warning", "critical")
    assert (summary["federated"]["banks"] == 3) is federates
    # the traffic's customer ids are pseudonymised everywhere, as is every other column declared personal
    assert not _blobs_holding(store, b"demo-customer-"), "a clear customer id is stored"
    if personal:
        landed = [b for b in _blobs_holding(store, personal) if not b.startswith("raw/")]
        assert not landed, f"a clear personal value is stored: {landed}"

    def gdpr(*args: str) -> tuple[int, str]:
        done = _fraudops("--dataset", dataset, "gdpr", *args, env_conn=azurite, cwd=ROOT)
        return done.returncode, done.stderr

    out = tmp_path / "access.json"
    code, err = gdpr("access", "--customer", "demo-customer-0001", "--out", str(out))
    if dataset == "home_credit":
        assert code == 1 and "declares no customer column" in err, err[-2000:]
        code, err = gdpr("erase", "--customer", "demo-customer-0001")
        assert code == 1 and "nothing to find or erase" in err, err[-2000:]
        return
    assert _blobs_holding(store, b"cust_"), "the pseudonyms are stored instead"
    assert code == 0, err[-2000:]
    found = json.loads(out.read_text())
    assert found["records"] > 0 and any(w.startswith("predictions/") for w in found["where"]), found["where"]
    code, err = gdpr("erase", "--customer", "demo-customer-0001")
    assert code == 0, err[-2000:]
    code, err = gdpr("access", "--customer", "demo-customer-0001", "--out", str(out))
    assert code == 0, err[-2000:]
    assert json.loads(out.read_text())["records"] == 0, "nothing is left about the customer"
