"""The stream's storage calls, each retried with bounded exponential backoff (tenacity) on transient errors.

Only transient errors are retried: a domain answer (the blob exists, changed or is absent) is final,
and a ``BaseException`` (the worker stopping) is not an error to retry. What stays unavailable
through every attempt raises ``StreamStorageError`` with the reason, which the processor turns into
a dead-lettered (or spooled) batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from shared.domain import layout
from shared.domain.errors import BlobExistsError, BlobNotFoundError, FraudOpsError

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore

log = logging.getLogger(__name__)

T = TypeVar("T")


class StreamStorageError(FraudOpsError):
    """Storage stayed unavailable through every retry."""


@dataclass(frozen=True, slots=True)
class Output:
    """One create-only write of a batch: its blob name in its container, the bytes and their content type."""

    name: str
    data: bytes
    content_type: str


class RetryingStore:
    """The blob store as the stream calls it: every call retried ``attempts`` times before it gives up."""

    def __init__(self, store: BlobStore, *, attempts: int, backoff_seconds: float) -> None:
        self.store, self.attempts, self.backoff_seconds = store, attempts, backoff_seconds
        self._executor: ThreadPoolExecutor | None = None

    def retry(self, fn: Callable[[], T], *, what: str) -> T:
        """``fn()``, retried on transient errors; ``StreamStorageError`` naming ``what`` if it never succeeds."""
        from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            reraise=False,
            wait=wait_exponential(multiplier=self.backoff_seconds, max=self.backoff_seconds * 8),
            # transient errors only: a domain answer (exists, changed, absent) is final, and a BaseException
            # (the worker stopping) is not an error to retry
            retry=retry_if_exception(lambda e: isinstance(e, Exception) and not isinstance(e, FraudOpsError)),
            before_sleep=lambda state: log.warning(
                "writing %s failed (attempt %d): %s; retrying",
                what,
                state.attempt_number,
                state.outcome.exception() if state.outcome else None,
            ),
        )
        try:
            return retrying(fn)
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            raise StreamStorageError(f"{what} failed {self.attempts} times: {type(cause).__name__}: {cause}") from cause

    def put_new(self, container: str, output: Output) -> bool:
        """Create-only with retries; ``False`` when it already exists (a redelivery)."""

        def write() -> bool:
            try:
                self.store.put_bytes(
                    container, output.name, output.data, overwrite=False, content_type=output.content_type
                )
            except BlobExistsError:
                return False
            return True

        return bool(self.retry(write, what=layout.display(container, output.name)))

    def put_all(self, writes: dict[str, Output]) -> dict[str, bool]:
        """Create-only writes side by side (each retried); which were created; raises if any failed for good."""
        if len(writes) <= 1:
            return {container: self.put_new(container, output) for container, output in writes.items()}
        futures = {
            container: self._pool().submit(self.put_new, container, output) for container, output in writes.items()
        }
        created, failure = {}, None
        for container, future in futures.items():
            try:
                created[container] = future.result()
            except StreamStorageError as exc:
                failure = failure or exc
        if failure:
            raise failure
        return created

    def exists(self, container: str, name: str) -> bool:
        try:
            self.retry(lambda: self.store.info(container, name), what=layout.display(container, name))
        except BlobNotFoundError:
            return False
        return True

    def delete(self, container: str, name: str) -> None:
        self.retry(lambda: self.store.delete(container, name), what=layout.display(container, name))

    def read(self, container: str, name: str) -> bytes:
        data, _ = self.retry(lambda: self.store.get_bytes(container, name), what=layout.display(container, name))
        return bytes(data)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix="stream-write")
        return self._executor
