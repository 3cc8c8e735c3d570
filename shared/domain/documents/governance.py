"""Governance's stored documents: the audit line (``audit`` container), the erasure markers (``curated``) and
the monthly audit report (``reports``).

The audit line is hashed: its stored form is canonical JSON (sorted keys, no spaces, ASCII) of exactly
``AUDIT_FIELDS`` (and ``mac``, its signature, once the chain is keyed; ``actor_name``, a person's name, when
the actor is a signed-in person), and the hash is sha256 of that form without ``hash`` and ``mac``. It
therefore carries no ``schema_version`` on the wire (a new key is a new chain format): its version is its field
set, and a reader takes each of the sets in ``FIELD_SETS``, so lines written before ``actor_name`` still verify.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Final

from pydantic import Field

from shared.domain.documents import StoredDocument

AUDIT_FIELDS: Final = ("seq", "id", "at", "act", "actor", "reason", "details", "prev", "hash")
SIGNED_FIELDS: Final = (*AUDIT_FIELDS, "mac")  # a line signed with the chain's key
NAME: Final = "actor_name"  # a person's name beside their id (issue 41); lines of services and keys have none
FIELD_SETS: Final = tuple(
    frozenset(fields) for base in (AUDIT_FIELDS, SIGNED_FIELDS) for fields in (base, (*base, NAME))
)  # what a stored line may hold: hashed or signed, with or without a name


def canonical(doc: dict[str, Any]) -> bytes:
    """The bytes an audit line is stored and hashed as: sorted keys, no spaces, ASCII."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode()


def digest(doc: dict[str, Any]) -> str:
    """The hash of a line: sha256 of its canonical JSON without the ``hash`` and ``mac`` fields."""
    return hashlib.sha256(canonical({k: v for k, v in doc.items() if k not in ("hash", "mac")})).hexdigest()


def signature(key: bytes, line_hash: str) -> str:
    """The line's ``mac``: HMAC-SHA256 of its hash under the chain's key (``AUDIT_CHAIN_KEY``, in Key Vault)."""
    return hmac.new(key, line_hash.encode("ascii"), hashlib.sha256).hexdigest()


class AuditLine(StoredDocument):
    """One sealed act of the audit chain: its place (``seq``, ``prev``), what, who, why, its own hash, and its
    signature (``mac``) when the chain is keyed."""

    seq: int
    id: str
    at: str
    act: str
    actor: str
    reason: str
    details: dict[str, Any] = Field(default_factory=dict)
    prev: str
    hash: str
    mac: str | None = None
    actor_name: str | None = None  # the person's name when ``actor`` is a person (``entra:<object id>``); hashed

    @property
    def who(self) -> str:
        """The actor as a person reads it: ``entra:<object id> (name)``, or the actor alone."""
        return f"{self.actor} ({self.actor_name})" if self.actor_name else self.actor

    def fields(self) -> dict[str, Any]:
        """The line's stored fields (``AUDIT_FIELDS``, ``actor_name`` when named, ``mac`` when signed), as hashed."""
        names = (*AUDIT_FIELDS, NAME) if self.actor_name is not None else AUDIT_FIELDS
        if self.mac is not None:
            names = (*names, "mac")
        return {name: getattr(self, name) for name in names}

    def to_json(self) -> bytes:
        """The line as appended: its canonical JSON and a newline."""
        return canonical(self.fields()) + b"\n"

    def to_dict(self) -> dict[str, object]:
        return dict(self.fields())

    @classmethod
    def from_fields(cls, doc: object) -> AuditLine:
        """A stored line's parsed JSON; ``ValueError`` unless it has exactly the fields of an entry (signed or
        not, named or not), well typed."""
        if not isinstance(doc, dict) or frozenset(doc) not in FIELD_SETS:
            raise ValueError("fields")
        return cls.model_validate(doc, strict=True)

    @classmethod
    def parse(cls, raw: bytes | str) -> AuditLine:
        """A stored line; ``ValueError`` when it is not JSON with exactly the fields of an entry."""
        return cls.from_fields(json.loads(raw))


class ErasureMarker(StoredDocument):
    """``curated/_erasures/<pseudonym>.json`` as read: the plan while ``started``, the times alone once ``done``."""

    pseudonym: str
    status: str  # "started" or "done"
    started_at: str
    erased_at: str | None = None
    plan: dict[str, str] = Field(default_factory=dict)  # "container/blob" -> "container/new blob"
    transactions: list[str] = Field(default_factory=list)
    raw: list[str] = Field(default_factory=list)  # processed landed files to delete
    raw_pending: list[str] = Field(default_factory=list)  # landed files not processed yet
    refused_files: list[str] = Field(default_factory=list)  # whole refused files ("quarantine/...") to delete
    records: int | None = None  # once done: what was removed
    places: int | None = None
    raw_deleted: int | None = None


class ErasurePlan(StoredDocument):
    """The marker of an erasure under way: every blob to rewrite and under which name, the transactions."""

    pseudonym: str
    status: str = "started"
    started_at: str
    plan: dict[str, str]
    transactions: list[str]
    raw: list[str]
    raw_pending: list[str]
    refused_files: list[str] = Field(default_factory=list)


class ErasureDone(StoredDocument):
    """The marker of a finished erasure: the pseudonym, the times and what was done (the exclusion list)."""

    pseudonym: str
    status: str = "done"
    started_at: str
    erased_at: str
    records: int | None = None
    places: int | None = None
    raw_deleted: int | None = None
    raw_pending: list[str] = Field(default_factory=list)


class ErasureLock(StoredDocument):
    """``curated/_erasure.lock``: which erasure runs, since when, and until when its claim holds unless renewed."""

    holder: str
    pseudonym: str
    acquired_at: str
    expires_at: str


class AuditReport(StoredDocument):
    """The monthly audit report (``reports/audit/<YYYY-MM>.json``)."""

    month: str
    predictions: dict[str, Any]
    model_changes: list[dict[str, Any]]
    data_subject_requests: list[dict[str, Any]]
    key_changes: list[dict[str, Any]]
    retrains: dict[str, int]
    round_transitions: int
    realised: list[dict[str, Any]]
    audit_chain: dict[str, Any]
    erasures_pending: int = 0  # asked for and not finished when the report was written


class AnchoredHead(StoredDocument):
    """One line of ``anchors/audit-heads/<YYYY>.jsonl`` in the second account: the chain's head on a day the
    daily run found it intact and not behind the head anchored before."""

    day: str
    head_seq: int | None
    head_hash: str
    lines: int
    recorded_at: str
