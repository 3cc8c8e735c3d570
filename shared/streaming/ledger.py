"""The exactly-once ledger: each partition's progress marker in ``scored``, read and written conditionally.

Delivery is at least once, a redelivery may be cut into different batches, and the trigger
checkpoints even when the function throws. So each partition has a small ledger
(``layout.stream_progress``, a ``StreamProgress`` document): the highest sequence number whose
outputs are committed, and the intent of the range being written (its outputs' names). A batch
first settles an intent a crashed attempt left (all its outputs there: it is committed; some
missing: they are deleted and the range is done again), then skips every event already committed.
Every write is conditional (create-only, or on the ETag read); one that loses raises
``LedgerMovedError`` and the batch reads the partition's progress again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.adapters import documents
from shared.domain import layout
from shared.domain.documents.streaming import PendingRange, StreamProgress
from shared.domain.errors import BlobExistsError, BlobNotFoundError, ConcurrentUpdateError, FraudOpsError
from shared.streaming.retry import RetryingStore

log = logging.getLogger(__name__)

LEDGER_ATTEMPTS = 5  # how often a batch reads a partition's progress again when another instance moved it


class LedgerMovedError(FraudOpsError):
    """Another instance committed on this partition since its ledger was read."""


@dataclass(frozen=True)
class Ledger:
    """A partition's progress: the highest committed sequence number, and the range being written, if any."""

    done: int
    pending: PendingRange | None
    etag: str | None


class PartitionLedgers:
    """The ledgers of the partitions this worker processes, as it last read or wrote them.

    The partition's owner writes its ledger next, conditionally, so it need not read it again; a
    conditional write that fails drops it.
    """

    def __init__(self, storage: RetryingStore) -> None:
        self.storage = storage
        self._known_done: dict[str, int] = {}  # the committed sequence number this worker last saw, per partition
        self._ledgers: dict[str, Ledger] = {}

    def known_done(self, partition: str) -> int:
        """The highest sequence number this worker knows to be committed on ``partition`` (-1: none)."""
        return self._known_done.get(partition, -1)

    def read(self, partition: str) -> Ledger:
        cached = self._ledgers.get(partition)
        if cached is not None:
            return cached
        name = layout.stream_progress(partition)
        store = self.storage.store
        try:
            doc, etag = self.storage.retry(
                lambda: documents.read(store, layout.SCORED, name, StreamProgress),
                what=layout.display(layout.SCORED, name),
            )
        except BlobNotFoundError:
            return Ledger(done=-1, pending=None, etag=None)
        self._known_done[partition] = doc.done
        self._ledgers[partition] = Ledger(done=doc.done, pending=doc.pending, etag=etag)
        return self._ledgers[partition]

    def write(self, partition: str, ledger: Ledger, *, done: int, pending: PendingRange | None) -> Ledger:
        """The conditional write that commits (or announces) a range; ``LedgerMovedError`` if someone else did."""
        name = layout.stream_progress(partition)
        doc = StreamProgress(partition=partition, done=done, pending=pending, updated_at=datetime.now(UTC))
        store = self.storage.store

        def write() -> str:
            if ledger.etag is None:
                return documents.write(store, layout.SCORED, name, doc, overwrite=False)
            return documents.write(store, layout.SCORED, name, doc, if_match=ledger.etag)

        self._ledgers.pop(partition, None)  # until this write is known to have landed, read it from storage
        try:
            etag = self.storage.retry(write, what=layout.display(layout.SCORED, name))
        except (ConcurrentUpdateError, BlobExistsError):
            raise LedgerMovedError(f"the progress of partition {partition} changed meanwhile") from None
        self._known_done[partition] = done
        self._ledgers[partition] = Ledger(done=done, pending=pending, etag=str(etag))
        return self._ledgers[partition]

    def settle(self, partition: str, ledger: Ledger, *, complete: Callable[[PendingRange], object]) -> Ledger:
        """Finish or undo the range a crashed attempt announced, so no event is written twice.

        ``complete(pending)`` runs before a range whose outputs were all written is committed (its alerts).
        """
        pending = ledger.pending
        if not pending:
            return ledger
        present = {c: self.storage.exists(c, n) for c, n in pending.outputs.items()}
        if all(present.values()):  # every output was written: finish it and commit
            complete(pending)
            log.warning(
                "partition %s: committing range %s-%s a crashed attempt wrote", partition, pending.first, pending.last
            )
            return self.write(partition, ledger, done=max(ledger.done, pending.last), pending=None)
        for container, name in pending.outputs.items():  # some were written: delete them and do the range again
            if present[container]:
                self.storage.delete(container, name)
        log.warning(
            "partition %s: undid range %s-%s a crashed attempt left half written",
            partition,
            pending.first,
            pending.last,
        )
        return self.write(partition, ledger, done=ledger.done, pending=None)
