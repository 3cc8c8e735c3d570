"""LightGBM to ONNX with onnxmltools, and the parity check that guards every export.

A model trained with derived features (``shared.scoring.derived.Derived``) is exported with the
transform inside the graph: ``features`` (the contract's columns) -> Gather, Sub, Div, Mul for each
pair's standardised product, and Sub, Div, Mul, Split and a chain of Adds for the linear score ->
Concat -> the tree ensemble. Serving keeps sending the contract's
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

    from shared.scoring.derived import Derived, Linear
    from training.onnx_categories import Indicators

INPUT_NAME = "features"
PARITY_TOLERANCE = 1e-4


THRESHOLDS = re.compile(r"^threshold=(.*)$", re.MULTILINE)
WIDE_NAME = "features_with_derived"
OPSET = 15


def float32_thresholds(booster: lgb.Booster) -> lgb.Booster:
    """The same model with every split threshold moved down to the largest float32 at or below it.

    LightGBM compares ``x <= threshold`` in float64; ONNX's tree ensemble stores thresholds as float32,
    rounded to nearest, so an input exactly between the two sides of that rounding takes the other
    branch (with 4,095 bins a tree has many thresholds a hair from a data value). For a float32 input,
    ``x <= t`` holds exactly when ``x <= round_down_float32(t)``, so the rewritten booster decides every
    float32 input as the original does, and its ONNX export decides it the same way. Categorical
    splits (their thresholds index the tree's category lists; ``decision_type`` bit 0) are left alone.
    """
    import lightgbm as lgb

    text = booster.model_to_string()
    trees = re.split(r"(?m)^(?=Tree=)", text)
    trees[1:] = [_tree_down(tree) for tree in trees[1:]]
    # tree_sizes gives each tree's length in bytes for parallel parsing; without it LightGBM reads them in order
    text = re.sub(r"^tree_sizes=.*\n", "", "".join(trees), count=1, flags=re.MULTILINE)
    return lgb.Booster(model_str=text)


def _tree_down(tree: str) -> str:
    """One tree's numeric thresholds rounded down to float32 (categorical ones kept)."""
    kinds = re.search(r"(?m)^decision_type=(.*)$", tree)
    categorical = np.asarray(kinds.group(1).split(), dtype=np.int64) & 1 if kinds else None

    def down(match: re.Match[str]) -> str:
        parts = match.group(1).split()
        values = np.asarray(parts, dtype=np.float64)
        with np.errstate(over="ignore"):
            f32 = values.astype(np.float32)
        above = f32.astype(np.float64) > values
        f32[above] = np.nextafter(f32[above], np.float32(-np.inf))
        out = [repr(float(v)) for v in f32]
        if categorical is not None and categorical.size == len(parts):
            out = [p if c else o for p, o, c in zip(parts, out, categorical, strict=True)]
        return "threshold=" + " ".join(out)

    return THRESHOLDS.sub(down, tree)


def to_onnx(booster: lgb.Booster, feature_names: list[str], derived: Derived | None = None) -> bytes:
    """A float32 ``[N, len(feature_names)]`` input named ``features``; outputs label and probabilities (no ZipMap).

    Categorical splits are exported as numeric splits on indicator columns (``training.onnx_categories``).
    """
    import onnx
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    from training.onnx_categories import as_indicators

    booster, indicators = as_indicators(booster)
    width = len(feature_names) + (len(derived) if derived is not None else 0) + len(indicators)
    wide = derived is not None or len(indicators) > 0
    model = convert_lightgbm(
        booster,
        initial_types=[(WIDE_NAME if wide else INPUT_NAME, FloatTensorType([None, width]))],
        zipmap=False,
        target_opset=OPSET,
    )
    if wide:
        _prepend_derived(model, derived, indicators, len(feature_names))
    entry = model.metadata_props.add()
    entry.key, entry.value = "feature_names", ",".join(feature_names)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def _prepend_derived(model: onnx.ModelProto, derived: Derived | None, indicators: Indicators, inputs: int) -> None:
    """Make ``features`` the graph's input and compute the derived columns, then the categories' indicator
    columns, in front of the ensemble."""
    from onnx import TensorProto, helper, numpy_helper

    from training.onnx_categories import indicator_nodes

    graph = model.graph
    [wide] = list(graph.input)
    graph.input.remove(wide)
    graph.input.insert(0, helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [None, inputs]))
    constants: dict[str, np.ndarray] = {}
    nodes = []
    parts = [INPUT_NAME]
    if derived is not None and derived.pairs:
        constants |= {
            "derived_pair_a": np.asarray([pair[0] for pair in derived.pairs], dtype=np.int64),
            "derived_pair_b": np.asarray([pair[1] for pair in derived.pairs], dtype=np.int64),
            "derived_mean_a": np.asarray([m[0] for m in derived.mean], dtype=np.float32),
            "derived_mean_b": np.asarray([m[1] for m in derived.mean], dtype=np.float32),
            "derived_scale_a": np.asarray([s[0] for s in derived.scale], dtype=np.float32),
            "derived_scale_b": np.asarray([s[1] for s in derived.scale], dtype=np.float32),
        }
        for side in ("a", "b"):
            nodes += [
                helper.make_node("Gather", [INPUT_NAME, f"derived_pair_{side}"], [f"derived_x_{side}"], axis=1),
                helper.make_node("Sub", [f"derived_x_{side}", f"derived_mean_{side}"], [f"derived_centred_{side}"]),
                helper.make_node("Div", [f"derived_centred_{side}", f"derived_scale_{side}"], [f"derived_z_{side}"]),
            ]
        nodes.append(helper.make_node("Mul", ["derived_z_a", "derived_z_b"], ["derived_products"]))
        parts.append("derived_products")
    if derived is not None and derived.linear is not None:
        nodes += _linear_nodes(derived.linear, constants, inputs)
        parts.append("derived_linear")
    category_nodes, category_outputs = indicator_nodes(indicators, INPUT_NAME, constants)
    nodes += category_nodes
    parts += category_outputs
    nodes.append(helper.make_node("Concat", parts, [WIDE_NAME], axis=1))
    graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in constants.items())
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + existing)
    default = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not default:
        model.opset_import.append(helper.make_opsetid("", OPSET))
    for o in default:  # Clip's bounds and Squeeze's axes as inputs need opset 13
        o.version = max(o.version, OPSET)


