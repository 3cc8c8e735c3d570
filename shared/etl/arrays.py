"""Arrow columns as NumPy arrays without a detour through pandas.

pyarrow's ``to_numpy`` imports pandas (about 0.3 s) on first use, even for a zero-copy view;
on a cold Function instance that is time the ETL does not need to spend. Fixed-width
columns are viewed straight from their data buffer once their nulls are filled; booleans go
through uint8.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _single(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr


def _view(arr: pa.Array, dtype: type[np.generic]) -> np.ndarray:
    """The values buffer of a null-free fixed-width array, without a copy."""
    width = np.dtype(dtype).itemsize
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * width)


def floats(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numeric column as float64 values, nulls as NaN."""
    arr = _single(arr)
    if not pa.types.is_float64(arr.type):
        arr = pc.cast(arr, pa.float64())
    if arr.null_count:
        arr = pc.fill_null(arr, float("nan"))
    return _view(arr, np.float64)


def seconds(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An event time as float64 seconds: a number as it is, a timestamp as seconds since 1970 UTC."""
    if pa.types.is_timestamp(column.type):
        micros = pc.cast(pc.cast(column, pa.timestamp("us", tz="UTC")), pa.int64())
        return floats(micros) / 1e6
    return floats(column)


def integers(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An integer column as int64 (no nulls allowed)."""
    arr = _single(arr)
    if not pa.types.is_int64(arr.type):
        arr = pc.cast(arr, pa.int64())
    return _view(arr, np.int64)


def bools(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean column as a NumPy bool array, nulls as False."""
    arr = _single(arr)
    if arr.null_count:
        arr = pc.fill_null(arr, False)
    return _view(pc.cast(arr, pa.uint8()), np.uint8).view(bool)


def objects(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A string column as a NumPy object array (the slow path, for text-mode blocks and ids)."""
    return np.array(_single(arr).to_pylist(), dtype=object)


def mask(values: np.ndarray) -> pa.BooleanArray:
    """A NumPy bool array as an Arrow boolean array (for ``filter`` and ``if_else``)."""
    bits = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    return pa.BooleanArray.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
