"""Derived columns (products, the linear score): the one transform training, the ONNX graph and the
explainer share; pair detection; float32-exact thresholds."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from shared.domain.errors import ModelIntegrityError
from shared.scoring.derived import Derived
from shared.scoring.explain import Explainer
from training.interactions import detect, pair_gains, top_pairs
from training.linear import fit_linear
from training.onnx_export import check_parity, float32_thresholds, onnx_probabilities, to_onnx
from training.search import DATASET_PARAMS

FEATURES = [f"f{i}" for i in range(6)]


def _data(n: int = 40_000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Fraud driven by the product of f0 and f1 (and a main effect of f2); f3..f5 are noise."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, 6)) * [1.0, 2.0, 1.0, 1.0, 3.0, 1.0] + [0.5, -1.0, 0, 0, 4.0, 0]).astype(np.float32)
    z0, z1 = (x[:, 0] - 0.5), (x[:, 1] + 1.0) / 2.0
    logit = -4.5 + 2.5 * z0 * z1 + 0.8 * x[:, 2]
    return x, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return _data()


def test_products_are_the_standardised_products_measured_on_the_training_rows(data):
    x, _ = data
    products = Derived.fit(x, [(0, 1), (4, 2)])
    wide = products.apply(x)
    assert wide.shape == (x.shape[0], 8) and wide.dtype == np.float32 and wide.flags.c_contiguous
    assert np.array_equal(wide[:, :6], x)
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    assert np.allclose(wide[:, 6], z[:, 0] * z[:, 1], atol=1e-4)
    assert np.allclose(wide[:, 7], z[:, 4] * z[:, 2], atol=1e-4)
    assert products.names(FEATURES) == ["f0*f1", "f4*f2"]
    again = Derived.from_manifest(products.to_manifest(FEATURES), FEATURES)
    assert again == products and np.array_equal(again.apply(x), wide)  # the manifest carries it exactly
    assert Derived.from_manifest([], FEATURES) is None
    # a manifest whose product names a feature the model does not take: refused with the feature's name
    with pytest.raises(ModelIntegrityError, match="computed from f9, which are not among its input features"):
        Derived.from_manifest([{**products.to_manifest(FEATURES)[0], "of": ["f0", "f9"]}], FEATURES)


def test_a_constant_column_does_not_divide_by_zero():
    x = np.ones((10, 3), dtype=np.float32)
    x[:, 1] = np.arange(10)
    out = Derived.fit(x, [(0, 1)]).apply(x)
    assert np.all(np.isfinite(out)) and np.all(out[:, 3] == 0.0)


def test_missing_values_stay_missing_in_the_product_and_the_manifest_holds_finite_numbers():
    """A column with missing values (NaN, as a bank's contract allows) used to give a NaN mean: every product
    was then missing, and the manifest stored the mean as null, which the explainer refused (home_credit's
    alerts came without explanations)."""
    import json

    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3)).astype(np.float32)
    x[::4, 0] = np.nan  # a quarter missing
    x[:, 2] = np.nan  # a column never present
    products = Derived.fit(x, [(0, 1), (2, 1)])
    entries = json.loads(json.dumps(products.to_manifest(FEATURES[:3])))  # as stored: NaN would not survive
    assert all(np.isfinite(v) for e in entries for v in (*e["mean"], *e["scale"])), entries
    present = ~np.isnan(x[:, 0])
    assert np.isclose(entries[0]["mean"][0], np.mean(x[present, 0]), atol=1e-5)
    again = Derived.from_manifest(entries, FEATURES[:3])
    assert again == products
    out = again.apply(x)
    assert np.all(np.isnan(out[~present, 3])) and np.all(np.isfinite(out[present, 3]))  # missing stays missing
    assert np.all(np.isnan(out[:, 4]))


def test_pair_detection_finds_the_interacting_pair_first(data):
    x, y = data
    products = detect(x, y, FEATURES, seed=1, dataset_params=DATASET_PARAMS, k=3)
    assert products is not None and products.pairs[0] == (0, 1), products.names(FEATURES)


def test_trees_that_never_nest_two_features_give_no_pairs(data):
    x, y = data
    stumps = lgb.train({"objective": "binary", "num_leaves": 2, "verbose": -1}, lgb.Dataset(x, y), 20)
    assert pair_gains(stumps) == {} and top_pairs({}) == []


def test_onnx_graph_computes_the_products_itself_and_agrees_with_lightgbm(data):
    x, y = data
    products = Derived.fit(x, [(0, 1), (2, 5)])
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 15, "verbose": -1},
        lgb.Dataset(products.apply(x), y, params=DATASET_PARAMS),
        60,
    )
    onnx_bytes = to_onnx(booster, FEATURES, products)
    import onnxruntime as ort

    [graph_input] = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"]).get_inputs()
    assert graph_input.name == "features" and graph_input.shape[-1] == 6  # serving sends the contract's columns
    got = onnx_probabilities(onnx_bytes, x[:5000])
    expected = booster.predict(products.apply(x[:5000]).astype(np.float64))
    assert np.max(np.abs(got - expected)) < 1e-5
    assert check_parity(booster, onnx_bytes, x[:5000], derived=products) < 1e-5
    # without the transform, the same booster's graph would take (and need) all eight columns
    with pytest.raises(Exception, match=r"(?i)dimension|shape|invalid"):
        onnx_probabilities(to_onnx(booster, [*FEATURES, "p0", "p1"]), x[:10])


def test_explanations_stay_on_the_inputs_and_add_up_to_the_raw_score(data):
    x, y = data
    products = Derived.fit(x, [(0, 1)])
    booster = lgb.train({"objective": "binary", "num_leaves": 7, "verbose": -1}, lgb.Dataset(products.apply(x), y), 40)
    explainer = Explainer(booster, FEATURES, products)
    contributions = explainer.contributions(x[:200])
    assert contributions.shape == (200, 7)  # six inputs, then the base value
    raw = booster.predict(products.apply(x[:200]).astype(np.float64), raw_score=True)
    assert np.allclose(contributions.sum(axis=1), raw, atol=1e-6)
    wide = booster.predict(products.apply(x[:200]).astype(np.float64), pred_contrib=True)
    assert np.allclose(contributions[:, 0], wide[:, 0] + wide[:, 6] / 2)  # half the product's share to f0
    assert np.allclose(contributions[:, 1], wide[:, 1] + wide[:, 6] / 2)  # and half to f1
    [one] = explainer.explain(x[:1], top_k=6)
    assert {c["feature"] for c in one["contributions"]} == set(FEATURES)


def test_float32_exact_thresholds_keep_onnx_on_lightgbm_s_side_of_every_split():
    """LightGBM splits at the float64 midpoint of two adjacent values; rounded to nearest float32 (as the
    converter does) it can land on the upper value, which ONNX then sends left and LightGBM right."""
    rng = np.random.default_rng(0)
    lows = rng.uniform(1.0, 2.0, 40).astype(np.float32)
    highs = np.nextafter(lows, np.float32(np.inf))  # the next float32: the midpoint lies exactly between
    x = np.concatenate([np.repeat(lows, 300), np.repeat(highs, 300)]).astype(np.float32)[:, None]
    y = np.concatenate([np.zeros(40 * 300), np.ones(40 * 300)]).astype(np.int8)  # a split between each pair
    params = {"objective": "binary", "num_leaves": 64, "min_child_samples": 5, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(x, y, params={**DATASET_PARAMS, "min_data_in_bin": 1}), 30)
    expected = booster.predict(x.astype(np.float64))
    rounded = float(np.max(np.abs(onnx_probabilities(to_onnx(booster, ["f0"]), x) - expected)))
    assert rounded > 1e-3  # the converter's rounding does send some rows the other way
    exact = float32_thresholds(booster)
    assert np.array_equal(exact.predict(x.astype(np.float64)), expected)  # the same model on float32 inputs
    assert np.max(np.abs(onnx_probabilities(to_onnx(exact, ["f0"]), x) - expected)) < 1e-6


def _shifted(n: int = 40_000, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Fraud that moves all six features a little in one direction: the signal lies along their weighted sum."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, 6)) * [1.0, 2.0, 0.5, 1.0, 3.0, 1.0] + [0, 1.0, 0, 0, 4.0, 0]).astype(np.float32)
    logit = -5.0 + 0.6 * x[:, 0] - 0.3 * x[:, 1] + 1.2 * x[:, 2] + 0.5 * x[:, 3] + 0.2 * x[:, 4] - 0.6 * x[:, 5]
    return x, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)


def test_the_linear_score_is_the_logistic_regression_s_log_odds_and_follows_the_direction():
    x, y = _shifted()
    linear = fit_linear(x, y, seed=1)
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    weights = np.asarray(linear.weights) / x.std(axis=0)  # back on the raw scale of each input
    assert np.corrcoef(weights, [0.6, -0.3, 1.2, 0.5, 0.2, -0.6])[0, 1] > 0.98, weights
    column = Derived((), (), (), linear).columns(x)[:, 0]
    assert np.allclose(column, z @ np.asarray(linear.weights) + linear.intercept, atol=1e-4)
    assert Derived((), (), (), linear).names(FEATURES) == ["linear_score"]
    both = Derived.fit(x, [(0, 1)], linear)
    assert len(both) == 2 and both.names(FEATURES) == ["f0*f1", "linear_score"]
    again = Derived.from_manifest(both.to_manifest(FEATURES), FEATURES)
    assert again == both and np.array_equal(again.apply(x), both.apply(x))  # the manifest carries it exactly
    # a linear score over other inputs than the model's: refused
    entries = both.to_manifest(FEATURES)
    entries[1] = {**entries[1], "of": list(reversed(FEATURES))}
    with pytest.raises(ModelIntegrityError, match="linear score is over other input features"):
        Derived.from_manifest(entries, FEATURES)


def test_onnx_graph_computes_the_linear_score_bit_for_bit_as_training_did():
    """A sum in another order than training's could put a row on the other side of a split: the graph adds
    the terms in the same order, so its derived columns equal the ones LightGBM was trained on exactly."""
    x, y = _shifted()
    derived = Derived.fit(x, [(0, 2)], fit_linear(x, y, seed=1))
    booster = float32_thresholds(
        lgb.train(
            {"objective": "binary", "num_leaves": 4, "verbose": -1},
            lgb.Dataset(derived.apply(x), y, params=DATASET_PARAMS),
            150,
        )
    )
    onnx_bytes = to_onnx(booster, FEATURES, derived)
    import onnx
    import onnxruntime as ort

    model = onnx.load_from_string(onnx_bytes)
    model.graph.output.append(onnx.helper.make_tensor_value_info("features_with_derived", onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    wide = session.run(["features_with_derived"], {"features": x})[0]
    assert np.array_equal(wide, derived.apply(x))  # every value, every row
    assert check_parity(booster, onnx_bytes, x, derived=derived) < 1e-6


def test_explanations_share_the_linear_score_among_the_inputs_and_add_up(data):
    x, y = _shifted()
    derived = Derived((), (), (), fit_linear(x, y, seed=1))
    booster = lgb.train({"objective": "binary", "num_leaves": 4, "verbose": -1}, lgb.Dataset(derived.apply(x), y), 60)
    contributions = Explainer(booster, FEATURES, derived).contributions(x[:300])
    wide = booster.predict(derived.apply(x[:300]).astype(np.float64), pred_contrib=True)
    assert contributions.shape == (300, 7)
    assert np.allclose(contributions.sum(axis=1), wide.sum(axis=1), atol=1e-6)  # nothing lost or invented
    terms = np.abs(derived.linear.terms(x[:300]).astype(np.float64))
    share = terms / terms.sum(axis=1, keepdims=True)
    assert np.allclose(contributions[:, :6], wide[:, :6] + share * wide[:, [6]])
