"""The model store in Blob: versioned models, their manifests, and the champion pointer.

Layout under the ``models`` container (paths from ``shared.domain.layout``, documents from
``shared.domain.documents.model``)::

    <model_name>/<version>/model.onnx      what the scorer runs
    <model_name>/<version>/model.txt       the LightGBM booster (explanations, retraining)
    <model_name>/<version>/manifest.json   the ``ModelManifest``: version, created_at, features, threshold,
                                           metrics, sha256, and the sha256 of every other file (``files``)
    <model_name>/champion.json             the ``ChampionPointer``; moved only by an ETag-conditional write, and
                                           pinning the digest of the exact manifest bytes it promoted
    <model_name>/_deprecated/<version>.json the ``Deprecation``: who deprecated the version, when and why
                                           (create-only): it can no longer be promoted or pinned

Every move of the pointer and every deprecation is also a line of the audit chain
(``shared.adapters.audit``), with the actor, the reason and the previous champion.

Integrity is checked all the way down from the pointer: the pointer pins the manifest's digest, the
manifest pins every file's digest, and every read of a file checks its digest (``file``), so a model
whose blobs were rewritten after promotion is refused rather than run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.adapters import documents
from shared.adapters.storage import BlobStore
from shared.domain import layout
from shared.domain.documents.model import ChampionPointer, Deprecation, ModelDescription, ModelManifest
from shared.domain.errors import (
    BlobExistsError,
    BlobNotFoundError,
    ConcurrentUpdateError,
    CorruptDocumentError,
    InvalidModelVersionError,
    ModelDeprecatedError,
    ModelIntegrityError,
    ModelNotAvailableError,
    RegistryError,
)

if TYPE_CHECKING:  # the audit chain loads where the champion moves (the pipeline), not with the scorer
    from shared.domain.audit import Actor, PendingAct
    from shared.domain.documents.governance import AuditLine

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
ONNX = "model.onnx"
# letters, digits, '_' and '-', in segments joined by single dots: no slash, no "..", nothing that leaves the prefix
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*")
VERSION_MAX = 128
VERSION_PATTERN = f"^{VERSION.pattern}$"  # as OpenAPI declares it
STORE_WRITES = ("version", "model_name", "created_at", "sha256", "onnx_bytes", "files", "schema_version")


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
        return layout.model_file(self.model_name, check_version(version), filename)

    def publish(
        self,
        version: str,
        onnx_bytes: bytes,
        description: ModelDescription | Mapping[str, Any],
        extra_files: dict[str, bytes] | None = None,
    ) -> ModelManifest:
        """Write a new version create-only; the manifest is written last and completes it. ``description`` is
        what the publisher says about the model (a ``ModelDescription``; a mapping of its fields still works);
        the store adds the version, the model name, the time and the files' digests."""
        files = extra_files or {}
        manifest = self._manifest_for(version, onnx_bytes, description, files)
        try:
            self.store.put_bytes(
                layout.MODELS,
                self._path(version, ONNX),
                onnx_bytes,
                overwrite=False,
                content_type="application/octet-stream",
            )
            for filename, data in files.items():
                self.store.put_bytes(layout.MODELS, self._path(version, filename), data, overwrite=False)
            documents.write(self.store, layout.MODELS, self._path(version, MANIFEST), manifest, overwrite=False)
        except BlobExistsError:
            raise ConcurrentUpdateError(f"model version {version} already exists") from None
        log.info("published model %s version %s", self.model_name, version)
        return manifest

    def _manifest_for(
        self,
        version: str,
        onnx_bytes: bytes,
        description: ModelDescription | Mapping[str, Any],
        files: dict[str, bytes],
    ) -> ModelManifest:
        """The manifest to write: the description's fields as JSON keeps them (a value JSON cannot hold becomes
        its ``str``, as before), then what the store writes itself."""
        given = (
            description.model_dump(by_alias=True) if isinstance(description, ModelDescription) else dict(description)
        )
        fields = json.loads(json.dumps(given, default=str))
        created_at = fields.get("created_at") or datetime.now(UTC).isoformat()
        for name in STORE_WRITES:
            fields.pop(name, None)
        return ModelManifest.model_validate(
            {
                **fields,
                "version": version,
                "model_name": self.model_name,
                "created_at": created_at,
                "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
                "onnx_bytes": len(onnx_bytes),
                "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
            }
        )

    def write_card(self, manifest: ModelManifest) -> list[str]:
        """The version's model card (``model_card.md`` and ``.html``) beside it, from its manifest; the blob names.
        Derived from the manifest, so outside its digests; create-only: a retry keeps the first."""
        from shared.domain.model_card import html_page, markdown

        names = []
        for filename, body, content_type in (
            ("model_card.md", markdown(manifest), "text/markdown; charset=utf-8"),
            ("model_card.html", html_page(manifest), "text/html; charset=utf-8"),
        ):
            name = self._path(manifest.version, filename)
            with contextlib.suppress(BlobExistsError):
                self.store.put_bytes(layout.MODELS, name, body.encode(), overwrite=False, content_type=content_type)
            names.append(layout.display(layout.MODELS, name))
        return names

    def champion(self) -> tuple[str | None, str | None]:
        """The champion's version and the pointer's ETag; ``(None, None)`` before the first model."""
        pointer = self.pointer()
        return (pointer.version, pointer.etag) if pointer else (None, None)

    def pointer(self) -> Pointer | None:
        """The champion pointer; ``None`` before the first model."""
        try:
            doc, etag = documents.read(
                self.store, layout.MODELS, layout.champion_pointer(self.model_name), ChampionPointer
            )
        except BlobNotFoundError:
            return None
        return Pointer(doc.version, doc.manifest_sha256, etag)

    def pointer_etag(self) -> str | None:
        """The champion pointer's ETag alone (a cheap HEAD), ``None`` when there is none."""
        try:
            return self.store.info(layout.MODELS, layout.champion_pointer(self.model_name)).etag
        except BlobNotFoundError:
            return None

    def promote(
        self,
        version: str,
        *,
        expected_etag: str | None,
        reason: str,
        actor: str | Actor | None = None,
        act: str = "promotion",
    ) -> AuditLine | PendingAct:
        """Move the champion pointer, only if nobody moved it since ``expected_etag`` was read and ``version`` is
        not deprecated; the act is audited (``act``: promotion or rollback). The audit line, or, when the chain
        cannot be written, the act pending (the move took effect: it is never reported as failed)."""
        from shared.adapters.audit import AuditLog, service_actor
        from shared.domain.audit import Act, PendingAct

        self._refuse_deprecated(version, "promoted")
        manifest_sha256 = hashlib.sha256(self._manifest_bytes(version)).hexdigest()
        previous = self.pointer()
        actor = actor or service_actor("fraudops")
        details: dict[str, Any] = {
            "model": self.model_name,
            "version": version,
            "previous": previous.version if previous else None,
            "manifest_sha256": manifest_sha256,
        }
        audited = Act(act, actor, reason, details)
        pointer = ChampionPointer(
            version=check_version(version),
            manifest_sha256=manifest_sha256,
            promoted_at=audited.at,
            reason=reason,
            actor=str(actor),
            previous=previous.version if previous else None,
            act=act,
            act_id=audited.id,
        )
        name = layout.champion_pointer(self.model_name)
        try:
            if expected_etag is None:
                documents.write(self.store, layout.MODELS, name, pointer, overwrite=False)
            else:
                documents.write(self.store, layout.MODELS, name, pointer, if_match=expected_etag)
        except (BlobExistsError, ConcurrentUpdateError):
            raise ConcurrentUpdateError(
                "the champion changed while this run was training; not promoting over it"
            ) from None
        log.info("champion of %s is now %s (%s)", self.model_name, version, reason)
        try:
            return AuditLog(self.store).record(audited)
        except Exception as exc:  # the move took effect: never reported as failed; its line is written later
            why = (
                f"model version {version} is the champion; the audit line of its {act} could not be written yet "
                f"({type(exc).__name__}: {exc}); the daily monitor writes it (fraudops audit reconcile does now)"
            )
            log.error("audit: %s", why)
            return PendingAct(audited, why)

    def reconcile_audit(self) -> AuditLine | None:
        """Write the audit line of the champion's move if it never landed (the chain was unwritable then); the line
        written, or None when the chain already holds it (or the pointer predates act ids)."""
        from shared.adapters.audit import AuditLog
        from shared.domain.audit import Act

        pointer = self.pointer()
        if pointer is None:
            return None
        doc = documents.read(self.store, layout.MODELS, layout.champion_pointer(self.model_name), ChampionPointer)[0]
        if not doc.act_id or not doc.act or not doc.promoted_at:
            return None
        chain = AuditLog(self.store)
        if any(line.id == doc.act_id for line in chain.entries_since(doc.promoted_at[:7])):
            return None
        details = {
            "model": self.model_name,
            "version": doc.version,
            "previous": doc.previous,
            "manifest_sha256": doc.manifest_sha256,
        }
        act = Act(doc.act, doc.actor or "unknown", doc.reason or "", details, id=doc.act_id, at=doc.promoted_at)
        log.warning(
            "audit: the %s of %s to %s was never recorded; recording it now", doc.act, self.model_name, doc.version
        )
        return chain.record(act)

    def deprecation(self, version: str) -> Deprecation | None:
        """Who deprecated ``version``, when and why; ``None`` when it is not deprecated."""
        try:
            found, _ = documents.read(self.store, layout.MODELS, self._deprecation_path(version), Deprecation)
        except BlobNotFoundError:
            return None
        return found

    def _deprecation_path(self, version: str) -> str:
        return layout.deprecation(self.model_name, check_version(version))

    def deprecated(self) -> set[str]:
        """Every deprecated version (one listing)."""
        prefix = f"{self.model_name}/{layout.DEPRECATED}/"
        return {n.removeprefix(prefix).removesuffix(".json") for n in self.store.list_names(layout.MODELS, prefix)}

    def _refuse_deprecated(self, version: str, what: str) -> None:
        found = self.deprecation(version)
        if found is not None:
            raise ModelDeprecatedError(
                f"model version {version} was deprecated by {found.actor} on {found.at[:10]} "
                f"({found.reason}); it cannot be {what}"
            )

    def deprecate(self, version: str, *, reason: str, actor: str | Actor) -> Deprecation:
        """Mark ``version`` deprecated (not the champion: roll back or promote another first); audited. The
        deprecation record (the existing one when it already was)."""
        from shared.adapters.audit import AuditLog
        from shared.domain.audit import Act

        self._manifest_bytes(version)  # it exists
        pointer = self.pointer()
        if pointer is not None and pointer.version == version:
            raise RegistryError(
                f"model version {version} is the champion; promote or roll back to another version before "
                "deprecating it"
            )
        existing = self.deprecation(version)
        if existing is not None:
            return existing
        record = Deprecation(version=version, at=datetime.now(UTC).isoformat(), actor=str(actor), reason=reason)
        # audited first: a deprecation never takes effect unaudited (a failed write is audited and retried)
        AuditLog(self.store).record(Act("deprecation", actor, reason, {"model": self.model_name, "version": version}))
        try:
            documents.write(self.store, layout.MODELS, self._deprecation_path(version), record, overwrite=False)
        except BlobExistsError:  # deprecated by someone else meanwhile
            return self.deprecation(version) or record
        return record

    def _manifest_bytes(self, version: str) -> bytes:
        try:
            data, _ = self.store.get_bytes(layout.MODELS, self._path(version, MANIFEST))
        except BlobNotFoundError:
            raise ModelNotAvailableError(f"model version {version} does not exist") from None
        return data

    def manifest(self, version: str, *, expected_sha256: str | None = None) -> ModelManifest:
        """The version's manifest; with ``expected_sha256`` (the pointer's pin) only if its bytes, as stored,
        match."""
        data = self._manifest_bytes(version)
        if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
            raise ModelIntegrityError(
                f"model {version}: its manifest is not the one the champion pointer promoted (digest differs)"
            )
        where = layout.display(layout.MODELS, self._path(version, MANIFEST))
        try:
            return documents.decode(ModelManifest, data, where=where)
        except CorruptDocumentError as exc:  # a model whose files do not hold together: refused like a bad digest
            raise ModelIntegrityError(f"model {version}: {exc.reason}") from None

    def file(self, version: str, filename: str, *, manifest: ModelManifest | None = None) -> bytes:
        """One file of a version, checked against the digest its manifest records for it."""
        manifest = manifest if manifest is not None else self.manifest(version)
        expected = manifest.digest_of(filename)
        try:
            data, _ = self.store.get_bytes(layout.MODELS, self._path(version, filename))
        except BlobNotFoundError:
            raise ModelNotAvailableError(f"model version {version} has no {filename}") from None
        if expected is None:
            raise ModelIntegrityError(f"model {version}: its manifest records no digest for {filename}")
        if hashlib.sha256(data).hexdigest() != expected:
            raise ModelIntegrityError(f"model {version}: {filename} does not match the sha256 in its manifest")
        return data

    def versions(self) -> list[str]:
        names = self.store.list_names(layout.MODELS, f"{self.model_name}/")
        return sorted({n.split("/")[1] for n in names if n.endswith(f"/{MANIFEST}")})
