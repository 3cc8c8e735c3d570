"""The audit chain's heads anchored outside the data account: ``anchors/audit-heads/<YYYY>.jsonl`` in a second
storage account (``AUDIT_ANCHOR_BLOB_URI``; ``AUDIT_ANCHOR_CONNECTION`` locally), one line per day the daily
run found the chain intact and not behind the head anchored before.

The data account's own copies (the monitoring reports) can be rewritten by whoever can rewrite the chain's
account; this one cannot, by the same hands: another account, an append-only (WORM) container, a role that
allows appends and reads only. The daily run compares the chain with the last anchored head: a chain behind
it, or whose line at that sequence number is another line, is the critical verdict ``audit_chain``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from shared.adapters.storage import BlobStore
from shared.domain import layout
from shared.domain.documents.governance import AnchoredHead
from shared.domain.errors import BlobNotFoundError, ConcurrentUpdateError, FraudOpsError

log = logging.getLogger(__name__)

CONTAINER = layout.ANCHORS
TAIL_BYTES = 16 * 1024
ATTEMPTS = 10


class HeadAnchor:
    """Append and read the anchored heads (one append blob a year)."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store

    def latest(self) -> AnchoredHead | None:
        """The last head anchored (this year's part, else the latest earlier one); None when there is none."""
        names = sorted(n for n in self.store.list_names(CONTAINER, "audit-heads/") if n.endswith(".jsonl"))
        for name in reversed(names):
            size = self.store.info(CONTAINER, name).size
            if size == 0:  # created by a run that stopped before its line
                continue
            tail = self.store.read_range(CONTAINER, name, max(size - TAIL_BYTES, 0), min(size, TAIL_BYTES))
            for raw in reversed(tail.splitlines()):
                try:
                    return AnchoredHead.model_validate(json.loads(raw))
                except ValueError:
                    continue  # a line cut by the range, or not a head: the one before
        return None

    def record(self, day: str, *, head_seq: int | None, head_hash: str, lines: int) -> AnchoredHead:
        """Append the chain's head as seen on ``day``."""
        doc = AnchoredHead(
            day=day, head_seq=head_seq, head_hash=head_hash, lines=lines, recorded_at=datetime.now(UTC).isoformat()
        )
        name = layout.anchored_heads(day[:4])
        line = json.dumps(doc.to_dict(), sort_keys=True).encode() + b"\n"
        for _ in range(ATTEMPTS):
            try:
                length = self.store.info(CONTAINER, name).size
            except BlobNotFoundError:
                length = 0
            try:
                self.store.append(CONTAINER, name, line, position=length)
            except ConcurrentUpdateError:
                continue  # another run appended first: after its line
            log.info("audit: head seq %s anchored for %s", doc.head_seq, day)
            return doc
        raise FraudOpsError(f"the audit head of {day} could not be anchored after {ATTEMPTS} tries")
