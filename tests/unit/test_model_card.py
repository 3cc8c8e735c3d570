"""Model cards from manifests: every section for a retrained model, the privacy section and per-bank figures
for a federated one, and a card for an older manifest without the newer fields."""

from __future__ import annotations

from typing import Any

from shared.domain.documents.model import ModelManifest
from shared.domain.model_card import html_page, markdown, sections


def manifest(fields: dict[str, Any]) -> ModelManifest:
    """``fields`` as a stored manifest: what the model store writes itself is filled in where a case leaves it out."""
    return ModelManifest.model_validate({"model_name": "model", "created_at": "", "sha256": "", **fields})


LIGHTGBM = {
    "model_name": "fraud",
    "version": "20261204T020000Z-1a2b3c4d",
    "kind": "lightgbm",
    "created_at": "2026-12-04T02:00:00+00:00",
    "sha256": "ab" * 32,
    "dataset": "creditcard",
    "dataset_version": "v7",
    "trained_on": ["a.parquet", "b.parquet"],
    "split": {"window_rows": 300000},
    "threshold": 0.31,
    "cost_fn": 10.0,
    "cost_fp": 1.0,
    "metrics": {
        "auc": 0.974,
        "pr_auc": 0.81,
        "recall": 0.8,
        "precision": 0.7,
        "rows": 60000,
        "frauds": 100,
        "cost": 240,
    },
    "metric_intervals": {"auc": [0.961, 0.985], "pr_auc": [0.75, 0.86]},
    "figures": {"metrics": "backtest model: fitted on the dev rows, measured on the test part"},
    "segments": {
        "amount": [
            {
                "segment": "0-10",
                "rows": 30000,
                "frauds": 40,
                "auc": 0.97,
                "recall": 0.75,
                "precision": 0.6,
                "false_alarm_rate": 0.001,
            }
        ],
        "time_of_day": [{"segment": "night (00-06)", "rows": 0, "frauds": 0}],
    },
    "shap_importance": [{"feature": "V14", "mean_abs_shap": 1.2}, {"feature": "V4", "mean_abs_shap": 0.5}],
    "drift_at_training": {"checked": True, "alert": False, "message": "no drift: 0 of 29 features over PSI 0.2"},
}
FEDERATED = {
    "model_name": "fraud",
    "version": "fl-fraud-lr-r3",
    "kind": "federated",
    "threshold": 0.5,
    "metrics": {},
    "feature_importance": {"V14": -1.5, "V4": 0.9, "Amount": 0.01},
    "experiment": "fraud-lr",
    "round": 3,
    "participants": ["bank-a", "bank-b", "bank-c"],
    "aggregator": "trimmed_mean",
    "clip_bound": 5.0,
    "noise_multiplier": 1.1,
    "epsilon": 2.4,
    "dp_delta": 1e-5,
    "bank_reports": {
        "bank-a": {"examples": 1000, "metrics": {"auc": 0.91}},
        "bank-b": {"examples": 500, "metrics": {"auc": 0.88}},
    },
}


def test_a_retrained_model_s_card_has_every_section_with_its_figures():
    titles = [s.title for s in sections(manifest(LIGHTGBM))]
    assert titles == [
        "Intended use and limits",
        "Model",
        "Data",
        "Features",
        "Metrics",
        "Threshold and costs",
        "Performance per segment",
        "Top features",
        "Drift at training",
    ]
    md = markdown(manifest(LIGHTGBM))
    assert "| ROC-AUC | 0.974 | 0.961 to 0.985 |" in md and "| 0-10 | 30000 | 40 | 0.97 | 0.75 | 0.6 | 0.001 |" in md
    assert "10 x missed cases of fraud + 1 x false alarms" in md and "| V14 | 1.2 |" in md and "no drift" in md
    # what the model reads, in the contract's own words; what is personal, from the contract too
    assert "| Amount | float | EUR | the transaction's amount |" in md
    assert "Personal columns (customer_id) are pseudonymised" in md
    assert "| fraud rate of the test part | 0.001667 |" in md
    page = html_page(manifest(LIGHTGBM))
    assert page.startswith("<!doctype html>") and "<h2>Performance per segment</h2>" in page and "<td>V14</td>" in page


def test_a_federated_model_s_card_names_the_banks_and_the_privacy_parameters():
    md = markdown(manifest(FEDERATED))
    assert "## Federated training and privacy" in md and "bank-a, bank-b, bank-c" in md
    assert "| epsilon (differential privacy) | 2.4 |" in md and "| noise multiplier | 1.1 |" in md
    assert "| bank-a | 1000 | 0.91 |" in md and "| V14 | -1.5 |" in md  # per bank, and the weights
    assert "federated logistic regression" in md


def test_an_older_manifest_still_gets_a_card_and_html_is_escaped():
    old = {"version": "v1", "kind": "lightgbm", "threshold": 0.5, "dataset": "<script>alert(1)</script>"}
    assert "No segment figures" in markdown(manifest(old)) and "Not checked" in markdown(manifest(old))
    assert "<script>" not in html_page(manifest(old)) and "&lt;script&gt;" in html_page(manifest(old))


def test_the_feature_table_follows_a_dataset_s_contract_with_its_categories():
    doc = manifest(LIGHTGBM).model_dump()
    doc |= {
        "dataset": "card_transactions",
        "feature_names": ["amount", "mcc", "channel", "country", "card_present"],
        "categories": {"mcc": ["5411", "5999"], "channel": ["pos", "ecom", "atm", "moto"], "country": ["FR"]},
    }
    md = markdown(ModelManifest.model_validate(doc))

    assert "| mcc | categorical, 2 categories learnt |  | the merchant category code (ISO 18245) |" in md
    assert "| country | categorical (may be missing), 1 categories learnt |" in md
    assert "never saw is scored as a missing value" in md
    assert "Personal columns (customer_id, card_id) are pseudonymised" in md
    assert "with the probability that each is fraud" in md and "dataset card_transactions" in md
