"""The typed documents the services hand each other through Blob, one module per document.

Each document is a pydantic model with a ``schema_version``: what a service writes for another to
read (the model manifest, the champion pointer, the dataset manifest, round state, run reports,
erasure plans, the audit line). Documents written before the field existed read as version 1. A
reader never drops a key it does not know (``extra="allow"``), so an older reader keeps a newer
writer's fields, and a writer that renames a field breaks the type check of every reader (mypy).

Reading and writing go through ``shared.adapters.documents`` (JSON in Blob, with ETags); paths come
from ``shared.domain.layout``.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class StoredDocument(BaseModel):
    """The base of every stored document: a schema version, unknown keys kept, immutable once read."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, defer_build=True)

    SCHEMA_VERSION: ClassVar[int] = 1
    schema_version: int = 1

    def to_json(self) -> bytes:
        """The document as stored: JSON, every field (unknown ones too), the current schema version."""
        return (
            self.model_copy(update={"schema_version": type(self).SCHEMA_VERSION})
            .model_dump_json(indent=1, by_alias=True)
            .encode()
        )

    def to_dict(self) -> dict[str, object]:
        """The document as a JSON-ready dict (for an HTTP answer or a report that embeds it)."""
        return self.model_dump(mode="json", by_alias=True)
