"""Model parameters on the wire and in storage, as the server reads them; refusals as domain errors.

The wire format and its checks (float32 safetensors, no pickle, the header checked before any value
is read) are ``fraudops_bank.wire``, which the banks' client uses too; here a refusal becomes
``BadParametersError``, which the API answers with 422. What an older server stored in wire format 1
(``.npz``) stays readable through ``from_stored``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from fraudops_bank import wire
from fraudops_bank.errors import ParametersError
from fraudops_bank.wire import MAX_PARAMETERS as MAX_PARAMETERS
from fraudops_bank.wire import to_wire as to_wire
from shared.domain.errors import FraudOpsError


class BadParametersError(FraudOpsError):
    """Parameters that cannot be read or do not match the global model (422 at the edge)."""


@contextmanager
def as_bad_parameters() -> Iterator[None]:
    """The wire format's refusals (``fraudops_bank.errors.ParametersError``) as ``BadParametersError``."""
    try:
        yield
    except ParametersError as exc:
        raise BadParametersError(exc.reason) from None


def declared(data: bytes, max_parameters: int = MAX_PARAMETERS) -> dict[str, tuple[int, ...]]:
    """Each array's name and shape as declared, read without loading the values (``fraudops_bank.wire.declared``)."""
    with as_bad_parameters():
        return wire.declared(data, max_parameters)


def from_wire(
    data: bytes, *, expected: dict[str, tuple[int, ...]] | None = None, max_parameters: int = MAX_PARAMETERS
) -> dict[str, np.ndarray]:
    """Read and check what a bank sent: float32, finite, the expected names and shapes, bounded."""
    with as_bad_parameters():
        return wire.from_wire(data, expected=expected, max_parameters=max_parameters)


def from_stored(
    data: bytes, *, expected: dict[str, tuple[int, ...]] | None = None, max_parameters: int = MAX_PARAMETERS
) -> dict[str, np.ndarray]:
    """A stored model, scaler or update: wire format 2, or format 1 when an older server wrote it."""
    if data[:4] != wire.ZIP_MAGIC:
        return from_wire(data, expected=expected, max_parameters=max_parameters)
    from shared.federated import legacy_npz

    with as_bad_parameters():
        return legacy_npz.from_npz(data, expected=expected, max_parameters=max_parameters)
