"""The stream's stored documents: each Event Hubs partition's progress marker (its exactly-once ledger) in ``scored``.

A partition's marker (``layout.stream_progress``) holds the highest sequence number whose outputs are
committed (``done``) and, while a range is being written, that range and its outputs' names
(``pending``), so the next attempt can finish or undo what a crashed one left. It is only ever
written conditionally (create-only, or on the ETag it was read with): that is what makes the stream
exactly once across instances.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from shared.domain.documents import StoredDocument


class PendingRange(BaseModel):
    """The range of sequence numbers being written, and the blob of each of its outputs (by container)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    first: int
    last: int
    outputs: dict[str, str]


class StreamProgress(StoredDocument):
    """One partition's ledger: what is committed, and what is being written (``None`` between batches)."""

    partition: str
    done: int
    pending: PendingRange | None = None
    updated_at: datetime | None = None
