"""The experiment's shared feature scaler: derived from round 0's statistics, read by every model round.

Closing round 0 combines each bank's sufficient statistics into one scaler (``<experiment>/scaler.safetensors``).
It is written create-only, and replaced only when the stored one is unusable (conditional on what was
read); an admin re-derives it from round 0's stored statistics, leaving out any bank whose numbers
fail the checks.
"""

from __future__ import annotations

import logging

import numpy as np

from shared.adapters.storage import BlobStore
from shared.domain import layout
from shared.domain.errors import BlobExistsError, BlobNotFoundError
from shared.federated.aggregators import Aggregator
from shared.federated.merge import capped_weights
from shared.federated.params import BadParametersError, from_stored, to_wire
from shared.federated.statistics import check_scaler, check_statistics, combine
from shared.federated.transitions import RoundStateError

log = logging.getLogger(__name__)

Params = dict[str, np.ndarray]


def read_scaler(store: BlobStore, experiment: str) -> Params | None:
    """The shared scaler; ``None`` before round 0 closes; ``RoundStateError`` if the stored one is unusable."""
    try:
        try:
            data = store.get_bytes(layout.FEDERATED, layout.scaler(experiment))[0]
        except BlobNotFoundError:
            data = store.get_bytes(layout.FEDERATED, layout.legacy_scaler(experiment))[0]
        scaler = from_stored(data)
        check_scaler(scaler)
    except BlobNotFoundError:
        return None
    except BadParametersError as exc:
        raise RoundStateError(
            f"the shared scaler is unusable ({exc.reason}); an admin re-derives it from round 0's checked "
            "statistics with POST /api/federated/rounds/0/aggregate"
        ) from None
    return scaler


def write_scaler(store: BlobStore, experiment: str, scaler: Params) -> None:
    """Create the scaler, or replace a stored one that is unusable (conditional on what was read)."""
    name = layout.scaler(experiment)
    try:
        store.put_bytes(layout.FEDERATED, name, to_wire(scaler), overwrite=False)
        return
    except BlobExistsError:
        pass
    data, etag = store.get_bytes(layout.FEDERATED, name)
    try:
        check_scaler(from_stored(data))
        return  # a usable scaler from an earlier attempt stands
    except BadParametersError:
        log.warning("the stored scaler is unusable; replacing it with one derived from checked statistics")
    store.put_bytes(layout.FEDERATED, name, to_wire(scaler), if_match=etag)


def derive_scaler(statistics: list[tuple[Params, int]], *, max_weight_share: float, how: Aggregator) -> Params:
    """The scaler from each bank's moments and example count, weighted with no bank over ``max_weight_share``."""
    weights = capped_weights([c for _, c in statistics], max_weight_share)
    return combine([p for p, _ in statistics], weights, how)


def checked_statistics(updates: list[tuple[str, Params, int]]) -> list[tuple[Params, int]]:
    """Round 0's updates whose statistics pass the checks (a bank whose numbers fail is left out, logged);
    ``RoundStateError`` when none does."""
    kept = []
    for bank, params, count in updates:
        try:
            check_statistics(params, count)
        except BadParametersError as exc:
            log.warning("round 0: leaving bank %s out of the scaler: %s", bank, exc.reason)
            continue
        kept.append((params, count))
    if not kept:
        raise RoundStateError("no bank's round-0 statistics pass the checks; start a new experiment")
    return kept
