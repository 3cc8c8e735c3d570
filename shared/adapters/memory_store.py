"""``MemoryBlobStore``: the blob store's port in memory, for fast tests of the logic above it.

Same contract as ``AzureBlobStore`` (tests/integration/test_blob_store_contract.py runs one suite
against both): containers must exist, create-only writes refuse an existing blob, ``if_match``
writes and pinned reads refuse a changed one, every write gives a new ETag, names list in order.
Thread-safe, so the concurrency tests of the round state machine run on it too.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from shared.adapters.storage import BlobInfo
from shared.domain.errors import BlobExistsError, BlobNotFoundError, ConcurrentUpdateError, FraudOpsError
from shared.domain.layout import CONTAINERS


@dataclass(frozen=True)
class _Blob:
    data: bytes
    etag: str
    last_modified: datetime
    content_type: str | None
    blocks: int = 0  # appended blocks (an append blob's committed block count)


class MemoryBlobStore:
    """Blobs in a dict of containers, guarded by one lock."""

    def __init__(self, chunk_bytes: int = 4 * 1024 * 1024) -> None:
        self._containers: dict[str, dict[str, _Blob]] = {}
        self._lock = threading.Lock()
        self._etags = itertools.count(1)
        self.chunk_bytes = chunk_bytes

    def _container(self, container: str) -> dict[str, _Blob]:
        try:
            return self._containers[container]
        except KeyError:
            raise FraudOpsError(f"container {container} does not exist (create it with ensure_containers)") from None

    def _blob(self, container: str, name: str) -> _Blob:
        try:
            return self._container(container)[name]
        except KeyError:
            raise BlobNotFoundError(f"blob {container}/{name} does not exist") from None

    def ensure_containers(self, names: tuple[str, ...] = CONTAINERS) -> None:
        with self._lock:
            for name in names:
                self._containers.setdefault(name, {})

    def info(self, container: str, name: str) -> BlobInfo:
        with self._lock:
            blob = self._blob(container, name)
        return BlobInfo(container, name, len(blob.data), blob.etag, blob.last_modified, blob.blocks)

    def get_bytes(self, container: str, name: str) -> tuple[bytes, str]:
        with self._lock:
            blob = self._blob(container, name)
        return blob.data, blob.etag

    def download_chunks(self, container: str, name: str, *, etag: str | None = None) -> Iterator[bytes]:
        with self._lock:
            blob = self._blob(container, name)
        if etag is not None and blob.etag != etag:
            raise ConcurrentUpdateError(f"blob {container}/{name} changed while it was being read")
        for start in range(0, len(blob.data), self.chunk_bytes):
            yield blob.data[start : start + self.chunk_bytes]

    def put_bytes(
        self,
        container: str,
        name: str,
        data: bytes,
        *,
        overwrite: bool = True,
        if_match: str | None = None,
        content_type: str | None = None,
    ) -> str:
        with self._lock:
            blobs = self._container(container)
            current = blobs.get(name)
            if if_match is not None and (current is None or current.etag != if_match):
                raise ConcurrentUpdateError(f"{container}/{name} changed since it was read")
            if current is not None and not overwrite and if_match is None:
                raise BlobExistsError(f"{container}/{name} already exists")
            blob = _Blob(bytes(data), f'"0x{next(self._etags):016X}"', datetime.now(UTC), content_type)
            blobs[name] = blob
            return blob.etag

    def upload_stream(
        self,
        container: str,
        name: str,
        stream: IO[bytes] | Iterable[bytes],
        *,
        overwrite: bool = False,
        content_type: str | None = None,
        length: int | None = None,
    ) -> str:
        del length  # the whole stream is read into memory here, so its length is known
        data = stream.read() if hasattr(stream, "read") else b"".join(stream)
        return self.put_bytes(container, name, data, overwrite=overwrite, content_type=content_type)

    def list_names(self, container: str, prefix: str = "") -> list[str]:
        with self._lock:
            return sorted(n for n in self._container(container) if n.startswith(prefix))

    def delete(self, container: str, name: str, *, if_match: str | None = None) -> None:
        with self._lock:
            current = self._container(container).get(name)
            if current is not None and if_match is not None and current.etag != if_match:
                raise ConcurrentUpdateError(f"{container}/{name} changed; not deleting the newer version")
            self._container(container).pop(name, None)

    def append(self, container: str, name: str, data: bytes, *, position: int) -> int:
        with self._lock:
            blobs = self._container(container)
            current = blobs.get(name)
            if position > 0 and current is None:
                raise BlobNotFoundError(f"blob {container}/{name} does not exist")
            before = current.data if current is not None else b""
            if len(before) != position:
                raise ConcurrentUpdateError(f"{container}/{name} grew since it was read")
            content_type = current.content_type if current is not None else None
            blocks = current.blocks + 1 if current is not None else 1
            etag = f'"0x{next(self._etags):016X}"'
            blobs[name] = _Blob(before + bytes(data), etag, datetime.now(UTC), content_type, blocks)
            return position + len(data)

    def read_range(self, container: str, name: str, offset: int, length: int) -> bytes:
        with self._lock:
            blob = self._blob(container, name)
        return blob.data[offset : offset + length]
