"""The fast path of ``decode_json``: msgspec decodes the body straight into typed structs.

The structs are generated from the dataset contract (features are required floats; the time
column and ids are optional; the label and unknown fields are refused), so msgspec checks
every type while it parses, without building a dict per transaction. NumPy then checks
finiteness and ranges for whole columns. Whatever this path does not accept returns ``None``,
and the caller's precise path names each offending field and row.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np

from shared.domain.contract import DatasetContract
from shared.domain.rows import column_bounds, in_range


@lru_cache(maxsize=8)
def _decoder(
    contract: DatasetContract,
) -> tuple[Any, attrgetter[Any], list[str], list[str], tuple[np.ndarray, np.ndarray]]:
    """The msgspec decoder of a scoring request for ``contract``, with its getters and the features' bounds."""
    import msgspec

    features = contract.feature_names
    label = contract.label.name if contract.label else None
    optional = [c for c in contract.columns if c.name not in features and c.name != label]
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [(name, float) for name in features]
    fields += [(c.name, (str if c.dtype == "string" else float) | None, None) for c in optional]
    row = msgspec.defstruct("Transaction", fields, forbid_unknown_fields=True, gc=False)
    request = msgspec.defstruct(
        "ScoreRequest",
        [
            ("transactions", list[row]),  # type: ignore[valid-type]
            ("model_version", str | None, None),
            ("explain", bool, False),
        ],
        forbid_unknown_fields=True,
    )
    numeric = [c.name for c in optional if c.dtype != "string"]
    strings = [c.name for c in optional if c.dtype == "string"]
    return msgspec.json.Decoder(request), attrgetter(*features), numeric, strings, column_bounds(contract, features)


def decode_typed(
    body: bytes,
    contract: DatasetContract,
    *,
    max_batch: int,
) -> tuple[np.ndarray, list[str | None], str | None, bool, list[str | None] | None, np.ndarray | None] | None:
    """``(features as float32, transaction ids, model_version, explain, customer ids, times)``, or ``None``
    when anything is off (customer ids and times are ``None`` when no transaction sent them).

    ``None`` also for an empty or over-long batch: the precise path words those errors.
    """
    import msgspec

    decoder, features_of, numeric, strings, (lo, hi) = _decoder(contract)
    try:
        request = decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):  # RecursionError: absurd nesting
        return None
    rows = request.transactions
    if not rows or len(rows) > max_batch:
        return None
    width = len(lo)  # fromiter: no list of tuples, no per-element shape discovery
    values = np.fromiter(
        chain.from_iterable(map(features_of, rows)), dtype=np.float64, count=len(rows) * width
    ).reshape(-1, width)
    if not (np.isfinite(values).all() and (values >= lo).all() and (values <= hi).all()):
        return None
    times = None
    for name in numeric:  # the time column: optional, in range when present
        column = np.array(list(map(attrgetter(name), rows)), dtype=np.float64)  # None becomes NaN
        present = column[~np.isnan(column)]
        if not in_range(present, contract.column(name)):
            return None
        if contract.time_column is not None and name == contract.time_column.name and present.size:
            times = column
    for name in strings:
        if max(map(len, filter(None, map(attrgetter(name), rows))), default=0) > contract.max_field_chars:
            return None
    tid, customer = contract.transaction_id, contract.customer
    ids = list(map(attrgetter(tid), rows)) if tid and tid in strings else [None] * len(rows)
    customers = list(map(attrgetter(customer), rows)) if customer and customer in strings else None
    if customers is not None and not any(customers):
        customers = None
    return values.astype(np.float32), ids, request.model_version, request.explain, customers, times
