"""Wire format 1, read only for what the server stored before format 2: named float32 arrays in an ``.npz``.

Global models, scalers and updates written by an older server stay readable (``shared.federated.params.
from_stored``); nothing is written in this format any more, and a bank's ``.npz`` update is refused with the
upgrade to make (``fraudops_bank.wire``). The checks are those format 1 always had: no pickle, each member's
dtype, shape and declared size checked before anything is inflated.
"""

from __future__ import annotations

import io
import lzma
import math
import struct
import zipfile
import zlib

import numpy as np

from fraudops_bank.errors import ParametersError
from fraudops_bank.wire import MAX_ARRAYS, MAX_PARAMETERS, checked

FLOAT32 = np.dtype("<f4")
# what the zip and .npy readers raise for a damaged archive (a corrupt deflate stream is zlib.error, not OSError)
UNREADABLE = (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, struct.error)


def declared(data: bytes, max_parameters: int = MAX_PARAMETERS) -> dict[str, tuple[int, ...]]:
    """Each array's name and shape as its ``.npy`` header declares them, read without inflating the data.

    Refused: more than ``MAX_ARRAYS`` members, a member that is not ``.npy``, a dtype other than
    little-endian float32, more than ``max_parameters`` values in all, or a member whose declared
    uncompressed size is not exactly its header plus its values (the zip reader never inflates more
    than that declared size, so the check bounds the memory of the load that follows).
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > MAX_ARRAYS:
                raise ParametersError(f"{len(members)} arrays in the .npz; at most {MAX_ARRAYS}")
            shapes: dict[str, tuple[int, ...]] = {}
            total = 0
            for info in members:
                shape, header_bytes = _header(archive, info)
                count = math.prod(shape)
                total += count
                if total > max_parameters:
                    raise ParametersError(f"more than {max_parameters} parameters declared")
                if info.file_size != header_bytes + count * FLOAT32.itemsize:
                    raise ParametersError(
                        f"{info.filename} declares {info.file_size} bytes, but its header says "
                        f"{header_bytes + count * FLOAT32.itemsize}"
                    )
                shapes[info.filename.removesuffix(".npy")] = shape
    except (*UNREADABLE, RuntimeError) as exc:
        raise ParametersError(f"the parameters are not a readable .npz of arrays ({exc})") from None
    return shapes


def _header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], int]:
    if not info.filename.endswith(".npy") or info.is_dir():
        raise ParametersError(f"{info.filename[:80]!r} is not an .npy array")
    from numpy.lib import format as npy

    with archive.open(info) as member:
        version = npy.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = npy.read_array_header_2_0(member)
        else:
            raise ParametersError(f"{info.filename}: .npy format version {version} is not supported")
        if dtype != FLOAT32:
            raise ParametersError(f"parameter {info.filename.removesuffix('.npy')} is {dtype}, not float32")
        return tuple(int(d) for d in shape), member.tell()


def from_npz(
    data: bytes, *, expected: dict[str, tuple[int, ...]] | None = None, max_parameters: int = MAX_PARAMETERS
) -> dict[str, np.ndarray]:
    """Read and check: float32, finite, the expected names and shapes, at most ``max_parameters`` values.

    Nothing is decompressed before each member's declared dtype, shape and size are checked (``declared``),
    so a small archive that inflates to gigabytes is refused having cost a few hundred bytes.
    """
    declared(data, max_parameters)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            total = 0
            params: dict[str, np.ndarray] = {}
            for name in list(npz.files):
                array = npz[name]
                total += array.size
                if total > max_parameters:
                    raise ParametersError(f"more than {max_parameters} parameters")
                params[name] = array
    except UNREADABLE as exc:
        raise ParametersError(f"the parameters are not a readable .npz of arrays ({exc})") from None
    return checked(params, expected)
