"""Model parameters on the wire: named float32 arrays in an ``.npz`` (no pickle), as Flower ships NDArrays."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np

from shared.domain.errors import FraudOpsError

MAX_PARAMETERS = 5_000_000


class BadParametersError(FraudOpsError):
    """Parameters that cannot be read or do not match the global model (400/422 at the edge)."""


def to_npz(params: dict[str, np.ndarray]) -> bytes:
    out = io.BytesIO()
    arrays: dict[str, Any] = {name: np.asarray(a, dtype=np.float32) for name, a in params.items()}
    np.savez(out, **arrays)
    return out.getvalue()


def from_npz(
    data: bytes, *, expected: dict[str, tuple[int, ...]] | None = None, max_parameters: int = MAX_PARAMETERS
) -> dict[str, np.ndarray]:
    """Read and check: float32, finite, the expected names and shapes, at most ``max_parameters`` values."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            names = list(npz.files)
            total = 0
            params: dict[str, np.ndarray] = {}
            for name in names:
                array = npz[name]
                total += array.size
                if total > max_parameters:
                    raise BadParametersError(f"more than {max_parameters} parameters")
                params[name] = array
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise BadParametersError(f"the parameters are not a readable .npz of arrays ({exc})") from None
    for name, array in params.items():
        if array.dtype != np.float32:
            raise BadParametersError(f"parameter {name} is {array.dtype}, not float32")
        if not np.isfinite(array).all():
            raise BadParametersError(f"parameter {name} has NaN or infinite values")
    if expected is not None:
        got = {n: tuple(a.shape) for n, a in params.items()}
        if got != {n: tuple(s) for n, s in expected.items()}:
            raise BadParametersError(f"parameters {got} do not match the global model's {expected}")
    return params
