"""Dead letters: what the stream could not score, kept byte for byte with the reason, in Blob or in a local spool.

Each event that cannot be processed becomes one JSON line (``dead_letter``): its body as sent (a
JSON object's ``customer_id`` pseudonymised; bytes that are not UTF-8 in base64), its partition,
sequence number, enqueued time, offset and the reason. When even ``deadletter`` cannot be reached,
the batch, whole, goes to a local folder (``Spool``), and each later batch first moves what was
spooled into ``deadletter`` (create-only, so a file moved twice is still one) and deletes the local
copy once it is stored.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.domain import layout
from shared.domain.errors import BlobExistsError
from shared.domain.telemetry import instruments
from shared.streaming.events import StreamEvent

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.domain.pseudonym import Pseudonymiser

log = logging.getLogger(__name__)

JSONL_TYPE = "application/x-ndjson"
SPOOL_SEPARATOR = "__"  # a spooled file's name is its dead-letter path with "/" replaced by this


def jsonl(docs: list[dict[str, Any]]) -> bytes:
    """One JSON document a line, as the stream's alerts and dead letters are stored."""
    return b"".join(json.dumps(d, default=str).encode() + b"\n" for d in docs)


def dead_letter(
    event: StreamEvent, reason: str, pseudonymise: Pseudonymiser, *, personal: Sequence[str]
) -> dict[str, Any]:
    """The dead letter of ``event``: its body as sent, but with a JSON object's ``personal`` fields pseudonymised
    (a body that is not a JSON object cannot be read for them and is kept as it came)."""
    try:
        body, encoding = _pseudonymised_body(event.body, pseudonymise, personal).decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        body, encoding = base64.b64encode(event.body).decode("ascii"), "base64"
    return {
        "reason": reason,
        "partition": event.partition,
        "sequence_number": event.sequence_number,
        "enqueued_time": event.enqueued_time.isoformat(),
        "offset": event.offset,
        "body": body,
        "body_encoding": encoding,
        "deadlettered_at": datetime.now(UTC).isoformat(),
    }


def dead_letters(
    events: Sequence[tuple[StreamEvent, str]], pseudonymise: Pseudonymiser, *, personal: Sequence[str]
) -> bytes:
    """The dead letters of ``(event, reason)`` pairs, one JSON line each."""
    return jsonl([dead_letter(event, reason, pseudonymise, personal=personal) for event, reason in events])


def _pseudonymised_body(body: bytes, pseudonymise: Pseudonymiser, personal: Sequence[str]) -> bytes:
    import orjson

    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if type(doc) is not dict or all(doc.get(name) is None for name in personal):
        return body
    for name in personal:
        if doc.get(name) is not None:
            doc[name] = pseudonymise(str(doc[name]))
    return orjson.dumps(doc)


class Spool:
    """The last resort when storage is unreachable: whole batches in a local folder, replayed into ``deadletter``."""

    def __init__(self, directory: Path, *, pseudonymise: Pseudonymiser, personal: Sequence[str]) -> None:
        self.directory, self.pseudonymise, self.personal = directory, pseudonymise, tuple(personal)

    def _waiting(self) -> list[Path]:
        return sorted(self.directory.glob(f"*{SPOOL_SEPARATOR}*.jsonl"))

    def keep(self, events: Sequence[StreamEvent], hour: str, batch: str, reason: str, failure: Exception) -> str:
        """The batch, whole, to a local file that a later batch replays into ``deadletter``; the file."""
        spooled = self.directory / layout.stream_failed_batch(hour, batch).replace("/", SPOOL_SEPARATOR)
        spooled.parent.mkdir(parents=True, exist_ok=True)
        partial = spooled.with_suffix(".partial")
        partial.write_bytes(dead_letters([(e, reason) for e in events], self.pseudonymise, personal=self.personal))
        partial.replace(spooled)  # whole or absent: a crash mid-write leaves no half file to replay
        instruments().spool.set(len(self._waiting()))
        log.critical("storage unreachable (%s); batch %s spooled to %s for replay", failure, batch, spooled)
        return str(spooled)

    def replay(self, store: BlobStore, *, settle: Callable[[str], object]) -> int:
        """Move every spooled batch into ``deadletter`` (create-only) and delete it locally; how many moved.

        ``settle(partition)`` runs first for each file's partition (a half-written range of that attempt).
        A batch that still cannot be stored stays spooled for the next attempt.
        """
        if not self.directory.is_dir():
            return 0
        moved = 0
        waiting = self._waiting()
        try:
            moved = self._replay(store, waiting, settle)
        finally:
            instruments().spool.set(len(waiting) - moved)
        return moved

    def _replay(self, store: BlobStore, waiting: list[Path], settle: Callable[[str], object]) -> int:
        moved = 0
        for spooled in waiting:
            path = spooled.name.replace(SPOOL_SEPARATOR, "/")
            try:
                settle(json.loads(spooled.read_bytes().split(b"\n", 1)[0])["partition"])
                store.put_bytes(layout.DEADLETTER, path, spooled.read_bytes(), overwrite=False, content_type=JSONL_TYPE)
            except BlobExistsError:
                pass  # moved before, and the local delete was lost: it is stored once
            except Exception as exc:
                log.warning("spooled batch %s still cannot be stored (%s); keeping it", spooled.name, exc)
                return moved
            spooled.unlink()
            moved += 1
            log.info("replayed spooled batch into %s", layout.display(layout.DEADLETTER, path))
        return moved
