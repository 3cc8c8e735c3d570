"""Model parameters on the wire, as the server reads them: the bank package's format, refusals as domain errors.

The format and its checks (float32 ``.npz``, no pickle, sizes bounded before anything is inflated)
are ``fraudops_bank.wire``, which the banks' client uses too; here a refusal becomes
``BadParametersError``, which the API answers with 400/422.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from fraudops_bank import wire
from fraudops_bank.errors import ParametersError
from fraudops_bank.wire import MAX_PARAMETERS as MAX_PARAMETERS
from fraudops_bank.wire import to_npz as to_npz
from shared.domain.errors import FraudOpsError


class BadParametersError(FraudOpsError):
    """Parameters that cannot be read or do not match the global model (400/422 at the edge)."""


@contextmanager
def as_bad_parameters() -> Iterator[None]:
    """The wire format's refusals (``fraudops_bank.errors.ParametersError``) as ``BadParametersError``."""
    try:
        yield
    except ParametersError as exc:
        raise BadParametersError(exc.reason) from None


def declared(data: bytes, max_parameters: int = MAX_PARAMETERS) -> dict[str, tuple[int, ...]]:
    """Each array's name and shape as declared, read without inflating the data (``fraudops_bank.wire.declared``)."""
    with as_bad_parameters():
        return wire.declared(data, max_parameters)


def from_npz(
    data: bytes, *, expected: dict[str, tuple[int, ...]] | None = None, max_parameters: int = MAX_PARAMETERS
) -> dict[str, np.ndarray]:
    """Read and check: float32, finite, the expected names and shapes, at most ``max_parameters`` values."""
    with as_bad_parameters():
        return wire.from_npz(data, expected=expected, max_parameters=max_parameters)
