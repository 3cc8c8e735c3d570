"""Model parameters on the wire: named float32 arrays in safetensors (wire format 2), as banks and server send them.

safetensors is a JSON header (each array's dtype, shape and byte range) and the raw little-endian
bytes: no pickle, no compression, so nothing can inflate. ``declared`` reads and checks the header
alone (float32 only, at most ``MAX_ARRAYS`` arrays and ``max_parameters`` values, byte ranges that tile
the body exactly) before the library reads a byte of data; ``from_wire`` then loads and checks the
values. The client writes its update with ``to_wire`` and reads the global model with ``from_wire``;
the server reads updates with the same function (``shared.federated.params``).

Wire format 1 was an ``.npz`` (fraudops-bank 0.1). A server speaking format 2 refuses an ``.npz`` body,
and a model request without ``X-FL-Wire: 2``, with the reason and the upgrade to make.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from fraudops_bank.errors import ParametersError

WIRE_VERSION = 2
WIRE_HEADER = "X-FL-Wire"
MAX_PARAMETERS = 5_000_000
MAX_ARRAYS = 64
MAX_HEADER_BYTES = 64 * 1024
FLOAT32 = np.dtype("<f4")
ZIP_MAGIC = b"PK\x03\x04"
UPGRADE = (
    "wire format 1 (.npz, fraudops-bank 0.1) is no longer served: the server speaks wire format 2 (safetensors) "
    "since fraudops-bank 0.2; upgrade the bank package (pip install -U fraudops-bank)"
)


def to_wire(params: dict[str, np.ndarray]) -> bytes:
    """``params`` as safetensors of float32 arrays."""
    from safetensors.numpy import save

    return bytes(save({name: np.ascontiguousarray(a, dtype=FLOAT32) for name, a in sorted(params.items())}))


def _shape(name: str, entry: dict[str, Any]) -> tuple[int, ...]:
    if entry.get("dtype") != "F32":
        raise ParametersError(f"parameter {name[:80]} is {str(entry.get('dtype'))[:20]}, not float32 (F32)")
    shape = entry.get("shape")
    if not isinstance(shape, list) or len(shape) > 8 or not all(type(d) is int and d >= 0 for d in shape):
        raise ParametersError(f"parameter {name[:80]} has no valid shape")
    return tuple(shape)


def _tiled(ranges: list[tuple[int, int]]) -> int:
    """Where the byte ranges end, when they tile ``[0, end)`` with no overlap and no gap."""
    position = 0
    for begin, end in sorted(ranges):
        if begin != position:
            raise ParametersError("the arrays' byte ranges overlap or leave gaps")
        position = end
    return position


def declared(data: bytes, max_parameters: int = MAX_PARAMETERS) -> dict[str, tuple[int, ...]]:
    """Each array's name and shape as the header declares them, checked before any value is read."""
    if data[:4] == ZIP_MAGIC:
        raise ParametersError(UPGRADE)
    if len(data) < 8:
        raise ParametersError("the parameters are not safetensors: fewer than 8 bytes")
    size = int.from_bytes(data[:8], "little")
    if size > MAX_HEADER_BYTES or 8 + size > len(data):
        raise ParametersError(f"the safetensors header declares {size} bytes; at most {MAX_HEADER_BYTES} in this body")
    try:
        header = json.loads(data[8 : 8 + size])
    except (ValueError, UnicodeDecodeError):
        raise ParametersError("the safetensors header is not JSON") from None
    if not isinstance(header, dict):
        raise ParametersError("the safetensors header is not a JSON object")
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    if len(entries) > MAX_ARRAYS:
        raise ParametersError(f"{len(entries)} arrays; at most {MAX_ARRAYS}")
    shapes: dict[str, tuple[int, ...]] = {}
    ranges, total = [], 0
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            raise ParametersError(f"parameter {name[:80]} is not described")
        shape = _shape(name, entry)
        count = math.prod(shape)
        total += count
        if total > max_parameters:
            raise ParametersError(f"more than {max_parameters} parameters declared")
        offsets = entry.get("data_offsets")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
            raise ParametersError(f"parameter {name[:80]} has no byte range")
        if offsets[1] - offsets[0] != count * FLOAT32.itemsize:
            raise ParametersError(f"parameter {name[:80]} declares {count} values in {offsets[1] - offsets[0]} bytes")
        ranges.append((offsets[0], offsets[1]))
        shapes[name] = shape
    position = _tiled(ranges)
    if 8 + size + position != len(data):
        raise ParametersError(f"the header declares {position} bytes of values; the body holds {len(data) - 8 - size}")
    return shapes


def from_wire(
    data: bytes, *, expected: dict[str, tuple[int, ...]] | None = None, max_parameters: int = MAX_PARAMETERS
) -> dict[str, np.ndarray]:
    """Read and check: float32, finite, the expected names and shapes, at most ``max_parameters`` values."""
    declared(data, max_parameters)
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        params = {name: np.asarray(a) for name, a in load(data).items()}
    except (SafetensorError, ValueError) as exc:
        raise ParametersError(f"the parameters are not readable safetensors ({exc})") from None
    return checked(params, expected)


def checked(params: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]] | None) -> dict[str, np.ndarray]:
    """``params`` when every array is finite float32 and, given ``expected``, the names and shapes are those."""
    for name, array in params.items():
        if array.dtype != np.float32:
            raise ParametersError(f"parameter {name} is {array.dtype}, not float32")
        if not np.isfinite(array).all():
            raise ParametersError(f"parameter {name} has NaN or infinite values")
    if expected is not None:
        got = {n: tuple(a.shape) for n, a in params.items()}
        if got != {n: tuple(s) for n, s in expected.items()}:
            raise ParametersError(f"parameters {got} do not match the global model's {expected}")
    return params
