"""Governance's stored documents: the audit line (``audit`` container), the erasure markers (``curated``) and
the monthly audit report (``reports``).

The audit line is hashed: its stored form is canonical JSON (sorted keys, no spaces, ASCII) of exactly
``AUDIT_FIELDS``, and the hash is sha256 of that form without ``hash``. It therefore carries no
``schema_version`` on the wire (a new key would be a new chain format): its version is its field set.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

from pydantic import Field

from shared.domain.documents import StoredDocument

AUDIT_FIELDS: Final = ("seq", "id", "at", "act", "actor", "reason", "details", "prev", "hash")


def canonical(doc: dict[str, Any]) -> bytes:
    """The bytes an audit line is stored and hashed as: sorted keys, no spaces, ASCII."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode()


def digest(doc: dict[str, Any]) -> str:
    """The hash of a line: sha256 of its canonical JSON without the ``hash`` field."""
    return hashlib.sha256(canonical({k: v for k, v in doc.items() if k != "hash"})).hexdigest()


class AuditLine(StoredDocument):
    """One sealed act of the audit chain: its place (``seq``, ``prev``), what, who, why, and its own hash."""

    seq: int
    id: str
    at: str
    act: str
    actor: str
    reason: str
    details: dict[str, Any] = Field(default_factory=dict)
    prev: str
    hash: str

    def fields(self) -> dict[str, Any]:
        """The line's stored fields (exactly ``AUDIT_FIELDS``), as hashed."""
        return {name: getattr(self, name) for name in AUDIT_FIELDS}

    def to_json(self) -> bytes:
        """The line as appended: its canonical JSON and a newline."""
        return canonical(self.fields()) + b"\n"

    def to_dict(self) -> dict[str, object]:
        return dict(self.fields())

    @classmethod
    def from_fields(cls, doc: object) -> AuditLine:
        """A stored line's parsed JSON; ``ValueError`` unless it has exactly the fields of an entry, well typed."""
        if not isinstance(doc, dict) or set(doc) != set(AUDIT_FIELDS):
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


class ErasurePlan(StoredDocument):
    """The marker of an erasure under way: every blob to rewrite and under which name, the transactions."""

    pseudonym: str
    status: str = "started"
    started_at: str
    plan: dict[str, str]
    transactions: list[str]
    raw: list[str]
    raw_pending: list[str]


class ErasureDone(StoredDocument):
    """The marker of a finished erasure: the pseudonym and the times only (the exclusion list)."""

    pseudonym: str
    status: str = "done"
    started_at: str
    erased_at: str


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
