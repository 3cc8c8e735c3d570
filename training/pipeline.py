"""The retraining pipeline that the timer function and ``fraudops train`` run.

Load a curated dataset version, split by time (never randomly: fraud drifts), train LightGBM
with early stopping on the validation part, choose the threshold of least business cost on
the validation part, evaluate once on the test part, export to ONNX and check parity, then
publish and promote only if the new model beats the champion on the same test part.
A failed run raises ``TrainingError`` and leaves the champion untouched.
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.contract import DatasetContract, get_contract
from shared.errors import ConcurrentUpdateError, ModelIntegrityError, ModelNotAvailableError, TrainingError
from shared.etl.manifest import files_of_version
from shared.model_store import ModelStore, new_version
from training.evaluation import best_threshold, cost_curve, evaluate
from training.onnx_export import check_parity, onnx_probabilities, to_onnx

if TYPE_CHECKING:
    import pandas as pd

    from shared.settings import Settings
    from shared.storage import BlobStore

log = logging.getLogger(__name__)

SPLIT = (0.6, 0.2, 0.2)


@dataclass(frozen=True)
class TrainConfig:
    """What a run needs from settings; explicit so tests can vary it."""

    cost_fn: float = 10.0
    cost_fp: float = 1.0
    seed: int = 42
    num_boost_round: int = 300
    pr_auc_margin: float = 0.01

    @classmethod
    def from_settings(cls, settings: Settings) -> TrainConfig:
        return cls(settings.cost_fn, settings.cost_fp, settings.train_seed,
                   settings.train_num_boost_round, settings.promotion_pr_auc_margin)


def load_dataset(store: BlobStore, contract: DatasetContract,
                 version: str | None = None) -> tuple[str, list[str], pd.DataFrame]:
    """A dataset version (latest by default) as one DataFrame, with its version and files."""
    import pandas as pd
    import pyarrow.parquet as pq

    version, files = files_of_version(store, contract.name, version)
    wanted = [c for c in contract.names if contract.column(c).dtype != "string"]
    tables = [pq.read_table(io.BytesIO(store.get_bytes("curated", f)[0]), columns=wanted) for f in files]
    frame = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
    return version, files, frame


def time_split(frame: pd.DataFrame, time_column: str,
               fractions: tuple[float, float, float] = SPLIT) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """Earliest part to train, then validation, then test, by ``time_column``; boundaries recorded."""
    ordered = frame.sort_values(time_column, kind="stable").reset_index(drop=True)
    n = len(ordered)
    a = int(n * fractions[0])
    b = int(n * (fractions[0] + fractions[1]))
    train, valid, test = ordered.iloc[:a], ordered.iloc[a:b], ordered.iloc[b:]
    boundaries = {
        "column": time_column,
        "train": [float(train[time_column].min()), float(train[time_column].max()), len(train)],
        "valid": [float(valid[time_column].min()), float(valid[time_column].max()), len(valid)],
        "test": [float(test[time_column].min()), float(test[time_column].max()), len(test)],
    }
    return train, valid, test, boundaries


def fit_lightgbm(x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray,
                 feature_names: list[str], config: TrainConfig) -> tuple[Any, dict[str, Any]]:
    """LightGBM with early stopping on validation average precision."""
    import lightgbm as lgb

    params = {
        "objective": "binary", "learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 50,
        "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0,
        "metric": "average_precision", "seed": config.seed, "deterministic": True,
        "num_threads": 2, "verbose": -1,
    }
    train = lgb.Dataset(x_train, y_train, feature_name=feature_names, free_raw_data=True)
    valid = lgb.Dataset(x_valid, y_valid, reference=train)
    booster = lgb.train(
        params, train, num_boost_round=config.num_boost_round, valid_sets=[valid],
        callbacks=[lgb.early_stopping(50, verbose=False)],
    )
    return booster, {**params, "num_boost_round": config.num_boost_round,
                     "best_iteration": booster.best_iteration}


def _matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    return np.ascontiguousarray(frame[features].to_numpy(dtype=np.float32))


def _champion_metrics(models: ModelStore, champion: str, contract: DatasetContract,
                      x_test: np.ndarray, y_test: np.ndarray, config: TrainConfig) -> dict[str, float] | None:
    from shared.scorer import load_model

    try:
        model = load_model(models, champion, expected_features=contract.feature_names, threads=1)
    except (ModelIntegrityError, ModelNotAvailableError) as exc:
        log.warning("champion %s cannot be scored (%s); the new model replaces it", champion, exc.reason)
        return None
    return evaluate(y_test, model.predict_proba(x_test), model.threshold,
                    cost_fn=config.cost_fn, cost_fp=config.cost_fp)


def decide_promotion(new: dict[str, float], champion: dict[str, float] | None, margin: float) -> tuple[bool, str]:
    """Promote when there is no champion, or when cost is lower and PR-AUC is not worse by more than ``margin``."""
    if champion is None:
        return True, "first model (no usable champion)"
    if new["cost"] >= champion["cost"]:
        return False, f"cost {new['cost']:g} is not lower than the champion's {champion['cost']:g}"
    if new["pr_auc"] < champion["pr_auc"] - margin:
        return False, (f"PR-AUC {new['pr_auc']:.4f} is worse than the champion's "
                       f"{champion['pr_auc']:.4f} by more than {margin}")
    return True, f"cost {new['cost']:g} < champion's {champion['cost']:g}"


def run_training(store: BlobStore, settings: Settings, *, dataset_version: str | None = None,
                 config: TrainConfig | None = None) -> dict[str, Any]:
    """One retraining run; returns its summary (also written to ``reports/training/``)."""
    started = time.perf_counter()
    config = config or TrainConfig.from_settings(settings)
    contract = get_contract(settings.dataset_name)
    label, time_col = contract.label, contract.time_column
    if label is None or time_col is None:
        raise TrainingError(f"dataset {contract.name} has no label or time column to train on")
    features = contract.feature_names
    version, files, frame = load_dataset(store, contract, dataset_version)
    train, valid, test, split = time_split(frame, time_col.name)
    for part, name in ((train, "train"), (valid, "validation"), (test, "test")):
        if part[label.name].nunique() < 2:
            raise TrainingError(f"the {name} part has only one class; more data is needed to train")
    x_train, x_valid, x_test = (_matrix(p, features) for p in (train, valid, test))
    y_train, y_valid, y_test = (p[label.name].to_numpy() for p in (train, valid, test))
    del frame, train, valid, test

    booster, params = fit_lightgbm(x_train, y_train, x_valid, y_valid, features, config)
    curve = cost_curve(y_valid, booster.predict(x_valid), cost_fn=config.cost_fn, cost_fp=config.cost_fp)
    threshold = best_threshold(curve)
    onnx_bytes = to_onnx(booster, features)
    parity = check_parity(booster, onnx_bytes, x_test)
    metrics = evaluate(y_test, onnx_probabilities(onnx_bytes, x_test), threshold,
                       cost_fn=config.cost_fn, cost_fp=config.cost_fp)

    models = ModelStore(store, settings.model_name)
    champion, pointer_etag = models.champion()
    champion_metrics = (_champion_metrics(models, champion, contract, x_test, y_test, config)
                        if champion else None)
    promote, reason = decide_promotion(metrics, champion_metrics, config.pr_auc_margin)
    model_version = new_version(salt=version)
    importance = dict(zip(features, booster.feature_importance("gain").round(3).tolist(), strict=True))
    manifest = models.publish(model_version, onnx_bytes, {
        "kind": "lightgbm", "feature_names": features, "input_name": "features",
        "threshold": threshold, "metrics": metrics, "dataset": contract.name,
        "dataset_version": version, "trained_on": files, "split": split, "hyperparameters": params,
        "feature_importance": importance, "parity_max_abs_diff": parity,
        "training_seconds": round(time.perf_counter() - started, 3),
    }, extra_files={"model.txt": booster.model_to_string().encode()})
    if promote:
        try:
            models.promote(model_version, expected_etag=pointer_etag, reason=reason)
        except ConcurrentUpdateError as exc:
            promote, reason = False, exc.reason
    summary = {
        "model_version": model_version, "dataset_version": version, "auc": metrics["auc"],
        "pr_auc": metrics["pr_auc"], "threshold": threshold, "cost": metrics["cost"],
        "promoted": promote, "promotion_reason": reason, "champion_before": champion,
        "champion_metrics": champion_metrics, "metrics": metrics, "parity_max_abs_diff": parity,
        "split": split, "cost_curve": curve, "sha256": manifest["sha256"],
        "train_seconds": round(time.perf_counter() - started, 3),
    }
    store.put_bytes("reports", f"training/{model_version}.json",
                    json.dumps(summary, indent=1, default=str).encode(), content_type="application/json")
    log.info("trained %s on %s: auc=%.4f pr_auc=%.4f threshold=%.2f promoted=%s (%s)",
             model_version, version, metrics["auc"], metrics["pr_auc"], threshold, promote, reason)
    return summary
