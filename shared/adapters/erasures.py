"""The erasure markers: ``curated/_erasures/<pseudonym>.json``, one per erased customer.

While an erasure runs, its marker holds the plan (which blobs are rewritten under which names, the
transactions whose labels go too), so a run that crashed resumes exactly where it was; once done, it
holds the pseudonym and the times only. The markers are also the exclusion list: the ETL drops an
erased customer's rows before writing anything, and the training window leaves them out, so no later
ETL or retrain brings them back (``erased``).
"""

from __future__ import annotations

import json
from typing import Any

from shared.adapters.storage import BlobStore
from shared.domain.errors import BlobNotFoundError

CONTAINER = "curated"
PREFIX = "_erasures/"


def marker_name(pseudonym: str) -> str:
    return f"{PREFIX}{pseudonym}.json"


def erased(store: BlobStore) -> frozenset[str]:
    """Every erased customer's pseudonym (one listing)."""
    return frozenset(n.removeprefix(PREFIX).removesuffix(".json") for n in store.list_names(CONTAINER, PREFIX))


def read_marker(store: BlobStore, pseudonym: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        data, etag = store.get_bytes(CONTAINER, marker_name(pseudonym))
    except BlobNotFoundError:
        return None, None
    return dict(json.loads(data)), etag


def write_marker(store: BlobStore, pseudonym: str, doc: dict[str, Any], etag: str | None) -> str:
    """Create the marker (``etag`` None) or replace the version read (``ConcurrentUpdateError`` otherwise)."""
    body = json.dumps(doc, indent=1).encode()
    if etag is None:
        return store.put_bytes(
            CONTAINER, marker_name(pseudonym), body, overwrite=False, content_type="application/json"
        )
    return store.put_bytes(CONTAINER, marker_name(pseudonym), body, if_match=etag, content_type="application/json")
