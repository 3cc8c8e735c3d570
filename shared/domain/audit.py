"""The audit chain: one JSON line per consequential act, each holding the hash of the line before it.

A line is canonical JSON (sorted keys, no spaces) of::

    {"seq": n, "id": <uuid of the act>, "at": <UTC time>, "act": <one of ACTS>, "actor": <who>,
     "reason": <why>, "details": {...}, "prev": <hash of line n-1, or GENESIS>, "hash": <sha256 of the rest>}

so rewriting any line changes its hash and breaks the next line's ``prev``; removing or reordering
lines breaks ``prev`` or ``seq``. ``verify`` walks the lines and names the first broken link. The
chain alone cannot show lines cut off its *end*: the WORM policy of the ``audit`` container forbids
that in Azure, and every ``fraudops audit verify`` prints the head (``seq`` and hash) for comparison
with any copy kept elsewhere (the monitoring report records it daily).

Pure: no I/O here. ``shared.adapters.audit`` appends lines to Blob; this module builds and checks them; the
line itself is typed (``shared.domain.documents.governance.AuditLine``), and so are its canonical bytes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.domain.documents.governance import AUDIT_FIELDS, AuditLine, canonical, digest

GENESIS = "0" * 64
ACTS = frozenset(
    {
        "promotion",
        "rollback",
        "deprecation",
        "round_transition",
        "admin_call",
        "key_added",
        "key_revoked",
        "access_request",
        "erasure_request",
        "retrain_outcome",
    }
)
MAX_LINE_BYTES = 32 * 1024  # far above any act's details; a line is one append block, read back by the tail
FIELDS = AUDIT_FIELDS
__all__ = ["ACTS", "FIELDS", "GENESIS", "Act", "AuditLine", "canonical", "digest", "seal", "verify"]


class UnknownActError(ValueError):
    """An audit entry for an act the chain does not know (a programming error, caught by tests)."""


@dataclass(frozen=True)
class Act:
    """What is to be recorded, before it has a place in the chain."""

    act: str
    actor: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def __post_init__(self) -> None:
        if self.act not in ACTS:
            raise UnknownActError(f"{self.act!r} is not an audited act (one of {', '.join(sorted(ACTS))})")


def seal(act: Act, *, seq: int, prev: str) -> AuditLine:
    """The line for ``act`` after a line of hash ``prev`` (``GENESIS`` for the first)."""
    doc: dict[str, Any] = {
        "seq": seq,
        "id": act.id,
        "at": act.at,
        "act": act.act,
        "actor": act.actor,
        "reason": act.reason,
        "details": act.details,
        "prev": prev,
    }
    line = AuditLine.model_validate({**doc, "hash": digest(doc)})
    size = len(line.to_json())
    if size > MAX_LINE_BYTES:
        raise ValueError(f"an audit line of {size} bytes is over {MAX_LINE_BYTES}: its details are too large")
    return line


@dataclass(frozen=True)
class Broken:
    """The first link that does not hold: where, and why, in words."""

    part: str
    line: int  # 1-based within its part
    seq: int | None
    reason: str


@dataclass(frozen=True)
class ChainReport:
    lines: int
    head_seq: int | None
    head_hash: str
    broken: Broken | None

    @property
    def intact(self) -> bool:
        return self.broken is None


def verify(parts: Iterable[tuple[str, bytes]]) -> ChainReport:
    """Check every line of ``parts`` (name, content), in order: each parses, its hash matches its content, it
    follows the line before it (``prev`` and ``seq``). Stops at the first broken link."""
    prev, expected_seq, count = GENESIS, 0, 0
    for part, content in parts:
        for number, raw in enumerate(content.splitlines(), start=1):
            count += 1
            try:
                doc = json.loads(raw)  # hashed as stored: the dict, not a re-encoding of the typed line
                line = AuditLine.from_fields(doc)
            except ValueError:
                return ChainReport(
                    count - 1,
                    expected_seq - 1 if expected_seq else None,
                    prev,
                    Broken(
                        part, number, None, "the line is not an audit entry (not JSON, or other fields than an entry's)"
                    ),
                )
            seq = line.seq
            if line.hash != digest(doc):
                reason = "the line was changed after it was written: its hash does not match its content"
            elif line.prev != prev:
                reason = (
                    "the line does not follow the one before it: a line before it was removed, reordered or changed"
                )
            elif seq != expected_seq:
                reason = f"the line's sequence number is {seq}, where {expected_seq} was expected"
            else:
                prev, expected_seq = line.hash, expected_seq + 1
                continue
            return ChainReport(
                count - 1, expected_seq - 1 if expected_seq else None, prev, Broken(part, number, seq, reason)
            )
    return ChainReport(count, expected_seq - 1 if expected_seq else None, prev, None)
