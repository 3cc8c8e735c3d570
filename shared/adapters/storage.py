"""Blob storage: a small interface the domain code uses, and its Azure SDK adapter.

The adapter is built once per process by the composition root (``shared.bootstrap``), never at import.
Conditional writes (ETag ``if_match`` / create-only) map to domain errors so callers can
implement optimistic concurrency without knowing the SDK.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, Protocol

from shared.domain.errors import BlobExistsError, BlobNotFoundError, ConcurrentUpdateError, ConfigurationError
from shared.domain.layout import CONTAINERS

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient

    from shared.domain.config import StorageConfig
    from shared.domain.settings import Settings

log = logging.getLogger(__name__)

DOWNLOAD_CHUNK_BYTES = 16 * 1024 * 1024  # few range requests (Azurite spends per request), bounded memory


@dataclass(frozen=True)
class BlobInfo:
    """What the store knows about a blob without reading it."""

    container: str
    name: str
    size: int
    etag: str
    last_modified: datetime
    blocks: int | None = None  # an append blob's committed blocks (Azure caps them at 50,000); None otherwise


class BlobStore(Protocol):
    """The storage operations the domain needs."""

    def ensure_containers(self, names: tuple[str, ...] = CONTAINERS) -> None: ...
    def info(self, container: str, name: str) -> BlobInfo: ...
    def get_bytes(self, container: str, name: str) -> tuple[bytes, str]: ...
    def download_chunks(self, container: str, name: str, *, etag: str | None = None) -> Iterator[bytes]: ...
    def put_bytes(
        self,
        container: str,
        name: str,
        data: bytes,
        *,
        overwrite: bool = True,
        if_match: str | None = None,
        content_type: str | None = None,
    ) -> str: ...
    def upload_stream(
        self,
        container: str,
        name: str,
        stream: IO[bytes] | Iterable[bytes],
        *,
        overwrite: bool = False,
        content_type: str | None = None,
        length: int | None = None,
    ) -> str: ...
    def list_names(self, container: str, prefix: str = "") -> list[str]: ...
    def delete(self, container: str, name: str, *, if_match: str | None = None) -> None: ...
    def append(self, container: str, name: str, data: bytes, *, position: int) -> int: ...
    def read_range(self, container: str, name: str, offset: int, length: int) -> bytes: ...


class AzureBlobStore:
    """``BlobStore`` over ``azure-storage-blob``."""

    def __init__(self, service: BlobServiceClient) -> None:
        self._service = service

    @property
    def service(self) -> BlobServiceClient:
        return self._service

    def ensure_containers(self, names: tuple[str, ...] = CONTAINERS) -> None:
        from azure.core.exceptions import ResourceExistsError

        for name in names:
            try:
                self._service.create_container(name)
                log.info("created container %s", name)
            except ResourceExistsError:
                pass

    def info(self, container: str, name: str) -> BlobInfo:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            props = self._service.get_blob_client(container, name).get_blob_properties()
        except ResourceNotFoundError:
            raise BlobNotFoundError(f"blob {container}/{name} does not exist") from None
        return BlobInfo(
            container, name, props.size, props.etag, props.last_modified, props.append_blob_committed_block_count
        )

    def get_bytes(self, container: str, name: str) -> tuple[bytes, str]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            downloader = self._service.get_blob_client(container, name).download_blob()
            return downloader.readall(), downloader.properties.etag
        except ResourceNotFoundError:
            raise BlobNotFoundError(f"blob {container}/{name} does not exist") from None

    def download_chunks(self, container: str, name: str, *, etag: str | None = None) -> Iterator[bytes]:
        """Stream a blob in chunks: memory stays bounded whatever its size.

        With ``etag``, the blob must still be that version (``ConcurrentUpdateError`` otherwise);
        the SDK also pins every later range request to the ETag of the first.
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        client = self._service.get_blob_client(container, name)
        kwargs: dict[str, Any] = {}
        if etag is not None:
            kwargs = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        try:
            downloader = client.download_blob(**kwargs)
            yield from downloader.chunks()
        except ResourceNotFoundError:
            raise BlobNotFoundError(f"blob {container}/{name} does not exist") from None
        except ResourceModifiedError:
            raise ConcurrentUpdateError(f"blob {container}/{name} changed while it was being read") from None

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
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
        from azure.storage.blob import ContentSettings

        client = self._service.get_blob_client(container, name)
        kwargs: dict[str, Any] = {}
        if content_type:
            kwargs["content_settings"] = ContentSettings(content_type=content_type)
        if if_match is not None:
            kwargs["etag"] = if_match
            kwargs["match_condition"] = MatchConditions.IfNotModified
        try:
            result = client.upload_blob(data, overwrite=overwrite or if_match is not None, **kwargs)
        except ResourceModifiedError:
            raise ConcurrentUpdateError(f"{container}/{name} changed since it was read") from None
        except ResourceExistsError:
            if if_match is not None:
                raise ConcurrentUpdateError(f"{container}/{name} changed since it was read") from None
            raise BlobExistsError(f"{container}/{name} already exists") from None
        return str(result["etag"])

    def upload_stream(
        self,
        container: str,
        name: str,
        stream: IO[bytes] | Iterable[bytes],
        *,
        overwrite: bool = False,
        content_type: str | None = None,
        length: int | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> str:
        """Upload a file object or an iterable of chunks without holding it whole in memory.

        Pass ``length`` for an iterable when it is known: the SDK's parallel upload of an empty
        iterable of unknown length never returns (azure-storage-blob 12.x). ``progress`` hears
        ``(bytes sent, total or None)`` as the blocks go (the CLI's progress line).
        """
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import ContentSettings

        client = self._service.get_blob_client(container, name)
        settings = ContentSettings(content_type=content_type) if content_type else None
        extra: dict[str, Any] = {"progress_hook": progress} if progress is not None else {}
        try:
            result = client.upload_blob(
                stream,
                length=length,
                overwrite=overwrite,
                max_concurrency=2,
                content_settings=settings,
                **extra,
            )
        except ResourceExistsError:
            raise BlobExistsError(f"{container}/{name} already exists") from None
        return str(result["etag"])

    def list_names(self, container: str, prefix: str = "") -> list[str]:
        client = self._service.get_container_client(container)
        return [b.name for b in client.list_blobs(name_starts_with=prefix or None)]

    def delete(self, container: str, name: str, *, if_match: str | None = None) -> None:
        """Delete (a blob already gone is fine); with ``if_match``, only that version: ``ConcurrentUpdateError``
        when the blob has changed since."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        kwargs: dict[str, Any] = {}
        if if_match is not None:
            kwargs.update(etag=if_match, match_condition=MatchConditions.IfNotModified)
        try:
            with contextlib.suppress(ResourceNotFoundError):
                self._service.get_blob_client(container, name).delete_blob(**kwargs)
        except ResourceModifiedError:
            raise ConcurrentUpdateError(f"{container}/{name} changed; not deleting the newer version") from None

    def append(self, container: str, name: str, data: bytes, *, position: int) -> int:
        """Append ``data`` to an append blob as one block, only if the blob is ``position`` bytes long (0: the
        blob is created first, create-only); the new length. ``ConcurrentUpdateError`` when someone else
        appended or created it first, so a writer that read the tail can re-read and retry: the blocks
        are never interleaved and never overwritten (with the container's WORM policy, nothing can be)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

        client = self._service.get_blob_client(container, name)
        if position == 0:
            # created by another writer, or left empty by a writer that crashed before its first block: either
            # way the append below lands only while the blob is still empty (its position condition)
            with contextlib.suppress(ResourceExistsError):
                client.create_append_blob(match_condition=MatchConditions.IfMissing)
        try:
            client.append_block(data, appendpos_condition=position)
        except ResourceNotFoundError:
            raise BlobNotFoundError(f"blob {container}/{name} does not exist") from None
        except HttpResponseError as exc:
            if exc.status_code == 412:  # AppendPositionConditionNotMet
                raise ConcurrentUpdateError(f"{container}/{name} grew since it was read") from None
            raise
        return position + len(data)

    def read_range(self, container: str, name: str, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` (fewer at the end of the blob)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return bytes(self._service.get_blob_client(container, name).download_blob(offset, length).readall())
        except ResourceNotFoundError:
            raise BlobNotFoundError(f"blob {container}/{name} does not exist") from None


@dataclass(frozen=True)
class Patience:
    """How long a client waits for storage before it gives up: the connect timeout, how often a request that could
    not connect is tried again, and who hears of each retry (``on_retry(attempt, wait_seconds, error)``).

    The default suits the function apps: three retries after a few seconds each ride out throttling and blips, and
    a dead endpoint is named within twenty seconds (the SDK's own backs off 15, 18 and 24 s, which held the request that
    checks the champion pointer, or a CLI command, for over a minute). A person at a terminal (``fraudops``) is
    better served by a short connect timeout and one retry they can see.
    """

    connect_seconds: float = 20.0  # the SDK's
    connect_retries: int = 3
    backoff: float | None = None  # a fixed wait before each retry; None: about 3, 5 and 9 s (exponential, jittered)
    on_retry: Callable[[int, float, Exception | None], None] | None = None


def _retry_policy(patience: Patience) -> Any:
    """The SDK's exponential retry, with ``patience``'s connect retries, telling ``on_retry`` before each wait."""
    from azure.storage.blob import ExponentialRetry

    class _Told(ExponentialRetry):
        def sleep(self, settings: dict[str, Any], transport: Any) -> None:
            wait = patience.backoff if patience.backoff is not None else self.get_backoff_time(settings)
            if patience.on_retry is not None:
                history = settings.get("history") or []
                patience.on_retry(settings["count"], wait, history[-1].error if history else None)
            if wait > 0:
                transport.sleep(wait)

    return _Told(
        initial_backoff=1,
        increment_base=2,
        retry_total=3,
        retry_connect=patience.connect_retries,
        random_jitter_range=1,
    )


def make_service_client(
    config: StorageConfig | Settings, *, credential: Any | None = None, patience: Patience | None = None
) -> BlobServiceClient:
    """A ``BlobServiceClient`` from the storage config: managed identity in Azure, a connection string locally.

    ``credential`` is the process's Entra ID credential (the composition root's); built here when not given.
    A connection string the SDK cannot read is a ``ConfigurationError`` (no request is made to find out).
    """
    from azure.storage.blob import BlobServiceClient

    patience = patience or Patience()
    chunks: dict[str, Any] = {
        "max_single_get_size": DOWNLOAD_CHUNK_BYTES,
        "max_chunk_get_size": DOWNLOAD_CHUNK_BYTES,
        "retry_policy": _retry_policy(patience),
        "connection_timeout": patience.connect_seconds,
    }
    url = config.storage_blob_uri or (
        f"https://{config.storage_account_name}.blob.core.windows.net" if config.storage_account_name else None
    )
    if url:
        if credential is None:
            from shared.adapters.identity import build_credential

            credential = build_credential(config.storage_credential_client_id)
        return BlobServiceClient(url, credential=credential, **chunks)
    try:
        return BlobServiceClient.from_connection_string(config.storage_connection, **chunks)
    except ValueError as exc:  # the SDK's words ("either blank or malformed"); never the string, which holds a key
        raise ConfigurationError(f"the storage connection string is not usable: {exc}") from None


def build_blob_store(
    config: StorageConfig | Settings, *, credential: Any | None = None, patience: Patience | None = None
) -> AzureBlobStore:
    """The blob store the config names (it creates no containers: Bicep in Azure, ``fraudops init`` locally)."""
    return AzureBlobStore(make_service_client(config, credential=credential, patience=patience))
