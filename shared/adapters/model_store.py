"""The model store in Blob: versioned models, their manifests, and the champion pointer.

Layout under the ``models`` container::

    <model_name>/<version>/model.onnx      what the scorer runs
    <model_name>/<version>/model.txt       the LightGBM booster (explanations, retraining)
    <model_name>/<version>/manifest.json   version, created_at, features, threshold, metrics, sha256
    <model_name>/champion.json             {"version": ...}; moved only by an ETag-conditional write
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from shared.adapters.storage import BlobStore
from shared.domain.errors import (
    BlobExistsError,
    BlobNotFoundError,
    ConcurrentUpdateError,
    InvalidModelVersionError,
    ModelNotAvailableError,
)

log = logging.getLogger(__name__)

CONTAINER = "models"
POINTER = "champion.json"
# letters, digits, '_' and '-', in segments joined by single dots: no slash, no "..", nothing that leaves the prefix
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*")
VERSION_MAX = 128
VERSION_PATTERN = f"^{VERSION.pattern}$"  # as OpenAPI declares it


def check_version(version: str) -> str:
    """``version`` if it is a version name; ``InvalidModelVersionError`` (before any read) otherwise."""
    if len(version) > VERSION_MAX or not VERSION.fullmatch(version):
        raise InvalidModelVersionError(
            f"model version {version[:80]!r} is not a version name (letters, digits, '_', '-' and single dots, "
            f"at most {VERSION_MAX})"
        )
    return version


def new_version(now: datetime | None = None, salt: str = "") -> str:
    """A sortable, unique version name: UTC timestamp plus a short hash."""
    now = now or datetime.now(UTC)
    short = hashlib.sha256(f"{now.isoformat()}{salt}".encode()).hexdigest()[:8]
    return f"{now:%Y%m%dT%H%M%S}Z-{short}"


class ModelStore:
    """Publish and read models of one model name."""

    def __init__(self, store: BlobStore, model_name: str) -> None:
        self.store = store
        self.model_name = model_name

    def _path(self, version: str, filename: str) -> str:
        """Every read and write of a version goes through here, so none can leave ``<model_name>/<version>/``."""
        return f"{self.model_name}/{check_version(version)}/{filename}"

    def publish(
        self, version: str, onnx_bytes: bytes, manifest: dict[str, Any], extra_files: dict[str, bytes] | None = None
    ) -> dict[str, Any]:
        """Write a new version create-only; the manifest is written last and completes it."""
        manifest = {
            **manifest,
            "version": version,
            "model_name": self.model_name,
            "created_at": manifest.get("created_at") or datetime.now(UTC).isoformat(),
            "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
            "onnx_bytes": len(onnx_bytes),
        }
        try:
            self.store.put_bytes(
                CONTAINER,
                self._path(version, "model.onnx"),
                onnx_bytes,
                overwrite=False,
                content_type="application/octet-stream",
            )
            for filename, data in (extra_files or {}).items():
                self.store.put_bytes(CONTAINER, self._path(version, filename), data, overwrite=False)
            self.store.put_bytes(
                CONTAINER,
                self._path(version, "manifest.json"),
                json.dumps(manifest, indent=1, default=str).encode(),
                overwrite=False,
                content_type="application/json",
            )
        except BlobExistsError:
            raise ConcurrentUpdateError(f"model version {version} already exists") from None
        log.info("published model %s version %s", self.model_name, version)
        return manifest

    def champion(self) -> tuple[str | None, str | None]:
        """The champion's version and the pointer's ETag; ``(None, None)`` before the first model."""
        try:
            data, etag = self.store.get_bytes(CONTAINER, f"{self.model_name}/{POINTER}")
        except BlobNotFoundError:
            return None, None
        return str(json.loads(data)["version"]), etag

    def pointer_etag(self) -> str | None:
        """The champion pointer's ETag alone (a cheap HEAD), ``None`` when there is none."""
        try:
            return self.store.info(CONTAINER, f"{self.model_name}/{POINTER}").etag
        except BlobNotFoundError:
            return None

    def promote(self, version: str, *, expected_etag: str | None, reason: str) -> None:
        """Move the champion pointer, only if nobody moved it since ``expected_etag`` was read."""
        body = json.dumps(
            {
                "version": check_version(version),
                "promoted_at": datetime.now(UTC).isoformat(),
                "reason": reason,
            }
        ).encode()
        name = f"{self.model_name}/{POINTER}"
        try:
            if expected_etag is None:
                self.store.put_bytes(CONTAINER, name, body, overwrite=False, content_type="application/json")
            else:
                self.store.put_bytes(CONTAINER, name, body, if_match=expected_etag, content_type="application/json")
        except (BlobExistsError, ConcurrentUpdateError):
            raise ConcurrentUpdateError(
                "the champion changed while this run was training; not promoting over it"
            ) from None
        log.info("champion of %s is now %s (%s)", self.model_name, version, reason)

    def manifest(self, version: str) -> dict[str, Any]:
        try:
            data, _ = self.store.get_bytes(CONTAINER, self._path(version, "manifest.json"))
        except BlobNotFoundError:
            raise ModelNotAvailableError(f"model version {version} does not exist") from None
        return dict(json.loads(data))

    def file(self, version: str, filename: str) -> bytes:
        try:
            data, _ = self.store.get_bytes(CONTAINER, self._path(version, filename))
        except BlobNotFoundError:
            raise ModelNotAvailableError(f"model version {version} has no {filename}") from None
        return data

    def versions(self) -> list[str]:
        names = self.store.list_names(CONTAINER, f"{self.model_name}/")
        return sorted({n.split("/")[1] for n in names if n.endswith("/manifest.json")})
