"""The ETL core: read, validate, deduplicate, write Parquet and quarantine rows.

No storage here: ``transform`` takes the upload as an iterator of byte chunks (``service.run_etl``
feeds it the blob as it downloads) and writes local files that the service then commits.
Four things overlap: the download (a read-ahead thread), parsing (a thread one block ahead),
validation and de-duplication (this thread), and Parquet encoding (a writer thread). Memory is
bounded by the block and row-group sizes, never by the file size.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from shared.contract import DatasetContract
from shared.errors import FileRejectedError
from shared.etl.arrays import mask
from shared.etl.dedup import SeenHashes, row_hashes
from shared.etl.profile import ColumnProfile
from shared.etl.source import FileLayout, Mode, Source
from shared.etl.streams import Prefetch, file_chunks
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
    text_batches: int = 0
    parquet_sha256: str = ""
    parquet_bytes: int = 0
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


def transform_file(src: Path, contract: DatasetContract, *, parquet_path: Path, quarantine_path: Path,
                   ) -> TransformResult:
    """``transform`` from a local file to a local file (the unit tests and local dry runs)."""
    with parquet_path.open("wb") as out:
        return transform(file_chunks(str(src)), contract, parquet_out=out,
                         quarantine_path=quarantine_path, spool_dir=parquet_path.parent)


def transform(
    chunks: Iterable[bytes], contract: DatasetContract, *, parquet_out: Writable, quarantine_path: Path,
    spool_dir: Path,
) -> TransformResult:
    """Read, validate, deduplicate and write the Parquet to ``parquet_out`` (any writable file).

    Raise ``FileRejectedError`` for a file that can never succeed.
    """
    source = Source(chunks, spool_dir=spool_dir)
    layout = source.layout
    check_columns(layout, contract)
    present = [c for c in contract.names if c in layout.columns]
    schema = curated_schema(contract, present)
    result = TransformResult(
        dropped_columns=[c for c in layout.columns if c not in contract.names],
        schema=[{"name": f.name, "type": str(f.type)} for f in schema],
    )
    seen = SeenHashes()
    pending: list[pa.Table] = []
    pending_rows = 0
    quarantine_path.unlink(missing_ok=True)
    # parsing runs a block ahead on its own thread while this one validates and deduplicates;
    # leaving the block (an error included) stops that thread
    stats = [c.name for c in contract.columns if c.role != "feature"]  # time, label, ids: what readers filter on
    with _ParquetSink(parquet_out, schema, stats) as sink, \
            quarantine_path.open("w", newline="", encoding="utf-8") as qf, \
            Prefetch(source.batches(contract), depth=1, name="etl-parse") as batches:
        qwriter = csv.writer(qf)
        qwriter.writerow(["line", "reason", "raw"])
        for batch in batches:
            if batch.mode == "text":
                result.read_mode = "text"
                result.text_batches += 1
            for bad in batch.bad_lines:
                qwriter.writerow([bad.line, bad.reason, bad.text])
                result.reasons[_reason_kind(bad.reason)] += 1
            result.rows_in += batch.num_rows + len(batch.bad_lines)
            result.rows_quarantined += len(batch.bad_lines)
            if batch.num_rows == 0:
                continue
            checked = validate(batch, contract, batch.mode)
            for line, reason, raw in zip(checked.bad_lines, checked.bad_reasons, checked.bad_raw, strict=True):
                qwriter.writerow([int(line), reason, raw])
                result.reasons[_reason_kind(reason)] += 1
            result.rows_quarantined += len(checked.bad_reasons)
            keep = seen.first_seen(row_hashes(checked.valid))
            unique = checked.valid if keep.all() else checked.valid.filter(mask(keep))
            result.rows_duplicate += checked.valid.num_rows - unique.num_rows
            result.rows_valid += unique.num_rows
            result.profile.update(unique, checked.empty_counts)
            pending.append(unique)
            pending_rows += unique.num_rows
            if pending_rows >= ROW_GROUP_ROWS:
                sink.write(pa.concat_tables(pending))
                pending, pending_rows = [], 0
        if pending_rows:
            sink.write(pa.concat_tables(pending))
    result.parquet_sha256, result.parquet_bytes = sink.sha256, sink.size
    if result.rows_in == 0:
        raise FileRejectedError("the file has a header but no data rows")
    if result.rows_quarantined == 0:
        quarantine_path.unlink(missing_ok=True)
    return result


class Writable(Protocol):
    """What the Parquet output needs from its target."""

    def write(self, data: bytes, /) -> int: ...
    def tell(self) -> int: ...
    def flush(self) -> None: ...


class _HashingFile:
    """A write-only file that hashes and counts what passes through to ``target``; closing leaves it open."""

    def __init__(self, target: Writable) -> None:
        self._target = target
        self._sha256 = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self._sha256.update(data)
        self.size += len(memoryview(data).cast("B"))
        return self._target.write(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._target.flush()

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True

    def hexdigest(self) -> str:
        return self._sha256.hexdigest()


class _ParquetSink:
    """A ``ParquetWriter`` on a worker thread: encoding and zstd overlap the parsing of the next block.

    At most one table is being written while the next is prepared, so memory stays bounded.
    """

    def __init__(self, target: Writable, schema: pa.Schema, statistics: list[str]) -> None:
        floats = [f.name for f in schema if pa.types.is_floating(f.type)]
        self._file = _HashingFile(target)
        # min/max only where readers filter (time, label, ids): on 29 high-entropy feature columns
        # statistics cost about a third of the encoding time and prune nothing
        self._writer = pq.ParquetWriter(
            self._file, schema, compression="zstd", use_byte_stream_split=floats,
            use_dictionary=[f.name for f in schema if f.name not in floats],
            write_statistics=[f.name for f in schema if f.name in statistics],
        )
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-parquet")
        self._pending: Future[None] | None = None
        self.sha256 = ""
        self.size = 0

    def write(self, table: pa.Table) -> None:
        self._wait()
        self._pending = self._pool.submit(self._writer.write_table, table, row_group_size=ROW_GROUP_ROWS * 2)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def __enter__(self) -> _ParquetSink:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            if exc_type is None:
                self._wait()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._writer.close()
            self._file.close()
        self.sha256, self.size = self._file.hexdigest(), self._file.size


def _reason_kind(reason: str) -> str:
    """Group reasons for the report: drop the offending value, keep the rule."""
    return reason.split(" (", 1)[0].split(": ", 1)[0]
