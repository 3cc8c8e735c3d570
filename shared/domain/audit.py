"""The audit chain: one JSON line per consequential act, each holding the hash of the line before it.

A line is canonical JSON (sorted keys, no spaces) of::

    {"seq": n, "id": <uuid of the act>, "at": <UTC time>, "act": <one of ACTS>, "actor": <who>,
     "reason": <why>, "details": {...}, "prev": <hash of line n-1, or GENESIS>, "hash": <sha256 of the rest>}

and, when the actor is a person signed in with Entra ID, ``"actor": "entra:<object id>"`` and ``"actor_name"``
(their display name at the time, hashed with the rest; older lines and lines of services and keys have none).

so rewriting any line changes its hash and breaks the next line's ``prev``; removing or reordering
lines breaks ``prev`` or ``seq``. ``verify`` walks the lines and names the first broken link.

A hash chain alone can be extended by anyone who may append: with the chain's key (``AUDIT_CHAIN_KEY``, a
Key Vault secret only the app's identity reads), each line also carries ``mac``, an HMAC of its hash, and
``verify`` given the key refuses a line without a valid one after the first signed line (lines from before
the key was set stay valid as hashed history). The chain alone cannot show lines cut off its *end*: the
WORM policy of the ``audit`` container forbids that in Azure, every ``fraudops audit verify`` prints the
head (``seq`` and hash), and the daily monitoring report compares the head with the one it saw before.

Pure: no I/O here. ``shared.adapters.audit`` appends lines to Blob; this module builds and checks them; the
line itself is typed (``shared.domain.documents.governance.AuditLine``), and so are its canonical bytes.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.domain.documents.governance import AUDIT_FIELDS, AuditLine, canonical, digest, signature

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
        "part_sealed",  # the chain goes on in another part (a new month, or the block limit): written by the chain
    }
)
MAX_LINE_BYTES = 32 * 1024  # far above any act's details; a line is one append block, read back by the tail
FIELDS = AUDIT_FIELDS
__all__ = [
    "ACTS",
    "FIELDS",
    "GENESIS",
    "Act",
    "Actor",
    "AuditLine",
    "PendingAct",
    "canonical",
    "digest",
    "seal",
    "signature",
    "verify",
]


class UnknownActError(ValueError):
    """An audit entry for an act the chain does not know (a programming error, caught by tests)."""


@dataclass(frozen=True)
class Actor:
    """Who acted, when it is someone the service authenticated: an id that stays theirs (``entra:<object id>``
    for a person, ``admin key <fingerprint>`` for a local admin key) and, for a person, the name they signed in
    with. A service's own acts name it with a plain string (``service_actor``)."""

    id: str
    name: str | None = None

    def __str__(self) -> str:
        return f"{self.id} ({self.name})" if self.name else self.id


@dataclass(frozen=True)
class Act:
    """What is to be recorded, before it has a place in the chain."""

    act: str
    actor: str | Actor
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def __post_init__(self) -> None:
        if self.act not in ACTS:
            raise UnknownActError(f"{self.act!r} is not an audited act (one of {', '.join(sorted(ACTS))})")


@dataclass(frozen=True)
class PendingAct:
    """An act that took effect but whose audit line could not be written yet: said, and recorded later (the same
    id, so never twice)."""

    act: Act
    why: str


def seal(act: Act, *, seq: int, prev: str, key: bytes | None = None) -> AuditLine:
    """The line for ``act`` after a line of hash ``prev`` (``GENESIS`` for the first), signed with ``key``."""
    doc: dict[str, Any] = {
        "seq": seq,
        "id": act.id,
        "at": act.at,
        "act": act.act,
        "actor": act.actor.id if isinstance(act.actor, Actor) else act.actor,
        "reason": act.reason,
        "details": act.details,
        "prev": prev,
    }
    if isinstance(act.actor, Actor) and act.actor.name:
        doc["actor_name"] = act.actor.name
    line_hash = digest(doc)
    line = AuditLine.model_validate({**doc, "hash": line_hash, "mac": signature(key, line_hash) if key else None})
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
    broken: Broken | None  # the first
    signed: int = 0  # lines whose signature was checked (0 when verified without the key)
    breaks: tuple[Broken, ...] = ()  # every break, the first included: the walk goes on after each (up to MAX_BREAKS)

    @property
    def intact(self) -> bool:
        return self.broken is None


MAX_BREAKS = 100


def verify(parts: Iterable[tuple[str, bytes]], key: bytes | None = None) -> ChainReport:
    """Check every line of ``parts`` (name, content), in order: each parses, its hash matches its content, it
    follows the line before it (``prev`` and ``seq``), and with ``key``, from the first signed line on, its
    signature holds. The first broken link sets the report's head (the last line that held before it); the walk
    then goes on from the broken line, so every break is reported (``breaks``), not only the first."""
    import hmac

    prev, expected_seq, count, signed = GENESIS, 0, 0, 0
    first: ChainReport | None = None
    breaks: list[Broken] = []

    def note(part: str, number: int, seq: int | None, reason: str) -> None:
        nonlocal first
        found = Broken(part, number, seq, reason)
        if first is None:
            first = ChainReport(count - 1, expected_seq - 1 if expected_seq else None, prev, found, signed)
        if len(breaks) < MAX_BREAKS:
            breaks.append(found)

    for part, content in parts:
        for number, raw in enumerate(content.splitlines(), start=1):
            count += 1
            try:
                doc = json.loads(raw)  # hashed as stored: the dict, not a re-encoding of the typed line
                line = AuditLine.from_fields(doc)
            except ValueError:
                note(part, number, None, "the line is not an audit entry (not JSON, or other fields than an entry's)")
                continue  # the next line is checked against the last entry
            seq = line.seq
            if line.hash != digest(doc):
                note(
                    part, number, seq, "the line was changed after it was written: its hash does not match its content"
                )
            elif line.prev != prev:
                note(
                    part,
                    number,
                    seq,
                    "the line does not follow the one before it: a line before it was removed, reordered or changed",
                )
            elif seq != expected_seq:
                note(part, number, seq, f"the line's sequence number is {seq}, where {expected_seq} was expected")
            elif key is not None and (line.mac is not None or signed):
                if line.mac is None or not hmac.compare_digest(line.mac, signature(key, line.hash)):
                    note(
                        part,
                        number,
                        seq,
                        "the line's signature does not hold: it was written without the chain's key (a forged line) "
                        "or its signature was changed",
                    )
                else:
                    signed += 1
            prev, expected_seq = line.hash, seq + 1  # the walk goes on from this line, broken or not
    if first is not None:
        return dataclasses.replace(first, breaks=tuple(breaks))
    return ChainReport(count, expected_seq - 1 if expected_seq else None, prev, None, signed)
