"""Dead letters: what the stream could not score, with the reason and no clear customer id, in Blob or a local spool.

Each event that cannot be processed becomes one JSON line (``dead_letter``): its body with each JSON
object's personal fields pseudonymised (a body that cannot be read for them is withheld, its SHA-256 in its
place), its partition,
sequence number, enqueued time, offset and the reason. When even ``deadletter`` cannot be reached,
the batch, whole, goes to a local folder (``Spool``), and each later batch first moves what was
spooled into ``deadletter`` (create-only, so a file moved twice is still one) and deletes the local
copy once it is stored.
"""

from __future__ import annotations

import hashlib
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
    """The dead letter of ``event``: its body with the ``personal`` fields of each JSON object in it (the
    body, or the objects of a JSON array) pseudonymised; a body that cannot be read for them (not UTF-8, not
    JSON, a bare string, an array of other things) is withheld, since it may hold a customer id anywhere:
    its SHA-256, its size and what it was stand in for it."""
    body, encoding = _stored_body(event.body, pseudonymise, personal)
    letter: dict[str, Any] = {
        "reason": reason,
        "partition": event.partition,
        "sequence_number": event.sequence_number,
        "enqueued_time": event.enqueued_time.isoformat(),
        "offset": event.offset,
        "body": body,
        "body_encoding": encoding,
        "deadlettered_at": datetime.now(UTC).isoformat(),
    }
    if body is None:
        letter |= {"body_sha256": hashlib.sha256(event.body).hexdigest(), "body_bytes": len(event.body)}
    return letter


def dead_letters(
    events: Sequence[tuple[StreamEvent, str]], pseudonymise: Pseudonymiser, *, personal: Sequence[str]
) -> bytes:
    """The dead letters of ``(event, reason)`` pairs, one JSON line each."""
    return jsonl([dead_letter(event, reason, pseudonymise, personal=personal) for event, reason in events])


def _stored_body(body: bytes, pseudonymise: Pseudonymiser, personal: Sequence[str]) -> tuple[str | None, str]:
    """What is kept of a body, and how: ``(text, "utf-8")`` with personal fields pseudonymised, or ``(None,
    "withheld: <what it was>")``."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None, "withheld: not UTF-8"
    try:
        doc = json.loads(text)  # Python's reader: a NaN or Infinity literal is read too, and its fields found
    except ValueError:
        return None, "withheld: not JSON"
    if isinstance(doc, dict):
        objects = [doc]
    elif isinstance(doc, list) and all(isinstance(d, dict) for d in doc):
        objects = doc
    elif isinstance(doc, int | float | bool) or doc is None:
        return text, "utf-8"  # a bare number, true, false or null holds no one
    else:
        return None, f"withheld: a JSON {type(doc).__name__}"
    changed = False
    for item in objects:
        for name in personal:
            if item.get(name) is not None:
                item[name] = pseudonymise(str(item[name]))
                changed = True
    return (json.dumps(doc) if changed else text), "utf-8"


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
