"""The one reader and writer of stored documents: typed JSON in Blob, with the blob's ETag.

Every service reads and writes its documents (``shared.domain.documents``) through these two
functions, at the paths ``shared.domain.layout`` names, so a document's encoding, its schema version
and its refusal when unreadable have one home.
"""

from __future__ import annotations

from pydantic import ValidationError

from shared.adapters.storage import BlobStore
from shared.domain.documents import StoredDocument
from shared.domain.errors import CorruptDocumentError

JSON_TYPE = "application/json"


def decode[D: StoredDocument](cls: type[D], data: bytes, *, where: str) -> D:
    """``data`` as a ``cls``; ``CorruptDocumentError`` naming ``where`` and the first problem otherwise."""
    try:
        return cls.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        field = ".".join(map(str, first["loc"])) or "the document"
        raise CorruptDocumentError(
            f"{where} is not a readable {cls.__name__} ({field}: {first['msg']}; {exc.error_count()} problem(s))"
        ) from None


def read[D: StoredDocument](store: BlobStore, container: str, name: str, cls: type[D]) -> tuple[D, str]:
    """The document at ``container/name`` and its ETag; ``BlobNotFoundError`` when there is none."""
    data, etag = store.get_bytes(container, name)
    return decode(cls, data, where=f"{container}/{name}"), etag


def write(
    store: BlobStore,
    container: str,
    name: str,
    document: StoredDocument,
    *,
    overwrite: bool = True,
    if_match: str | None = None,
) -> str:
    """Write ``document`` (create-only with ``overwrite=False``, conditional with ``if_match``); the new ETag."""
    return store.put_bytes(
        container, name, document.to_json(), overwrite=overwrite, if_match=if_match, content_type=JSON_TYPE
    )
