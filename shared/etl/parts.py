"""Committing Parquet parts while the ETL is still reading: each finished part is uploaded at once.

A part's blob name is content-addressed (``<stem>-<sha256 of the part>.parquet``), so it is
known as soon as the part is closed, the same input always gives the same names, and a
redelivered blob finds its parts already there. Uploads are create-only single puts on one
background thread, in part order. A part in ``curated/`` is not yet part of the dataset:
only the manifest, written after every part is up, makes it visible to training.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

from shared.adapters.storage import BlobStore
from shared.domain import layout
from shared.domain.errors import BlobExistsError
from shared.etl.transform import Part

log = logging.getLogger(__name__)

CONTAINER = layout.CURATED
PARQUET_TYPE = "application/vnd.apache.parquet"


@dataclass(frozen=True)
class CommittedPart:
    """A part that is in ``curated/``: its blob name, and whether this run created it."""

    part: Part
    name: str
    created: bool


class PartUploader:
    """Upload parts under ``<prefix>/<stem>-<hash>.parquet`` (``layout.curated_part``) as they are handed in."""

    def __init__(self, store: BlobStore, *, prefix: str, stem: str) -> None:
        self._store, self._prefix, self._stem = store, prefix, stem
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-upload")
        self._futures: list[Future[CommittedPart]] = []

    def name_of(self, part: Part) -> str:
        return layout.curated_part(self._prefix, self._stem, part.sha256)

    def submit(self, part: Part) -> None:
        self._futures.append(self._pool.submit(self._upload, part))

    @property
    def submitted(self) -> int:
        """How many parts were handed in so far."""
        return len(self._futures)

    def _upload(self, part: Part) -> CommittedPart:
        name = self.name_of(part)
        created = True
        with part.path.open("rb") as f:
            try:
                self._store.upload_stream(
                    CONTAINER, name, f, overwrite=False, content_type=PARQUET_TYPE, length=part.bytes
                )
            except BlobExistsError:
                log.info(
                    "%s already exists (a redelivery, or the same rows before); keeping it",
                    layout.display(CONTAINER, name),
                )
                created = False
        part.path.unlink(missing_ok=True)  # local disk holds only the parts not yet uploaded
        return CommittedPart(part, name, created)

    def finish(self) -> list[CommittedPart]:
        """Every part, in order, once all are uploaded; the first upload error is raised."""
        return [f.result() for f in self._futures]

    def discard(self) -> None:
        """Wait for the uploads under way, then delete the parts this run created (a rejected file).

        Only for a file that can never succeed: any run of the same bytes is rejected the same way,
        so none of them can be relying on these parts. After a transient error the parts stay,
        and the retry finds them under the same names.
        """
        for future in self._futures:
            try:
                done = future.result()
            except Exception:  # nothing was created by an upload that failed
                continue
            if done.created:
                self._store.delete(CONTAINER, done.name)

    def __enter__(self) -> PartUploader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._pool.shutdown(wait=True, cancel_futures=exc_type is not None)
