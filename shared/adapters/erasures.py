"""The erasure markers: ``curated/_erasures/<pseudonym>.json`` (``layout.erasure_marker``), one per erased customer.

While an erasure runs, its marker holds the plan (``ErasurePlan``: which blobs are rewritten under which
names, the transactions whose labels go too), so a run that crashed resumes exactly where it was; once
done, it holds the pseudonym and the times only (``ErasureDone``). The markers are also the exclusion
list: the ETL drops an erased customer's rows before writing anything, and the training window leaves
them out, so no later ETL or retrain brings them back (``erased``).
"""

from __future__ import annotations

from shared.adapters import documents
from shared.adapters.storage import BlobStore
from shared.domain import layout
from shared.domain.documents.governance import ErasureDone, ErasureMarker, ErasurePlan
from shared.domain.errors import BlobNotFoundError

CONTAINER = layout.CURATED
PREFIX = layout.ERASURES_PREFIX


def marker_name(pseudonym: str) -> str:
    return layout.erasure_marker(pseudonym)


def erased(store: BlobStore) -> frozenset[str]:
    """Every erased customer's pseudonym (one listing)."""
    return frozenset(n.removeprefix(PREFIX).removesuffix(".json") for n in store.list_names(CONTAINER, PREFIX))


def read_marker(store: BlobStore, pseudonym: str) -> tuple[ErasureMarker | None, str | None]:
    """The customer's marker and its ETag; ``(None, None)`` when there is none."""
    try:
        return documents.read(store, CONTAINER, marker_name(pseudonym), ErasureMarker)
    except BlobNotFoundError:
        return None, None


def write_marker(store: BlobStore, pseudonym: str, doc: ErasurePlan | ErasureDone, etag: str | None) -> str:
    """Create the marker (``etag`` None) or replace the version read (``ConcurrentUpdateError`` otherwise)."""
    if etag is None:
        return documents.write(store, CONTAINER, marker_name(pseudonym), doc, overwrite=False)
    return documents.write(store, CONTAINER, marker_name(pseudonym), doc, if_match=etag)
