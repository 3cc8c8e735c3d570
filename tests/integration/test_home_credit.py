"""Home Credit's real applications (the 1,000-row sample), with only its contract file added: ingested, trained,
exported and scored, and its quality within a stated margin of a plain LightGBM on the same split."""

from __future__ import annotations

import numpy as np
import pytest

from shared.adapters.model_store import ModelStore
from shared.domain.contracts import get_contract
from shared.domain.encoding import Encoding
from shared.etl.service import run_etl
from shared.scoring.scorer import load_model
from tests.conftest import SHARED_DATA
from training.pipeline import run_training

SAMPLE = SHARED_DATA / "home_credit_application_sample.csv"
MARGIN = 0.06  # ROC-AUC and PR-AUC below the plain model's, at most: 200 test rows hold about 16 defaults


def _plain_lightgbm(dev_rows: int) -> tuple[float, float]:
    """LightGBM's defaults with pandas' categories, fitted on the same first rows, on the same last rows."""
    import lightgbm as lgb
    import pandas as pd
    from sklearn.metrics import average_precision_score, roc_auc_score

    frame = pd.read_csv(SAMPLE)
    y = frame.pop("TARGET").to_numpy()
    frame = frame.drop(columns=["SK_ID_CURR"])
    for name in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[name]):
            frame[name] = frame[name].astype("category")
    model = lgb.LGBMClassifier(verbose=-1, random_state=0).fit(frame[:dev_rows], y[:dev_rows])
    p = model.predict_proba(frame[dev_rows:])[:, 1]
    return roc_auc_score(y[dev_rows:], p), average_precision_score(y[dev_rows:], p)


@pytest.mark.slow
def test_home_credit_trains_serves_and_stays_near_a_plain_lightgbm(store, settings, monkeypatch):
    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} is absent (the shared data folder is not beside the project)")
    from shared.domain.settings import get_settings

    monkeypatch.setenv("DATASET_NAME", "home_credit")
    get_settings.cache_clear()
    config = get_settings()
    contract = get_contract("home_credit")
    store.put_bytes("raw", "applications.csv", SAMPLE.read_bytes())

    etl = run_etl(store, config.etl, name="applications.csv")
    run = run_training(store, config=config.training, storage=config.storage)

    assert etl.rows_valid == 1000 and etl.rows_quarantined == 0
    assert run.promoted and run.parity_max_abs_diff < 1e-4
    models = ModelStore(store, config.model_name)
    manifest = models.manifest(run.model_version)
    assert len(manifest.categories) == 16 and manifest.contract_sha256 == contract.sha256
    plain_auc, plain_pr = _plain_lightgbm(manifest.split["dev"][2])
    assert run.auc >= plain_auc - MARGIN, (run.auc, plain_auc)
    assert run.pr_auc >= plain_pr - MARGIN, (run.pr_auc, plain_pr)

    # scored as served: categories as text, one never seen and one missing, every number missing
    model = load_model(models, run.model_version, expected_features=contract.feature_names, threads=1)
    x = np.full((3, len(contract.feature_names)), np.nan, dtype=np.float32)
    texts = {name: ["Working", "a category never seen", None] for name in manifest.categories}
    p = model.predict_proba(model.encode(x, texts))
    assert p.shape == (3,) and np.all((p > 0) & (p < 1))
    coded = Encoding.from_manifest(contract.feature_names, manifest.categories).fill(x.copy(), texts)
    assert np.isnan(coded[1:, 0]).all() and p[1] == pytest.approx(p[2])  # unseen is scored as missing
