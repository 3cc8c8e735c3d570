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
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from shared.adapters.erasures import erased
from shared.adapters.storage import BlobInfo, BlobStore
from shared.domain.contract import get_contract
from shared.domain.errors import BlobExistsError, ConcurrentUpdateError, FileRejectedError, FraudOpsError
from shared.domain.pseudonym import for_settings
from shared.domain.results import as_dict
from shared.domain.settings import Settings
from shared.domain.telemetry import instruments, span
from shared.etl import manifest
from shared.etl.parts import PartUploader
from shared.etl.profile import render_html
from shared.etl.streams import ReadAhead
from shared.etl.transform import transform

log = logging.getLogger(__name__)

RAW = "raw"
SUFFIXES = (".csv.gz", ".csv", ".parquet", ".gz", ".txt")


def _stem(name: str) -> str:
    base = PurePosixPath(name).name
    for suffix in SUFFIXES:
        if base.lower().endswith(suffix):
            return base[: -len(suffix)] or "file"
    return base


@dataclass(frozen=True)
class EtlOutcome:
    """What the ETL did with one landed file (also its JSON report, through ``as_dict``)."""

    status: Literal["processed", "rejected"]
    reason: str | None
    source: str
    source_etag: str
    sha256: str
    dataset: str
    input_bytes: int
    rows_in: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_erased: int = 0
    parquet_bytes: int = 0
    outputs: list[str] = field(default_factory=list)
    parts: int = 0
    quarantine: str | None = None
    report: str = ""
    dataset_version: str | None = None
    read_mode: str | None = None
    text_batches: int = 0
    dropped_columns: list[str] = field(default_factory=list)
    schema: list[dict[str, str]] = field(default_factory=list)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    columns: dict[str, Any] = field(default_factory=dict)
    fraud_rate: float | None = None  # share of the valid rows labelled fraud (None: the file has no label)
    # each feature's valid rows in the champion's training deciles, with the PSI the drift check computes
    reference_drift: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    etl_seconds: float = 0.0

    @property
    def rejected(self) -> bool:
        return self.status == "rejected"


def _put_create_only(store: BlobStore, container: str, name: str, path: Path, content_type: str) -> None:
    with path.open("rb") as f:
        try:
            store.upload_stream(container, name, f, overwrite=False, content_type=content_type)
        except BlobExistsError:
            log.info("%s/%s already exists (a redelivery); keeping it", container, name)


def run_etl(store: BlobStore, settings: Settings, *, name: str) -> EtlOutcome:
    """Process ``raw/<name>``; return the summary (also written as the report)."""
    with span("etl.file", blob=f"{RAW}/{name}") as file_span:
        outcome = _run_etl(store, settings, name=name)
        file_span.set_attribute("status", outcome.status)
    m = instruments()
    m.etl_files.add(1, {"status": outcome.status, "dataset": outcome.dataset})
    for kind in ("in", "valid", "quarantined", "duplicate"):
        count = getattr(outcome, f"rows_{kind}")
        if count:
            m.etl_rows.add(count, {"outcome": kind, "dataset": outcome.dataset})
    return outcome


def _run_etl(store: BlobStore, settings: Settings, *, name: str) -> EtlOutcome:
    started = time.perf_counter()
    contract = get_contract(settings.dataset_name)
    info = store.info(RAW, name)
    stem = _stem(name)
    ingest_date = info.last_modified.astimezone(UTC).date().isoformat()
    prefix = f"{contract.name}/ingest_date={ingest_date}"
    with (
        tempfile.TemporaryDirectory(prefix="fraudops-etl-") as tmp,
        ReadAhead(store.download_chunks(RAW, name, etag=info.etag)) as chunks,
        PartUploader(store, prefix=prefix, stem=stem) as uploader,
    ):
        q_path = Path(tmp) / "quarantine.csv"
        champion, reference = _champion_reference(store, settings)
        try:
            result = transform(
                chunks,
                contract,
                part_dir=Path(tmp),
                on_part=uploader.submit,
                quarantine_path=q_path,
                spool_dir=Path(tmp),
                reference={k: v["edges"] for k, v in reference.items()},
                pseudonymise=for_settings(settings),
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
            quarantine = f"{contract.name}/rows/{tag}.csv"
            _put_create_only(store, "quarantine", quarantine, q_path, "text/csv")
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
                source_blob=f"{RAW}/{name}",
                source_etag=info.etag,
                ingested_at=ingested_at,
            )
            for p in parts
        ],
    )
    summary = EtlOutcome(
        status="processed",
        reason=None,
        source=f"{RAW}/{name}",
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
        outputs=[f"curated/{p.name}" for p in parts],
        parts=len(parts),
        quarantine=f"quarantine/{quarantine}" if quarantine else None,
        report=f"reports/etl/{contract.name}/{tag}.json",
        dataset_version=version,
        read_mode=result.read_mode,
        text_batches=result.text_batches,
        dropped_columns=result.dropped_columns,
        schema=result.schema,
        quarantine_reasons=dict(result.reasons.most_common()),
        columns=result.profile.as_dict(),
        fraud_rate=_fraud_rate(result.profile.as_dict(), contract.label.name if contract.label else None),
        reference_drift=_reference_drift(champion, reference, result.profile.binned),
        timing={
            "read_validate_write_seconds": round(transformed - started, 3),
            "commit_seconds": round(time.perf_counter() - transformed, 3),
        },
        etl_seconds=round(time.perf_counter() - started, 3),
    )
    _write_report(store, f"etl/{contract.name}/{tag}", summary)
    log.info(
        "processed raw/%s: %d in, %d valid, %d quarantined, %d duplicate, %d parts, version %s",
        name,
        result.rows_in,
        result.rows_valid,
        result.rows_quarantined,
        result.rows_duplicate,
        len(parts),
        version,
    )
    return summary


