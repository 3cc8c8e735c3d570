"""A quickly trained LightGBM model published like a real one, for API tests and the scoring benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shared.adapters.model_store import ModelStore
from shared.adapters.storage import BlobStore
from shared.domain.contract import ColumnType, DatasetContract
from shared.domain.contracts import get_contract
from shared.domain.documents.model import LIGHTGBM, ModelDescription, ModelManifest
from shared.domain.encoding import Encoding, categorical_features, learn_vocabulary


def publish_synthetic_model(
    store: BlobStore,
    model_name: str,
    *,
    version: str,
    trees: int = 50,
    rows: int = 20_000,
    seed: int = 0,
    promote: bool = True,
    threshold: float = 0.5,
) -> ModelManifest:
    """Train ``trees`` boosting rounds (no early stopping) on generated rows, publish ONNX + booster, promote."""
    from training.generate import DATASET, sample_features

    x, y = sample_features(rows, seed, fraud_rate=0.05)
    return _publish_booster(
        store, model_name, get_contract(DATASET), x, y, None,
        version=version, trees=trees, seed=seed, threshold=threshold, promote=promote,
    )  # fmt: skip


def _publish_booster(
    store: BlobStore,
    model_name: str,
    contract: DatasetContract,
    x: np.ndarray,
    y: np.ndarray,
    encoding: Encoding | None,
    *,
    version: str,
    trees: int,
    seed: int,
    threshold: float,
    promote: bool,
) -> ModelManifest:
    """``trees`` rounds of 15 leaves on ``x`` (categorical splits where ``encoding`` says), exported, checked,
    published with what a trained model carries for live drift, and promoted when asked."""
    import lightgbm as lgb

    from shared.domain import drift
    from shared.domain.telemetry import PROBABILITY_BUCKETS
    from training.onnx_export import check_parity, to_onnx

    features = contract.model_features  # the transaction's own, then the behavioural ones
    categorical = encoding.categorical if encoding is not None else []
    params = {"objective": "binary", "num_leaves": 15, "learning_rate": 0.05, "min_data_per_group": 20}
    params |= {"verbose": -1, "seed": seed, "deterministic": True, "num_threads": 2}
    data = lgb.Dataset(x, y, feature_name=features, categorical_feature=categorical or "auto")
    booster = lgb.train(params, data, num_boost_round=trees)
    onnx_bytes = to_onnx(booster, features)
    models = ModelStore(store, model_name)
    manifest = models.publish(
        version,
        onnx_bytes,
        ModelDescription(
            kind=LIGHTGBM,
            feature_names=features,
            categories=encoding.to_manifest() if encoding is not None else {},
            input_name="features",
            threshold=threshold,
            metrics={"trees": trees},
            dataset=contract.name,
            contract_sha256=contract.sha256,
            contract_input_sha256=contract.input_sha256,
            dataset_version="synthetic",
            parity_max_abs_diff=check_parity(booster, onnx_bytes, x[:2000]),
            # what a trained model carries for live drift (training.pipeline does the same)
            training_profile=drift.profile(x, features, categorical=categorical),
            score_profile=drift.score_profile(np.asarray(booster.predict(x)), PROBABILITY_BUCKETS),
        ),
        extra_files={"model.txt": booster.model_to_string().encode()},
    )
    if promote:
        models.promote(version, expected_etag=models.champion()[1], reason="synthetic model for tests")
    return manifest


def contract_rows(
    contract: DatasetContract, path: Path
) -> tuple[np.ndarray, np.ndarray, Encoding, dict[str, list[object]]]:
    """A generated CSV of ``contract`` as the model reads it: float32 features (categories coded by a vocabulary
    learnt from the file, booleans 1/0, missing NaN), the labels, the encoding, and each categorical's texts."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    texts = {c.name: pa.string() for c in contract.columns if c.type in (ColumnType.STRING, ColumnType.TIMESTAMP)}
    texts |= {name: pa.string() for name in categorical_features(contract)}
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=texts, strings_can_be_null=True))
    features = contract.model_features
    own = contract.feature_names
    vocabularies, categories = {}, {}
    x = np.empty((table.num_rows, len(features)), np.float32)
    if len(features) > len(own):  # the behavioural features, point in time over the file's own rows
        x[:, len(own) :] = _behaviour_of(contract, table)
    for j, name in enumerate(own):
        column = table.column(name)
        if name in texts:
            counted = pc.value_counts(column.drop_null()).to_pylist()
            vocabularies[name] = learn_vocabulary(
                contract, name, [c["values"] for c in counted], np.array([c["counts"] for c in counted])
            )
            categories[name] = column.to_pylist()
            continue
        x[:, j] = np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), np.float64)
    encoding = Encoding(tuple(features), vocabularies)
    encoding.fill(x, categories)
    assert contract.label is not None
    return x, np.asarray(table.column(contract.label.name), np.int8), encoding, categories


def _behaviour_of(contract: DatasetContract, table: Any) -> np.ndarray:
    from datetime import datetime

    from shared.domain.history import history_of, read_columns
    from shared.domain.windows import point_in_time

    assert contract.time_column is not None and contract.label is not None
    times = table.column(contract.time_column.name).to_pylist()
    seconds = np.array([datetime.fromisoformat(t).timestamp() for t in times], np.float64)
    keys, numbers, values = read_columns(contract.behaviour)
    columns = {name: table.column(name).to_pylist() for name in keys + values + numbers}
    tid = contract.transaction_id
    ids = table.column(tid).to_pylist() if tid else [str(i) for i in range(table.num_rows)]
    label = np.asarray(table.column(contract.label.name), np.float64)
    built = point_in_time(history_of(contract, seconds, ids, columns, label), contract.behaviour, contract.time_zone)
    return np.column_stack([built[n] for n in contract.behaviour.names()]).astype(np.float32)


def publish_contract_model(
    store: BlobStore,
    model_name: str,
    contract: DatasetContract,
    path: Path,
    *,
    version: str,
    trees: int = 300,
    seed: int = 0,
) -> ModelManifest:
    """``trees`` boosting rounds (15 leaves, no early stopping) on a generated file of ``contract``, with
    LightGBM's categorical splits for its categories; published with its vocabularies and promoted. Two
    contracts of the same width get models of the same size, which is what the scoring benchmark compares."""
    x, y, encoding, _ = contract_rows(contract, path)
    return _publish_booster(
        store, model_name, contract, x, y, encoding,
        version=version, trees=trees, seed=seed, threshold=0.5, promote=True,
    )  # fmt: skip
