"""Categorical splits exported as indicator columns: the same predictions as LightGBM, trees of LightGBM's size."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import onnx
import pytest

from training.onnx_categories import as_indicators
from training.onnx_export import onnx_probabilities, to_onnx, with_missing

FEATURES = ["merchant", "channel", "amount", "country", "hour"]
CATEGORICAL = [0, 1, 3]


@pytest.fixture(scope="module")
def model() -> tuple[lgb.Booster, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 8_000
    x = np.column_stack(
        [
            rng.integers(0, 250, n),  # many categories: splits on large sets
            rng.integers(0, 4, n),
            rng.lognormal(3, 1, n),
            rng.integers(0, 31, n),
            rng.integers(0, 24, n),
        ]
    ).astype(np.float32)
    x[rng.random(n) < 0.1, 3] = np.nan  # a missing category
    x[rng.random(n) < 0.05, 2] = np.nan
    y = (((x[:, 0] % 7 == 0) | (x[:, 1] == 2)) ^ (x[:, 2] > 40) | np.isnan(x[:, 3])).astype(int)
    params = {"objective": "binary", "verbose": -1, "num_leaves": 15, "min_data_per_group": 20, "seed": 1}
    booster = lgb.train(params, lgb.Dataset(x, y, categorical_feature=CATEGORICAL), num_boost_round=120)
    return booster, x


def _ensemble(onnx_bytes: bytes) -> onnx.NodeProto:
    graph = onnx.load_from_string(onnx_bytes).graph
    return next(n for n in graph.node if n.op_type.startswith("TreeEnsemble"))


def test_the_graph_predicts_as_lightgbm_on_missing_unseen_negative_fractional_and_huge_codes(model) -> None:
    booster, x = model
    probe = with_missing(x[:1_000])
    hostile = np.repeat(x[:10], 10, axis=0)
    odd = np.array([-3, -0.5, 0.5, 249.7, 250, 300, 1e30, -1e30, np.inf, -np.inf], dtype=np.float32)
    for j in CATEGORICAL:
        column = hostile.copy()
        column[:, j] = np.tile(odd, 10)
        probe = np.concatenate([probe, column])
    onnx_bytes = to_onnx(booster, FEATURES)
    assert np.abs(onnx_probabilities(onnx_bytes, probe) - booster.predict(probe)).max() < 1e-6


def test_the_trees_keep_lightgbms_size_with_no_equality_chains(model) -> None:
    booster, _ = model
    dump = booster.dump_model()["tree_info"]

    def nodes(tree: dict) -> int:
        return 1 + sum(nodes(tree[side]) for side in ("left_child", "right_child") if side in tree)

    ensemble = _ensemble(to_onnx(booster, FEATURES))
    modes = next(a for a in ensemble.attribute if a.name == "nodes_modes").strings
    assert set(modes) == {b"BRANCH_LEQ", b"LEAF"}  # onnxmltools alone chains one BRANCH_EQ per category
    assert len(modes) == sum(nodes(t["tree_structure"]) for t in dump)


def test_the_rewritten_booster_on_the_wide_input_is_the_same_model(model) -> None:
    booster, x = model
    wide, indicators = as_indicators(booster)
    assert indicators.base == len(FEATURES) and {c for c, _ in indicators.sets} <= set(CATEGORICAL)
    assert wide.num_feature() == len(FEATURES) + len(indicators)
    both = np.concatenate([x, indicators.values(x)], axis=1)
    np.testing.assert_array_equal(wide.predict(both), booster.predict(x))


def test_a_numeric_model_is_left_as_it_is() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 3))
    booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(x, (x[:, 0] > 0).astype(int)), 5)
    same, indicators = as_indicators(booster)
    assert same is booster and len(indicators) == 0


def test_a_model_with_monotone_constraints_exports_too(model) -> None:
    """The rewrite widens every per-feature header list, monotone constraints included (else LightGBM refuses)."""
    _, x = model
    y = (x[:, 2] > 40).astype(int)
    params = {"objective": "binary", "verbose": -1, "num_leaves": 7, "monotone_constraints": [0, 0, 1, 0, 0]}
    booster = lgb.train(params, lgb.Dataset(x, y, categorical_feature=CATEGORICAL), num_boost_round=20)
    probe = with_missing(x[:500])
    assert np.abs(onnx_probabilities(to_onnx(booster, FEATURES), probe) - booster.predict(probe)).max() < 1e-6