def _champion_reference(store: BlobStore, settings: Settings) -> tuple[str | None, dict[str, Any]]:
    """The champion's version and its training profile per feature (empty when there is none or it is unreadable:
    the report then has no comparison, and the ETL goes on)."""
    from shared.adapters.model_store import ModelStore

    models = ModelStore(store, settings.model_name)
    try:
        pointer = models.pointer()
        if pointer is None:
            return None, {}
        profile = models.manifest(pointer.version, expected_sha256=pointer.manifest_sha256).get("training_profile")
    except FraudOpsError as exc:
        log.warning("the champion's training profile cannot be read (%s); the report compares nothing", exc.reason)
        return None, {}
    return pointer.version, dict((profile or {}).get("features", {}))


def _fraud_rate(columns: dict[str, Any], label: str | None) -> float | None:
    stats = columns.get(label) if label else None
    return round(float(stats["mean"]), 6) if stats and stats.get("mean") is not None else None


def _reference_drift(champion: str | None, reference: dict[str, Any], binned: dict[str, Any]) -> dict[str, Any]:
    from shared.domain.drift import psi

    features = {}
    for name, counts in binned.items():
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
    target = f"{dataset}/files/{version}/{name}"
    try:
        store.upload_stream(
            "quarantine",
            target,
            hashed(RAW, name, info.etag),
            overwrite=False,
            content_type="application/octet-stream",
            length=info.size,
        )
    except BlobExistsError:
        log.info("quarantine/%s already exists (a redelivery); keeping it", target)
        digest = hashlib.sha256()
        for _ in hashed("quarantine", target):
            pass
    except ConcurrentUpdateError:  # replaced before it was copied: the judged version no longer exists
        log.warning("raw/%s was replaced before it could be quarantined; the new version has its own trigger", name)
        store.delete("quarantine", target)  # a partial copy of the judged version is no copy
        reason = f"{reason} (the file was replaced before it could be quarantined; not kept)"
        target = ""
    try:
        store.delete(RAW, name, if_match=info.etag)
    except ConcurrentUpdateError:
        log.warning("raw/%s was replaced while it was rejected; the new version is left for its own trigger", name)
    content_hash = digest.hexdigest()
    report_name = f"etl/{dataset}/{_stem(name)}-{content_hash[:16]}"
    summary = EtlOutcome(
        status="rejected",
        reason=reason,
        source=f"{RAW}/{name}",
        source_etag=info.etag,
        sha256=content_hash,
        dataset=dataset,
        input_bytes=info.size,
        quarantine=f"quarantine/{target}" if target else None,
        report=f"reports/{report_name}.json",
        etl_seconds=round(time.perf_counter() - started, 3),
    )
    log.warning("rejected raw/%s: %s", name, reason)
    _write_report(store, report_name, summary)
    return summary


def _write_report(store: BlobStore, report_name: str, outcome: EtlOutcome) -> None:
    summary = as_dict(outcome)
    store.put_bytes(
        "reports",
        f"{report_name}.json",
        json.dumps(summary, indent=1, default=str).encode(),
        content_type="application/json",
    )
    store.put_bytes(
        "reports", f"{report_name}.html", render_html(summary).encode(), content_type="text/html; charset=utf-8"
    )
