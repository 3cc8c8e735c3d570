"""LightGBM to ONNX with onnxmltools, and the parity check that guards every export."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from shared.domain.errors import TrainingError

if TYPE_CHECKING:
    import lightgbm as lgb

INPUT_NAME = "features"
PARITY_TOLERANCE = 1e-4


def to_onnx(booster: lgb.Booster, feature_names: list[str]) -> bytes:
    """A float32 ``[N, len(feature_names)]`` input named ``features``; outputs label and probabilities (no ZipMap)."""
    import onnx
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    model = convert_lightgbm(
        booster,
        initial_types=[(INPUT_NAME, FloatTensorType([None, len(feature_names)]))],
        zipmap=False,
        target_opset=15,
    )
    entry = model.metadata_props.add()
    entry.key, entry.value = "feature_names", ",".join(feature_names)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def onnx_probabilities(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    out = session.run(None, {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})
    return np.asarray(out[1], dtype=np.float64)[:, 1]


def check_parity(booster: lgb.Booster, onnx_bytes: bytes, x: np.ndarray, tolerance: float = PARITY_TOLERANCE) -> float:
    """Max |P_onnx - P_lightgbm| over ``x``; ``TrainingError`` above ``tolerance``.

    Both see the same float32-rounded input, since the ONNX graph computes in float32.
    """
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    expected = booster.predict(x32.astype(np.float64))
    got = onnx_probabilities(onnx_bytes, x32)
    diff = float(np.max(np.abs(got - expected))) if len(x32) else 0.0
    if diff >= tolerance:
        raise TrainingError(f"ONNX and LightGBM disagree by {diff:.2e} (limit {tolerance:.0e}); not publishing")
    return diff
