"""Where an experiment's rounds are stored, and the only code that reads or writes them.

Layout under the ``federated`` container (the paths are ``shared.domain.layout``'s)::

    <experiment>/global/round-<n>.safetensors           the model round n starts from (written by closing n-1)
    <experiment>/round-<n>/state.json                    the round's ``RoundState``
    <experiment>/round-<n>/updates/<bank>-<sha256>.safetensors   each bank's parameters (visible rounds)
    <experiment>/latest.json                             the ``LatestRound`` pointer each opening advances

A state is read with its ETag and written back only if nobody wrote it since (``ConcurrentUpdateError``
otherwise); a new round's state and every global model are create-only.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np

from shared.adapters import documents
from shared.adapters.storage import BlobStore
from shared.domain import layout
from shared.domain.documents.federated import LatestRound, RoundState, RoundStatus
from shared.domain.errors import BlobExistsError, BlobNotFoundError, ConcurrentUpdateError, FraudOpsError
from shared.federated.params import from_stored, to_wire

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 50  # conflicting conditional writes in a row before a caller gives up


class RoundNotFoundError(FraudOpsError):
    """No such round (404 at the edge)."""


class RoundRepository:
    """The stored rounds of one experiment: states (ETag-conditional), the latest pointer, models and updates."""

    def __init__(self, store: BlobStore, experiment: str) -> None:
        self.store, self.experiment = store, experiment

    # ---- states ---------------------------------------------------------------------------------
    def read(self, n: int) -> tuple[RoundState, str]:
        """Round ``n``'s state and its ETag; ``RoundNotFoundError`` when it was never opened."""
        try:
            return documents.read(self.store, layout.FEDERATED, layout.round_state(self.experiment, n), RoundState)
        except BlobNotFoundError:
            raise RoundNotFoundError(f"round {n} of {self.experiment} does not exist") from None

    def find(self, n: int) -> RoundState | None:
        """Round ``n``'s state, ``None`` when it was never opened."""
        try:
            return self.read(n)[0]
        except RoundNotFoundError:
            return None

    def status(self, n: int) -> RoundStatus | None:
        state = self.find(n)
        return state.status if state else None

    def write(self, n: int, state: RoundState, etag: str) -> str:
        """Replace round ``n``'s state if it is still the one read with ``etag``; the new ETag."""
        return documents.write(
            self.store, layout.FEDERATED, layout.round_state(self.experiment, n), state, if_match=etag
        )

    def create(self, state: RoundState) -> bool:
        """Store a new round's state create-only; ``False`` when another caller opened it first."""
        name = layout.round_state(self.experiment, state.round)
        try:
            documents.write(self.store, layout.FEDERATED, name, state, overwrite=False)
        except BlobExistsError:
            return False
        return True

    # ---- the latest-round pointer ---------------------------------------------------------------
    def current(self) -> int:
        """The newest round that exists (the open one, or the last closed).

        Read from the ``latest.json`` pointer each opening advances, then confirmed by probing the next
        round's state (a crash may leave the pointer one behind): two small reads, whatever the number of
        rounds and updates. Without a pointer (an experiment from before it) the states are listed once.
        """
        try:
            n = documents.read(self.store, layout.FEDERATED, layout.latest_round(self.experiment), LatestRound)[0].round
        except BlobNotFoundError:
            names = self.store.list_names(layout.FEDERATED, layout.round_prefix(self.experiment))
            rounds = [int(n.split("/")[1].removeprefix("round-")) for n in names if n.endswith("/state.json")]
            if not rounds:
                raise RoundNotFoundError(f"experiment {self.experiment} has not started") from None
            return max(rounds)
        while n > 0 and self.status(n) is None:  # never expected (states are not deleted), but never trusted
            n -= 1
        while self.status(n + 1) is not None:
            n += 1
        return n

    def advance_latest(self, n: int) -> None:
        """Move the pointer to round ``n`` unless it is already there or beyond (conditional, so never back)."""
        name = layout.latest_round(self.experiment)
        pointer = LatestRound(round=n)
        for _ in range(MAX_ATTEMPTS):
            try:
                stored, etag = documents.read(self.store, layout.FEDERATED, name, LatestRound)
            except BlobNotFoundError:
                with contextlib.suppress(BlobExistsError):
                    documents.write(self.store, layout.FEDERATED, name, pointer, overwrite=False)
                    return
                continue
            if stored.round >= n:
                return
            with contextlib.suppress(ConcurrentUpdateError):
                documents.write(self.store, layout.FEDERATED, name, pointer, if_match=etag)
                return

    # ---- global models and updates --------------------------------------------------------------
    def global_model(self, n: int) -> dict[str, np.ndarray]:
        """The parameters round ``n`` starts from; ``RoundNotFoundError`` when there are none."""
        for name in (layout.global_model(self.experiment, n), layout.legacy_global_model(self.experiment, n)):
            try:
                data, _ = self.store.get_bytes(layout.FEDERATED, name)
            except BlobNotFoundError:
                continue
            return from_stored(data)
        raise RoundNotFoundError(f"there is no global model for round {n}")

    def create_global(self, n: int, params: dict[str, np.ndarray]) -> bool:
        """Write round ``n``'s global model create-only; ``False`` when one was already written (also by a server
        of wire format 1, under its old name)."""
        try:
            self.store.info(layout.FEDERATED, layout.legacy_global_model(self.experiment, n))
            return False
        except BlobNotFoundError:
            pass
        try:
            self.store.put_bytes(
                layout.FEDERATED, layout.global_model(self.experiment, n), to_wire(params), overwrite=False
            )
        except BlobExistsError:
            return False
        return True

    def put_update(self, n: int, bank: str, digest: str, data: bytes) -> str:
        """Store a bank's update under its digest (rewriting the same bytes is harmless); the blob's name."""
        name = layout.round_update(self.experiment, n, bank, digest)
        self.store.put_bytes(layout.FEDERATED, name, data, overwrite=True)
        return name

    def update_bytes(self, name: str) -> bytes:
        """A stored update, as the bank sent it."""
        return self.store.get_bytes(layout.FEDERATED, name)[0]
