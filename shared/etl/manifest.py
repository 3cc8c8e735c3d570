"""The dataset manifest: which curated files make up each dataset version.

``curated/<dataset>/_manifest.json`` (``DatasetManifest``) lists every curated file and the history
of versions. A version is a hash of the sorted file list, so the same files always give the same
version. Files are only ever appended, so each version is the first ``files_count`` files: a version
costs a line in the manifest, not a copy of the whole list (which grew the manifest quadratically).
The one exception is an erasure (``replace_files``): a rewritten part takes the old one's place, so
every version's prefix still resolves, to the rewritten part, and no version lists a deleted one.
Updates are read-modify-write with an ETag condition and retried on conflict, so two ETL runs at
once cannot lose each other's entries; adding a file already listed changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from shared.adapters import documents
from shared.adapters.storage import BlobStore
from shared.domain import layout
from shared.domain.documents.etl import DatasetManifest, DatasetVersion, ManifestFile
from shared.domain.errors import BlobExistsError, BlobNotFoundError, ConcurrentUpdateError, FraudOpsError

log = logging.getLogger(__name__)

CONTAINER = layout.CURATED
MAX_ATTEMPTS = 20


@dataclass(frozen=True)
class CuratedFile:
    """One committed curated Parquet file (what a writer adds; listed as a ``ManifestFile``)."""

    path: str
    rows: int
    bytes: int
    sha256: str
    source_blob: str
    source_etag: str
    ingested_at: str

    def entry(self, *, replaces: str | None = None) -> ManifestFile:
        """The manifest's entry for this file (``replaces``: the path an erasure rewrote into it)."""
        fields = asdict(self) if replaces is None else {**asdict(self), "replaces": replaces}
        return ManifestFile.model_validate(fields)


def manifest_name(dataset: str) -> str:
    return layout.dataset_manifest(dataset)


def version_of(paths_and_hashes: list[tuple[str, str]]) -> str:
    """Deterministic dataset version: a hash of the sorted (path, sha256) pairs."""
    digest = hashlib.sha256(json.dumps(sorted(paths_and_hashes)).encode()).hexdigest()
    return digest[:16]


def read_manifest(store: BlobStore, dataset: str) -> tuple[DatasetManifest, str | None]:
    """The manifest and its ETag; an empty manifest and ``None`` when there is none yet."""
    try:
        return documents.read(store, CONTAINER, manifest_name(dataset), DatasetManifest)
    except BlobNotFoundError:
        return DatasetManifest(dataset=dataset), None


def _with_files(manifest: DatasetManifest, files: list[ManifestFile]) -> DatasetManifest:
    """``manifest`` listing ``files``, as a new version that counts them all."""
    version = version_of([(f.path, f.sha256) for f in files])
    now = datetime.now(UTC).isoformat()
    counted = DatasetVersion(version=version, created_at=now, files_count=len(files))
    return manifest.model_copy(
        update={"files": files, "version": version, "updated_at": now, "versions": [*manifest.versions, counted]}
    )


def add_files(store: BlobStore, dataset: str, entries: list[CuratedFile]) -> str:
    """Add the ``entries`` not listed yet, in one write, and return the dataset version that includes them all.

    One write for all the parts of a source file, so no version ever holds only some of them.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        manifest, etag = read_manifest(store, dataset)
        listed = {f.path for f in manifest.files}
        new = [e for e in entries if e.path not in listed]
        if not new:
            return str(manifest.version)
        updated = _with_files(manifest, [*manifest.files, *(e.entry() for e in new)])
        version = str(updated.version)
        try:
            if etag is None:
                documents.write(store, CONTAINER, manifest_name(dataset), updated, overwrite=False)
            else:
                documents.write(store, CONTAINER, manifest_name(dataset), updated, if_match=etag)
            log.info("dataset %s is now version %s (%d files)", dataset, version, len(updated.files))
            return version
        except (ConcurrentUpdateError, BlobExistsError):
            log.info("manifest of %s changed under us (attempt %d); retrying", dataset, attempt)
    raise FraudOpsError(f"could not update the manifest of {dataset} after {MAX_ATTEMPTS} attempts")


def replace_files(store: BlobStore, dataset: str, replaced: dict[str, CuratedFile]) -> str:
    """Put each new file in place of the old path it replaces (same position, so every version's prefix still
    resolves), in one write, and return the new dataset version. Used by an erasure: once this is written,
    no version lists an old path, and only then are the old files deleted. Already replaced: no change."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        manifest, etag = read_manifest(store, dataset)
        if not any(f.path in replaced for f in manifest.files):
            return str(manifest.version)
        files = [replaced[f.path].entry(replaces=f.path) if f.path in replaced else f for f in manifest.files]
        updated = _with_files(manifest, files)
        version = str(updated.version)
        try:
            documents.write(store, CONTAINER, manifest_name(dataset), updated, if_match=etag)
            log.info("dataset %s is now version %s (%d files rewritten)", dataset, version, len(replaced))
            return version
        except ConcurrentUpdateError:
            log.info("manifest of %s changed under us (attempt %d); retrying", dataset, attempt)
    raise FraudOpsError(f"could not update the manifest of {dataset} after {MAX_ATTEMPTS} attempts")


def files_of_version(store: BlobStore, dataset: str, version: str | None = None) -> tuple[str, list[str]]:
    """The version (latest when ``None``) and the curated file paths it consists of."""
    manifest, _ = read_manifest(store, dataset)
    if not manifest.files:
        raise BlobNotFoundError(f"dataset {dataset} has no curated data yet; run the ETL first")
    if version is None:
        version = manifest.version
    for v in reversed(manifest.versions):
        if v.version == version:
            return str(version), manifest.files_of(v)
    known = ", ".join(v.version for v in manifest.versions[-5:])
    raise BlobNotFoundError(f"dataset {dataset} has no version {version}; recent versions: {known}")