def _linear_nodes(linear: Linear, constants: dict[str, np.ndarray], inputs: int) -> list[onnx.NodeProto]:
    """Sub, Div, Mul, then a Split into columns added left to right: ``Derived.columns``' order of operations,
    so the score is bit-identical to the one LightGBM was trained on (a MatMul sums in its own order)."""
    from onnx import helper

    constants |= {
        "linear_mean": np.asarray(linear.mean, dtype=np.float32),
        "linear_scale": np.asarray(linear.scale, dtype=np.float32),
        "linear_weights": np.asarray(linear.weights, dtype=np.float32),
        "linear_intercept": np.asarray([linear.intercept], dtype=np.float32),
    }
    terms = [f"linear_term_{f}" for f in range(inputs)]
    nodes = [
        helper.make_node("Sub", [INPUT_NAME, "linear_mean"], ["linear_centred"]),
        helper.make_node("Div", ["linear_centred", "linear_scale"], ["linear_z"]),
        helper.make_node("Mul", ["linear_z", "linear_weights"], ["linear_terms"]),
        helper.make_node("Split", ["linear_terms"], terms, axis=1),
    ]
    total = terms[0]
    for f in range(1, inputs):
        nodes.append(helper.make_node("Add", [total, terms[f]], [f"linear_sum_{f}"]))
        total = f"linear_sum_{f}"
    nodes.append(helper.make_node("Add", [total, "linear_intercept"], ["derived_linear"]))
    return nodes


def onnx_probabilities(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    out = session.run(None, {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})
    return np.asarray(out[1], dtype=np.float64)[:, 1]


def with_missing(x: np.ndarray, rows: int = 20) -> np.ndarray:
    """``x`` and, for each column, ``rows`` of its rows with that column missing (NaN): a missing value, and a
    category the model never saw (served as NaN, ``shared.domain.encoding``), take the same branch in both."""
    if len(x) == 0:
        return x
    probes = []
    for j in range(x.shape[1]):
        probe = np.array(x[:rows], dtype=np.float32)
        probe[:, j] = np.nan
        probes.append(probe)
    return np.concatenate([np.asarray(x, dtype=np.float32), *probes])


def check_parity(
    booster: lgb.Booster,
    onnx_bytes: bytes,
    x: np.ndarray,
    tolerance: float = PARITY_TOLERANCE,
    derived: Derived | None = None,
) -> float:
    """Max |P_onnx - P_lightgbm| over ``x`` (the contract's features); ``TrainingError`` above ``tolerance``.

    Both see the same float32-rounded input, since the ONNX graph computes in float32; LightGBM gets
    the derived columns from ``derived.apply``, the graph computes its own.
    """
    x32 = np.ascontiguousarray(with_missing(x), dtype=np.float32)
    wide = x32 if derived is None else derived.apply(x32)
    expected = booster.predict(wide.astype(np.float64))
    got = onnx_probabilities(onnx_bytes, x32)
    diff = float(np.max(np.abs(got - expected))) if len(x32) else 0.0
    if diff >= tolerance:
        raise TrainingError(f"ONNX and LightGBM disagree by {diff:.2e} (limit {tolerance:.0e}); not publishing")
    return diff
