"""The ETL service: what the blob trigger and ``fraudops etl`` run for a blob in ``raw/``.

Download in chunks to a temporary file (hashing as it goes), transform locally, then commit:
Parquet and quarantine rows create-only, the report, and last the dataset manifest, which is
what makes a file visible to training. A blob processed twice yields the same names and no
new manifest entry. Data problems return a ``rejected`` summary; storage errors raise so the
host retries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from shared.contract import get_contract
from shared.errors import BlobExistsError, FileRejectedError
from shared.etl import manifest
from shared.etl.profile import render_html
from shared.etl.transform import transform_file
from shared.settings import Settings
from shared.storage import BlobStore

log = logging.getLogger(__name__)

RAW = "raw"
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
            log.info("%s/%s already exists (a redelivery); keeping it", container, name)


def run_etl(store: BlobStore, settings: Settings, *, name: str) -> dict[str, Any]:
    """Process ``raw/<name>``; return the summary (also written as the report)."""
    started = time.perf_counter()
    contract = get_contract(settings.dataset_name)
    info = store.info(RAW, name)
    stem = _stem(name)
    with tempfile.TemporaryDirectory(prefix="fraudops-etl-") as tmp:
        src = Path(tmp) / "input"
        digest = hashlib.sha256()
        with src.open("wb") as f:
            for chunk in store.download_chunks(RAW, name):
                digest.update(chunk)
                f.write(chunk)
        content_hash = digest.hexdigest()
        tag = f"{stem}-{content_hash[:16]}"
        report_name = f"etl/{contract.name}/{tag}"
        summary: dict[str, Any] = {
            "source": f"{RAW}/{name}", "source_etag": info.etag, "sha256": content_hash,
            "input_bytes": info.size, "dataset": contract.name,
            "report": f"reports/{report_name}.json",
        }
        parquet_path, q_path = Path(tmp) / "out.parquet", Path(tmp) / "quarantine.csv"
        try:
            result = transform_file(src, contract, parquet_path=parquet_path, quarantine_path=q_path)
        except FileRejectedError as exc:
            target = f"{contract.name}/files/{name}"
            _put_create_only(store, "quarantine", target, src, "application/octet-stream")
            store.delete(RAW, name)
            summary.update({
                "status": "rejected", "reason": exc.reason, "rows_in": 0, "rows_valid": 0,
                "rows_quarantined": 0, "rows_duplicate": 0, "parquet_bytes": 0, "outputs": [],
                "quarantine": f"quarantine/{target}", "dataset_version": None,
                "etl_seconds": round(time.perf_counter() - started, 3),
            })
            log.warning("rejected raw/%s: %s", name, exc.reason)
            _write_report(store, report_name, summary)
            return summary

        ingest_date = info.last_modified.astimezone(UTC).date().isoformat()
        curated = f"{contract.name}/ingest_date={ingest_date}/{tag}.parquet"
        _put_create_only(store, "curated", curated, parquet_path, "application/vnd.apache.parquet")
        quarantine = None
        if q_path.exists():
            quarantine = f"{contract.name}/rows/{tag}.csv"
            _put_create_only(store, "quarantine", quarantine, q_path, "text/csv")
        parquet_bytes = parquet_path.stat().st_size
        version = manifest.add_file(store, contract.name, manifest.CuratedFile(
            path=curated, rows=result.rows_valid, bytes=parquet_bytes,
            sha256=_sha256(parquet_path), source_blob=f"{RAW}/{name}", source_etag=info.etag,
            ingested_at=datetime.now(UTC).isoformat(),
        ))
    summary.update({
        "status": "processed", "reason": None, "rows_in": result.rows_in,
        "rows_valid": result.rows_valid, "rows_quarantined": result.rows_quarantined,
        "rows_duplicate": result.rows_duplicate, "parquet_bytes": parquet_bytes,
        "outputs": [f"curated/{curated}"], "quarantine": f"quarantine/{quarantine}" if quarantine else None,
        "dataset_version": version, "read_mode": result.read_mode,
        "dropped_columns": result.dropped_columns, "schema": result.schema,
        "quarantine_reasons": dict(result.reasons.most_common()),
        "columns": result.profile.as_dict(),
        "etl_seconds": round(time.perf_counter() - started, 3),
    })
    _write_report(store, report_name, summary)
    log.info(
        "processed raw/%s: %d in, %d valid, %d quarantined, %d duplicate, version %s",
        name, result.rows_in, result.rows_valid, result.rows_quarantined, result.rows_duplicate, version,
    )
    return summary


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_report(store: BlobStore, report_name: str, summary: dict[str, Any]) -> None:
    store.put_bytes("reports", f"{report_name}.json", json.dumps(summary, indent=1, default=str).encode(),
                    content_type="application/json")
    store.put_bytes("reports", f"{report_name}.html", render_html(summary).encode(),
                    content_type="text/html; charset=utf-8")
