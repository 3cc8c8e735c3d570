"""The erasure markers: ``curated/_erasures/<pseudonym>.json`` (``layout.erasure_marker``), one per erased customer.

While an erasure runs, its marker holds the plan (``ErasurePlan``: which blobs are rewritten under which
names, the transactions whose labels go too), so a run that crashed resumes exactly where it was; once
done, it holds the pseudonym and the times only (``ErasureDone``). The markers are also the exclusion
list: the ETL drops an erased customer's rows before writing anything, and the training window leaves
them out, so no later ETL or retrain brings them back (``erased``).

An erasure asked for over HTTP runs in the background: ``curated/_erasure_requests/<pseudonym>`` says it
was asked for and is not finished (``requested``), from the moment it is accepted, so the customer is
excluded at once and a run that never finished is resumed (``fraudops gdpr resume``, the daily
monitor) and listed in the monthly audit report. Erasures run one at a time: each holds
``curated/_erasure.lock`` (``ErasureLockHandle``), so two erasures rewriting the same part cannot each
keep the other's customer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

from shared.adapters import documents
from shared.adapters.storage import BlobStore
from shared.domain import layout
from shared.domain.documents.governance import ErasureDone, ErasureLock, ErasureMarker, ErasurePlan
from shared.domain.errors import BlobExistsError, BlobNotFoundError, ConcurrentUpdateError, ErasureBusyError

log = logging.getLogger(__name__)

CONTAINER = layout.CURATED
PREFIX = layout.ERASURES_PREFIX


def marker_name(pseudonym: str) -> str:
    return layout.erasure_marker(pseudonym)


LOCK_SECONDS = 600  # a claim lapses this long after its last renewal (an instance that died holding it)


def erased(store: BlobStore) -> frozenset[str]:
    """Every erased customer's pseudonym, and every one whose erasure was asked for (two listings)."""
    done = {n.removeprefix(PREFIX).removesuffix(".json") for n in store.list_names(CONTAINER, PREFIX)}
    return frozenset(done | set(requested(store)))


def requested(store: BlobStore) -> list[str]:
    """The pseudonyms whose erasure was asked for and has not finished (one listing)."""
    prefix = layout.ERASURE_REQUESTS_PREFIX
    return sorted(n.removeprefix(prefix) for n in store.list_names(CONTAINER, prefix))


def request(store: BlobStore, pseudonym: str, names: tuple[str, ...] = ()) -> None:
    """Record that ``pseudonym``'s erasure is asked for (idempotent), with the customer's pseudonyms under every
    key (``names``: after a key rotation, its records carry an older one too), so a run resumed without the
    clear id still finds them all."""
    body = json.dumps(sorted(set(names) | {pseudonym})).encode()
    with contextlib.suppress(BlobExistsError):
        store.put_bytes(CONTAINER, layout.erasure_request(pseudonym), body, overwrite=False)


def aliases(store: BlobStore, pseudonym: str) -> tuple[str, ...]:
    """The customer's pseudonyms as its request recorded them, ``pseudonym`` first (alone when none were)."""
    try:
        recorded = json.loads(store.get_bytes(CONTAINER, layout.erasure_request(pseudonym))[0] or b"[]")
    except (BlobNotFoundError, ValueError):
        recorded = []
    others = [n for n in recorded if isinstance(n, str) and n != pseudonym]
    return (pseudonym, *sorted(others))


def asked_after(store: BlobStore, pseudonym: str, marker: ErasureMarker) -> bool:
    """Whether the pending request was made after the erasure its marker says is done (asked again since)."""
    try:
        asked = store.info(CONTAINER, layout.erasure_request(pseudonym)).last_modified
    except BlobNotFoundError:
        return False
    return marker.erased_at is not None and asked > datetime.fromisoformat(marker.erased_at)


def finished(store: BlobStore, pseudonym: str) -> None:
    """The erasure of ``pseudonym`` is done: it is no longer pending."""
    store.delete(CONTAINER, layout.erasure_request(pseudonym))  # one already gone is fine


class ErasureLockHandle:
    """The one erasure that runs: a claim on ``curated/_erasure.lock``, taken create-only (or over a lapsed
    claim, conditionally), renewed as the erasure goes, released at the end."""

    def __init__(self, store: BlobStore, pseudonym: str) -> None:
        self.store, self.pseudonym = store, pseudonym
        self.holder = uuid.uuid4().hex
        self.etag: str | None = None
        self.renewed = datetime.now(UTC)

    def _doc(self) -> ErasureLock:
        now = datetime.now(UTC)
        return ErasureLock(
            holder=self.holder,
            pseudonym=self.pseudonym,
            acquired_at=now.isoformat(),
            expires_at=(now + timedelta(seconds=LOCK_SECONDS)).isoformat(),
        )

    def acquire(self) -> ErasureLockHandle:
        """Take the claim; ``ErasureBusyError`` while another erasure holds a claim that has not lapsed."""
        store = self.store
        try:
            self.etag = documents.write(store, CONTAINER, layout.ERASURE_LOCK, self._doc(), overwrite=False)
            return self
        except BlobExistsError:
            pass
        try:
            held, etag = documents.read(store, CONTAINER, layout.ERASURE_LOCK, ErasureLock)
        except BlobNotFoundError:
            return self.acquire()  # released meanwhile
        if datetime.fromisoformat(held.expires_at) > datetime.now(UTC):
            raise ErasureBusyError(
                f"another erasure is running (of {held.pseudonym}, since {held.acquired_at}); erasures run one at "
                "a time so that two rewriting the same file cannot each keep the other's customer. This one is "
                "recorded as requested and runs after it"
            )
        log.warning(
            "erasure: the claim of %s lapsed at %s (its instance died); taking it over", held.pseudonym, held.expires_at
        )
        try:
            self.etag = documents.write(store, CONTAINER, layout.ERASURE_LOCK, self._doc(), if_match=etag)
        except (ConcurrentUpdateError, BlobNotFoundError) as err:
            raise ErasureBusyError("another erasure took over the lapsed claim first; this one runs after it") from err
        return self

    def renew(self) -> None:
        """Extend the claim (every few blobs of a long erasure); ``ErasureBusyError`` if it was taken over."""
        if datetime.now(UTC) - self.renewed < timedelta(seconds=LOCK_SECONDS / 4):
            return
        try:
            self.etag = documents.write(self.store, CONTAINER, layout.ERASURE_LOCK, self._doc(), if_match=self.etag)
        except (ConcurrentUpdateError, BlobNotFoundError) as err:
            raise ErasureBusyError(
                "this erasure's claim lapsed and another erasure took it over; it stops here and resumes later"
            ) from err
        self.renewed = datetime.now(UTC)

    def release(self) -> None:
        try:
            self.store.delete(CONTAINER, layout.ERASURE_LOCK, if_match=self.etag)
        except (ConcurrentUpdateError, BlobNotFoundError):
            log.warning("erasure: the claim was no longer ours at release (it had lapsed)")

    def __enter__(self) -> ErasureLockHandle:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


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
