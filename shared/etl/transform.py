"""The ETL core on local files: read, validate, deduplicate, write Parquet and quarantine rows.

No storage here: ``service.run_etl`` downloads the blob to a temporary file, calls
``transform_file`` and commits what it wrote. Memory is bounded by the batch and row-group
sizes, never by the file size.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from shared.contract import DatasetContract
from shared.errors import FileRejectedError
from shared.etl.dedup import SeenHashes, row_hashes
from shared.etl.profile import ColumnProfile
from shared.etl.source import FileLayout, Mode, describe_read_error, detect_layout, is_conversion_error, iter_batches
from shared.etl.validate import curated_schema, validate

log = logging.getLogger(__name__)

ROW_GROUP_ROWS = 131_072


@dataclass
class TransformResult:
    """Counts and facts about one transformed file."""

    rows_in: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    read_mode: Mode = "typed"
    dropped_columns: list[str] = field(default_factory=list)
    schema: list[dict[str, str]] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    profile: ColumnProfile = field(default_factory=ColumnProfile)


def check_columns(layout: FileLayout, contract: DatasetContract) -> None:
    """Whole-file column problems, each as one sentence."""
    dupes = sorted({c for c in layout.columns if layout.columns.count(c) > 1})
    if dupes:
        raise FileRejectedError(f"the header repeats the column(s) {', '.join(dupes)}")
    if not set(layout.columns) & set(contract.names):
        raise FileRejectedError(
            f"the file is not a {contract.name} table: none of its columns "
            f"({', '.join(layout.columns[:5])}{'...' if len(layout.columns) > 5 else ''}) is in the contract"
        )
    label = contract.label
    missing = [c for c in contract.required_names(labelled=True) if c not in layout.columns]
    if label is not None and missing == [label.name]:
        raise FileRejectedError(
            f"the label column {label.name} is missing; a training dataset needs it"
        )
    if missing:
        raise FileRejectedError(f"required columns are missing: {', '.join(missing)}")


def transform_file(
    src: Path, contract: DatasetContract, *, parquet_path: Path, quarantine_path: Path,
) -> TransformResult:
    """Transform ``src``; raise ``FileRejectedError`` for a file that can never succeed."""
    layout = detect_layout(src)
    check_columns(layout, contract)
    try:
        return _transform(src, layout, contract, "typed", parquet_path, quarantine_path)
    except pa.ArrowInvalid as exc:
        if not is_conversion_error(exc):
            raise FileRejectedError(describe_read_error(exc)) from None
        log.info("%s has non-numeric cells; re-reading as text to quarantine them row by row", src.name)
    try:
        return _transform(src, layout, contract, "text", parquet_path, quarantine_path)
    except pa.ArrowInvalid as exc:
        raise FileRejectedError(describe_read_error(exc)) from None


def _transform(
    src: Path, layout: FileLayout, contract: DatasetContract, mode: Mode,
    parquet_path: Path, quarantine_path: Path,
) -> TransformResult:
    present = [c for c in contract.names if c in layout.columns]
    schema = curated_schema(contract, present)
    result = TransformResult(
        read_mode=mode,
        dropped_columns=[c for c in layout.columns if c not in contract.names],
        schema=[{"name": f.name, "type": str(f.type)} for f in schema],
    )
    floats = [f.name for f in schema if pa.types.is_floating(f.type)]
    seen = SeenHashes()
    pending: list[pa.Table] = []
    pending_rows = 0
    quarantine_path.unlink(missing_ok=True)
    with pq.ParquetWriter(
        parquet_path, schema, compression="zstd", use_byte_stream_split=floats,
        use_dictionary=[f.name for f in schema if f.name not in floats], write_statistics=True,
    ) as writer, quarantine_path.open("w", newline="", encoding="utf-8") as qf:
        qwriter = csv.writer(qf)
        qwriter.writerow(["line", "reason", "raw"])
        for batch in iter_batches(src, layout, contract, mode):
            for bad in batch.bad_lines:
                qwriter.writerow([bad.line, bad.reason, bad.text])
                result.reasons[bad.reason] += 1
            result.rows_in += batch.num_rows + len(batch.bad_lines)
            result.rows_quarantined += len(batch.bad_lines)
            if batch.num_rows == 0:
                continue
            checked = validate(batch, contract, mode)
            for line, reason, raw in zip(checked.bad_lines, checked.bad_reasons, checked.bad_raw, strict=True):
                qwriter.writerow([int(line), reason, raw])
                result.reasons[_reason_kind(reason)] += 1
            result.rows_quarantined += len(checked.bad_reasons)
            keep = seen.first_seen(row_hashes(checked.valid))
            unique = checked.valid.filter(pa.array(keep))
            result.rows_duplicate += checked.valid.num_rows - unique.num_rows
            result.rows_valid += unique.num_rows
            result.profile.update(unique, checked.empty_counts)
            pending.append(unique)
            pending_rows += unique.num_rows
            if pending_rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS * 2)
                pending, pending_rows = [], 0
        if pending_rows:
            writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS * 2)
    if result.rows_in == 0:
        raise FileRejectedError("the file has a header but no data rows")
    if result.rows_quarantined == 0:
        quarantine_path.unlink(missing_ok=True)
    return result


def _reason_kind(reason: str) -> str:
    """Group reasons for the report: drop the offending value, keep the rule."""
    return reason.split(" (", 1)[0].split(": ", 1)[0]
