"""LightGBM to ONNX with onnxmltools, and the parity check that guards every export.

A model trained with derived features (``shared.scoring.derived.Products``) is exported with the
transform inside the graph: ``features`` (the contract's columns) -> Gather, Sub, Div, Mul for each
pair's standardised product -> Concat -> the tree ensemble. Serving keeps sending the contract's
features; the parity check compares the whole graph against LightGBM on the same transform.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from shared.domain.errors import TrainingError

if TYPE_CHECKING:
    import lightgbm as lgb
    import onnx

    from shared.scoring.derived import Products

INPUT_NAME = "features"
PARITY_TOLERANCE = 1e-4


THRESHOLDS = re.compile(r"^threshold=(.*)$", re.MULTILINE)
WIDE_NAME = "features_with_products"
OPSET = 15


def float32_thresholds(booster: lgb.Booster) -> lgb.Booster:
    """The same model with every split threshold moved down to the largest float32 at or below it.

    LightGBM compares ``x <= threshold`` in float64; ONNX's tree ensemble stores thresholds as float32,
    rounded to nearest, so an input exactly between the two sides of that rounding takes the other
    branch (with 4,095 bins a tree has many thresholds a hair from a data value). For a float32 input,
    ``x <= t`` holds exactly when ``x <= round_down_float32(t)``, so the rewritten booster decides every
    float32 input as the original does, and its ONNX export decides it the same way. Categorical
    splits (thresholds that index category lists) are left alone.
    """
    import lightgbm as lgb

    text = booster.model_to_string()
    if re.search(r"^num_cat=[1-9]", text, re.MULTILINE):
        return booster

    def down(match: re.Match[str]) -> str:
        values = np.asarray(match.group(1).split(), dtype=np.float64)
        with np.errstate(over="ignore"):
            f32 = values.astype(np.float32)
        above = f32.astype(np.float64) > values
        f32[above] = np.nextafter(f32[above], np.float32(-np.inf))
        return "threshold=" + " ".join(repr(float(v)) for v in f32)

    # tree_sizes gives each tree's length in bytes for parallel parsing; without it LightGBM reads them in order
    text = re.sub(r"^tree_sizes=.*\n", "", THRESHOLDS.sub(down, text), count=1, flags=re.MULTILINE)
    return lgb.Booster(model_str=text)


def to_onnx(booster: lgb.Booster, feature_names: list[str], products: Products | None = None) -> bytes:
    """A float32 ``[N, len(feature_names)]`` input named ``features``; outputs label and probabilities (no ZipMap)."""
    import onnx
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    width = len(feature_names) + (len(products) if products is not None else 0)
    model = convert_lightgbm(
        booster,
        initial_types=[(INPUT_NAME if products is None else WIDE_NAME, FloatTensorType([None, width]))],
        zipmap=False,
        target_opset=OPSET,
    )
    if products is not None:
        _prepend_products(model, products, len(feature_names))
    entry = model.metadata_props.add()
    entry.key, entry.value = "feature_names", ",".join(feature_names)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def _prepend_products(model: onnx.ModelProto, products: Products, inputs: int) -> None:
    """Make ``features`` the graph's input and compute the products in front of the ensemble."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    [wide] = list(graph.input)
    graph.input.remove(wide)
    graph.input.insert(0, helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [None, inputs]))
    a, b = (np.asarray([pair[i] for pair in products.pairs], dtype=np.int64) for i in (0, 1))
    constants: dict[str, np.ndarray] = {
        "derived_pair_a": a,
        "derived_pair_b": b,
        "derived_mean_a": np.asarray([m[0] for m in products.mean], dtype=np.float32),
        "derived_mean_b": np.asarray([m[1] for m in products.mean], dtype=np.float32),
        "derived_scale_a": np.asarray([s[0] for s in products.scale], dtype=np.float32),
        "derived_scale_b": np.asarray([s[1] for s in products.scale], dtype=np.float32),
    }
    graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in constants.items())
    nodes = []
    for side in ("a", "b"):
        nodes += [
            helper.make_node("Gather", [INPUT_NAME, f"derived_pair_{side}"], [f"derived_x_{side}"], axis=1),
            helper.make_node("Sub", [f"derived_x_{side}", f"derived_mean_{side}"], [f"derived_centred_{side}"]),
            helper.make_node("Div", [f"derived_centred_{side}", f"derived_scale_{side}"], [f"derived_z_{side}"]),
        ]
    nodes += [
        helper.make_node("Mul", ["derived_z_a", "derived_z_b"], ["derived_products"]),
        helper.make_node("Concat", [INPUT_NAME, "derived_products"], [WIDE_NAME], axis=1),
    ]
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + existing)
    if not any(o.domain in ("", "ai.onnx") for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("", OPSET))


def onnx_probabilities(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    out = session.run(None, {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})
    return np.asarray(out[1], dtype=np.float64)[:, 1]


def check_parity(
    booster: lgb.Booster,
    onnx_bytes: bytes,
    x: np.ndarray,
    tolerance: float = PARITY_TOLERANCE,
    products: Products | None = None,
) -> float:
    """Max |P_onnx - P_lightgbm| over ``x`` (the contract's features); ``TrainingError`` above ``tolerance``.

    Both see the same float32-rounded input, since the ONNX graph computes in float32; LightGBM gets
    the products from ``products.apply``, the graph computes its own.
    """
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    wide = x32 if products is None else products.apply(x32)
    expected = booster.predict(wide.astype(np.float64))
    got = onnx_probabilities(onnx_bytes, x32)
    diff = float(np.max(np.abs(got - expected))) if len(x32) else 0.0
    if diff >= tolerance:
        raise TrainingError(f"ONNX and LightGBM disagree by {diff:.2e} (limit {tolerance:.0e}); not publishing")
    return diff
