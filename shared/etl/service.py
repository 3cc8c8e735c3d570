"""The ETL service: what the blob trigger and ``fraudops etl`` run for a blob in ``raw/``.

The blob is streamed in chunks (read ahead in a thread and hashed on the way) straight into
the transform, which writes Parquet parts and the quarantined rows to local files. Each part
is uploaded create-only under its content-addressed name as soon as it is closed, while the
rest of the file is still being read (``parts``). Then the commit: the quarantined rows, the
dataset manifest (one conditional write listing every part: what makes them visible to
training), then the report. A rejected file is streamed unchanged to ``quarantine/`` and the
parts it had produced are removed. A blob processed twice yields the same names and no new
manifest entry. Data problems return a ``rejected`` summary; storage errors raise so the host
retries, and the retry finds the parts already uploaded.

The service takes the ETL's config (``EtlConfig``) and, as keyword arguments, what it talks to: the
store, and the model store whose champion each file's profile is compared with.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.adapters.erasures import erased
from shared.adapters.storage import BlobInfo, BlobStore
from shared.domain import layout
from shared.domain.config import EtlConfig
from shared.domain.contracts import get_contract
from shared.domain.errors import BlobExistsError, ConcurrentUpdateError, FileRejectedError, FraudOpsError
from shared.domain.progress import report
from shared.domain.pseudonym import Pseudonymiser, pseudonymiser
from shared.domain.telemetry import instruments, span
from shared.etl import manifest
from shared.etl.outcome import EtlOutcome
from shared.etl.parts import PartUploader
from shared.etl.reports import write_report
from shared.etl.streams import ReadAhead
from shared.etl.transform import transform

if TYPE_CHECKING:
    from shared.adapters.model_store import ModelStore
    from shared.etl.transform import Part

__all__ = ["EtlOutcome", "run_etl"]  # EtlOutcome lives in shared.etl.outcome; imported from here too

log = logging.getLogger(__name__)

RAW = layout.RAW
SUFFIXES = (".csv.gz", ".csv", ".parquet", ".gz", ".txt")


def _stem(name: str) -> str:
    base = PurePosixPath(name).name
    for suffix in SUFFIXES:
        if base.lower().endswith(suffix):
            return base[: -len(suffix)] or "file"
    return base


def _put_create_only(store: BlobStore, container: str, name: str, path: Path, content_type: str) -> None:
    with path.open("rb") as f:
        try:
            store.upload_stream(container, name, f, overwrite=False, content_type=content_type)
        except BlobExistsError:
            log.info("%s already exists (a redelivery); keeping it", layout.display(container, name))


def _pseudonymiser(config: EtlConfig) -> Pseudonymiser:
    key, previous = config.customer_pseudonym_key, config.customer_pseudonym_previous_keys
    return pseudonymiser(key.get_secret_value() if key else None, previous.get_secret_value() if previous else None)


def run_etl(store: BlobStore, config: EtlConfig, *, name: str, models: ModelStore | None = None) -> EtlOutcome:
    """Process ``raw/<name>``; return the summary (also written as the report).

    ``models``: where the champion is (by default the model store of ``config.model_name`` in ``store``).
    """
    if models is None:
        from shared.adapters.model_store import ModelStore

        models = ModelStore(store, config.model_name)
    with span("etl.file", blob=layout.display(RAW, name)) as file_span:
        outcome = _run_etl(store, config, models, name=name)
        file_span.set_attribute("status", outcome.status)
    m = instruments()
    m.etl_files.add(1, {"status": outcome.status, "dataset": outcome.dataset})
    for kind in ("in", "valid", "quarantined", "duplicate"):
        count = getattr(outcome, f"rows_{kind}")
        if count:
            m.etl_rows.add(count, {"outcome": kind, "dataset": outcome.dataset})
    return outcome


def _submitted(uploader: PartUploader, part: Part) -> None:
    """Hand a finished part to the uploader and report it (the CLI's progress line: parts of unknown total)."""
    uploader.submit(part)
    report("etl parts", uploader.submitted, None)


def _run_etl(store: BlobStore, config: EtlConfig, models: ModelStore, *, name: str) -> EtlOutcome:
    started = time.perf_counter()
    contract = get_contract(config.dataset_name)
    info = store.info(RAW, name)
    stem = _stem(name)
    ingest_date = info.last_modified.astimezone(UTC).date().isoformat()
    prefix = layout.curated_partition(contract.name, ingest_date)
    with (
        tempfile.TemporaryDirectory(prefix="fraudops-etl-") as tmp,
        ReadAhead(store.download_chunks(RAW, name, etag=info.etag)) as chunks,
        PartUploader(store, prefix=prefix, stem=stem) as uploader,
    ):
        q_path = Path(tmp) / "quarantine.csv"
        champion, reference = _champion_reference(models)
        try:
            result = transform(
                chunks,
                contract,
                part_dir=Path(tmp),
                on_part=lambda part: _submitted(uploader, part),
                quarantine_path=q_path,
                spool_dir=Path(tmp),
                reference={
                    k: v["edges"] for k, v in reference.items() if "edges" in v
                },  # numbers: categories have none
                pseudonymise=_pseudonymiser(config),
                erased=erased(store),
            )
        except FileRejectedError as exc:
            chunks.close()
            uploader.discard()
            return _reject(store, contract.name, name, info, exc.reason, started)
        transformed = time.perf_counter()
        content_hash = chunks.hexdigest()
        tag = f"{stem}-{content_hash[:16]}"
        quarantine = None
        if q_path.exists():
            quarantine = layout.quarantine_rows(contract.name, tag)
            _put_create_only(store, layout.QUARANTINE, quarantine, q_path, "text/csv")
        parts = uploader.finish()
    ingested_at = datetime.now(UTC).isoformat()
    version = manifest.add_files(
        store,
        contract.name,
        [
            manifest.CuratedFile(
                path=p.name,
                rows=p.part.rows,
                bytes=p.part.bytes,
                sha256=p.part.sha256,
                source_blob=layout.display(RAW, name),
                source_etag=info.etag,
                ingested_at=ingested_at,
            )
            for p in parts
        ],
    )
    summary = EtlOutcome(
        status="processed",
        reason=None,
        source=layout.display(RAW, name),
        source_etag=info.etag,
        sha256=content_hash,
        dataset=contract.name,
        input_bytes=info.size,
        rows_in=result.rows_in,
        rows_valid=result.rows_valid,
        rows_quarantined=result.rows_quarantined,
        rows_duplicate=result.rows_duplicate,
        rows_erased=result.rows_erased,
        parquet_bytes=result.parquet_bytes,
        outputs=[layout.display(layout.CURATED, p.name) for p in parts],
        parts=len(parts),
        quarantine=layout.display(layout.QUARANTINE, quarantine) if quarantine else None,
        report=layout.display(layout.REPORTS, layout.etl_report(contract.name, tag)),
        dataset_version=version,
        read_mode=result.read_mode,
        text_batches=result.text_batches,
        dropped_columns=result.dropped_columns,
        schema=result.schema,
        quarantine_reasons=dict(result.reasons.most_common()),
        columns=result.profile.as_dict(),
        fraud_rate=_fraud_rate(result.profile.as_dict(), contract.label.name if contract.label else None),
        reference_drift=_reference_drift(champion, reference, result.profile.binned, result.profile.empty),
        timing={
            "read_validate_write_seconds": round(transformed - started, 3),
            "commit_seconds": round(time.perf_counter() - transformed, 3),
        },
        etl_seconds=round(time.perf_counter() - started, 3),
    )
    write_report(store, contract.name, tag, summary)
    log.info(
        "processed %s: %d in, %d valid, %d quarantined, %d duplicate, %d parts, version %s",
        layout.display(RAW, name),
        result.rows_in,
        result.rows_valid,
        result.rows_quarantined,
        result.rows_duplicate,
        len(parts),
        version,
    )
    return summary


def _champion_reference(models: ModelStore) -> tuple[str | None, dict[str, Any]]:
    """The champion's version and its training profile per feature (empty when there is none or it is unreadable:
    the report then has no comparison, and the ETL goes on)."""
    try:
        pointer = models.pointer()
        if pointer is None:
            return None, {}
        found = models.manifest(pointer.version, expected_sha256=pointer.manifest_sha256)
        profile = found.training_profile
    except FraudOpsError as exc:
        log.warning("the champion's training profile cannot be read (%s); the report compares nothing", exc.reason)
        return None, {}
    return pointer.version, dict((profile or {}).get("features", {}))


def _fraud_rate(columns: dict[str, Any], label: str | None) -> float | None:
    stats = columns.get(label) if label else None
    return round(float(stats["mean"]), 6) if stats and stats.get("mean") is not None else None


def _reference_drift(
    champion: str | None, reference: dict[str, Any], binned: dict[str, Any], empty: Mapping[str, int]
) -> dict[str, Any]:
    from shared.domain.drift import psi

    features = {}
    for name, counts in binned.items():
        if reference[name].get("missing_bin"):  # the profile's last bin holds the missing values
            counts = np.append(counts, empty.get(name, 0))
        total = int(counts.sum())
        if not total:
            continue
        actual = counts / total
        features[name] = {
            "psi": round(psi(reference[name]["shares"], actual), 5),
            "expected": [round(float(v), 5) for v in reference[name]["shares"]],
            "actual": [round(float(v), 5) for v in actual],
        }
    return {"champion": champion, "features": features} if features else {}


def _reject(
    store: BlobStore,
    dataset: str,
    name: str,
    info: BlobInfo,
    reason: str,
    started: float,
) -> EtlOutcome:
    """Move the file unchanged to ``quarantine/<dataset>/files/`` (streamed, hashed on the way); report why.

    Only the version that was judged is moved: the copy is read pinned to its ETag and the raw blob is
    deleted only if it is still that version, so a corrected file landing under the same name meanwhile
    is left for its own trigger. Each rejected version is kept under a name of its own (its upload time
    and ETag), so a second bad file with the same name does not replace the first.
    """
    digest = hashlib.sha256()

    def hashed(container: str, blob: str, etag: str | None = None) -> Iterator[bytes]:
        for chunk in store.download_chunks(container, blob, etag=etag):
            digest.update(chunk)
            yield chunk

    version = (
        f"{info.last_modified.astimezone(UTC):%Y%m%dT%H%M%S}Z-{hashlib.sha256(info.etag.encode()).hexdigest()[:12]}"
    )
    target = layout.quarantine_file(dataset, version, name)
    try:
        store.upload_stream(
            layout.QUARANTINE,
            target,
            hashed(RAW, name, info.etag),
            overwrite=False,
            content_type="application/octet-stream",
            length=info.size,
        )
    except BlobExistsError:
        log.info("%s already exists (a redelivery); keeping it", layout.display(layout.QUARANTINE, target))
        digest = hashlib.sha256()
        for _ in hashed(layout.QUARANTINE, target):
            pass
    except ConcurrentUpdateError:  # replaced before it was copied: the judged version no longer exists
        log.warning(
            "%s was replaced before it could be quarantined; the new version has its own trigger",
            layout.display(RAW, name),
        )
        store.delete(layout.QUARANTINE, target)  # a partial copy of the judged version is no copy
        reason = f"{reason} (the file was replaced before it could be quarantined; not kept)"
        target = ""
    try:
        store.delete(RAW, name, if_match=info.etag)
    except ConcurrentUpdateError:
        log.warning(
            "%s was replaced while it was rejected; the new version is left for its own trigger",
            layout.display(RAW, name),
        )
    content_hash = digest.hexdigest()
    tag = f"{_stem(name)}-{content_hash[:16]}"
    summary = EtlOutcome(
        status="rejected",
        reason=reason,
        source=layout.display(RAW, name),
        source_etag=info.etag,
        sha256=content_hash,
        dataset=dataset,
        input_bytes=info.size,
        quarantine=layout.display(layout.QUARANTINE, target) if target else None,
        report=layout.display(layout.REPORTS, layout.etl_report(dataset, tag)),
        etl_seconds=round(time.perf_counter() - started, 3),
    )
    log.warning("rejected %s: %s", layout.display(RAW, name), reason)
    write_report(store, dataset, tag, summary)
    return summary
