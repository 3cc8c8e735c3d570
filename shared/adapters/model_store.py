"""The model store in Blob: versioned models, their manifests, and the champion pointer.

Layout under the ``models`` container::

    <model_name>/<version>/model.onnx      what the scorer runs
    <model_name>/<version>/model.txt       the LightGBM booster (explanations, retraining)
    <model_name>/<version>/manifest.json   version, created_at, features, threshold, metrics, sha256,
                                           and the sha256 of every other file (``files``)
    <model_name>/champion.json             {"version", "manifest_sha256", ...}; moved only by an ETag-conditional
                                           write, and pinning the exact manifest it promoted

Integrity is checked all the way down from the pointer: the pointer pins the manifest's digest, the
manifest pins every file's digest, and every read of a file checks its digest (``file``), so a model
whose blobs were rewritten after promotion is refused rather than run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.adapters.storage import BlobStore
from shared.domain.errors import (
    BlobExistsError,
    BlobNotFoundError,
    ConcurrentUpdateError,
    InvalidModelVersionError,
    ModelIntegrityError,
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


@dataclass(frozen=True)
class Pointer:
    """The champion pointer as read: the version, the manifest digest it pins, and the pointer's ETag."""

    version: str
    manifest_sha256: str | None
    etag: str


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
            "files": {name: hashlib.sha256(data).hexdigest() for name, data in (extra_files or {}).items()},
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
        pointer = self.pointer()
        return (pointer.version, pointer.etag) if pointer else (None, None)

    def pointer(self) -> Pointer | None:
        """The champion pointer; ``None`` before the first model."""
        try:
            data, etag = self.store.get_bytes(CONTAINER, f"{self.model_name}/{POINTER}")
        except BlobNotFoundError:
            return None
        doc = json.loads(data)
        return Pointer(str(doc["version"]), doc.get("manifest_sha256"), etag)

    def pointer_etag(self) -> str | None:
        """The champion pointer's ETag alone (a cheap HEAD), ``None`` when there is none."""
        try:
            return self.store.info(CONTAINER, f"{self.model_name}/{POINTER}").etag
        except BlobNotFoundError:
            return None

    def promote(self, version: str, *, expected_etag: str | None, reason: str) -> None:
        """Move the champion pointer, only if nobody moved it since ``expected_etag`` was read."""
        manifest = self._manifest_bytes(version)
        body = json.dumps(
            {
                "version": check_version(version),
                "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
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

    def _manifest_bytes(self, version: str) -> bytes:
        try:
            data, _ = self.store.get_bytes(CONTAINER, self._path(version, "manifest.json"))
        except BlobNotFoundError:
            raise ModelNotAvailableError(f"model version {version} does not exist") from None
        return data

    def manifest(self, version: str, *, expected_sha256: str | None = None) -> dict[str, Any]:
        """The version's manifest; with ``expected_sha256`` (the pointer's pin) only if its bytes match."""
        data = self._manifest_bytes(version)
        if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
            raise ModelIntegrityError(
                f"model {version}: its manifest is not the one the champion pointer promoted (digest differs)"
            )
        return dict(json.loads(data))

    def file(self, version: str, filename: str, *, manifest: dict[str, Any] | None = None) -> bytes:
        """One file of a version, checked against the digest its manifest records for it."""
        manifest = manifest if manifest is not None else self.manifest(version)
        expected = manifest.get("sha256") if filename == "model.onnx" else manifest.get("files", {}).get(filename)
        try:
            data, _ = self.store.get_bytes(CONTAINER, self._path(version, filename))
        except BlobNotFoundError:
            raise ModelNotAvailableError(f"model version {version} has no {filename}") from None
        if expected is None:
            raise ModelIntegrityError(f"model {version}: its manifest records no digest for {filename}")
        if hashlib.sha256(data).hexdigest() != expected:
            raise ModelIntegrityError(f"model {version}: {filename} does not match the sha256 in its manifest")
        return data

    def versions(self) -> list[str]:
        names = self.store.list_names(CONTAINER, f"{self.model_name}/")
        return sorted({n.split("/")[1] for n in names if n.endswith("/manifest.json")})
