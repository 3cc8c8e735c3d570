"""The ETL core: read, validate, deduplicate, write Parquet parts and quarantine rows.

No storage here: ``transform`` takes the upload as an iterator of byte chunks (``service.run_etl``
feeds it the blob as it downloads) and writes local files that the service then commits.
Five things overlap: the download (a read-ahead thread), parsing (a thread one block ahead),
validation and de-duplication (this thread), Parquet encoding (a writer thread), and the upload
of each finished part (the service's ``on_part``). The output is cut into parts of exactly
``PART_ROWS`` rows (the last one shorter), so a part can be committed while the next is still
being read, and the same input always gives byte-identical parts however the stream was cut.
Memory is bounded by the block and part sizes, never by the file size.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shared.domain.contract import DatasetContract
from shared.domain.errors import FileRejectedError
from shared.domain.layout import QUARANTINE_ROWS_COLUMNS
from shared.domain.pseudonym import PATTERN as PSEUDONYM
from shared.domain.pseudonym import Pseudonymiser, pseudonymiser
from shared.etl.arrays import mask
from shared.etl.dedup import SeenHashes, row_hashes
from shared.etl.profile import ColumnProfile
from shared.etl.source import FileLayout, Mode, Source
from shared.etl.streams import Prefetch, file_chunks
from shared.etl.validate import curated_schema, validate

log = logging.getLogger(__name__)

PART_ROWS = 65_536  # one row group per part: about 13.5 MB of Parquet for the creditcard contract


@dataclass(frozen=True)
class Part:
    """One finished Parquet part on local disk, in file order."""

    index: int
    path: Path
    rows: int
    bytes: int
    sha256: str


@dataclass
class TransformResult:
    """Counts and facts about one transformed file."""

    rows_in: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_erased: int = 0  # rows of customers who asked to be erased: dropped, written nowhere
    read_mode: Mode = "typed"
    text_batches: int = 0
    parts: list[Part] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)
    schema: list[dict[str, str]] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    profile: ColumnProfile = field(default_factory=ColumnProfile)

    @property
    def parquet_bytes(self) -> int:
        return sum(p.bytes for p in self.parts)


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
        raise FileRejectedError(f"the label column {label.name} is missing; a training dataset needs it")
    if missing:
        raise FileRejectedError(f"required columns are missing: {', '.join(missing)}")


def transform_file(
    src: Path, contract: DatasetContract, *, out_dir: Path, quarantine_path: Path, part_rows: int | None = None
) -> TransformResult:
    """``transform`` from a local file to parts in ``out_dir`` (the unit tests and local dry runs)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return transform(
        file_chunks(str(src)),
        contract,
        part_dir=out_dir,
        on_part=lambda _: None,
        quarantine_path=quarantine_path,
        spool_dir=out_dir,
        part_rows=part_rows,
    )


def transform(
    chunks: Iterable[bytes],
    contract: DatasetContract,
    *,
    part_dir: Path,
    on_part: Callable[[Part], None],
    quarantine_path: Path,
    spool_dir: Path,
    part_rows: int | None = None,
    reference: dict[str, list[float]] | None = None,
    pseudonymise: Pseudonymiser | None = None,
    erased: frozenset[str] = frozenset(),
) -> TransformResult:
    """Read, validate, deduplicate and write Parquet parts of ``part_rows`` rows into ``part_dir``.

    ``on_part`` is called (on the writer thread) with each part as soon as its file is closed;
    the result lists them all. A file without valid rows still gives one empty part, so every
    processed file has an output. Raise ``FileRejectedError`` for a file that can never succeed.
    ``reference`` (each feature's decile edges in the champion's training data) makes the profile
    count the valid rows in those bins, for the report's distribution plots and PSI. ``pseudonymise``
    (the development key when not given) replaces every column the contract declares personal in every
    row before it is validated, so neither the Parquet parts nor the quarantined rows hold one in clear; a
    line that cannot be split into the file's columns is withheld from the quarantine when the file has one.
    """
    pseudonymise = pseudonymise or pseudonymiser(None)
    size = part_rows or PART_ROWS
    source = Source(chunks, spool_dir=spool_dir)
    layout = source.layout
    check_columns(layout, contract)
    present = [c for c in contract.names if c in layout.columns]
    schema = curated_schema(contract, present)
    result = TransformResult(
        dropped_columns=[c for c in layout.columns if c not in contract.names],
        schema=[{"name": f.name, "type": str(f.type)} for f in schema],
        profile=ColumnProfile(reference),
    )
    seen = SeenHashes()
    pending: list[pa.Table] = []
    pending_rows = 0
    quarantine_path.unlink(missing_ok=True)
    # parsing runs a block ahead on its own thread while this one validates and deduplicates;
    # leaving the block (an error included) stops that thread
    stats = [c.name for c in contract.columns if c.role != "feature"]  # time, label, ids: what readers filter on
    personal = [c for c in contract.personal_names if c in layout.columns]
    customer = contract.customer
    with (
        _PartWriter(part_dir, schema, stats, on_part) as sink,
        quarantine_path.open("w", newline="", encoding="utf-8") as qf,
        Prefetch(source.batches(contract), depth=1, name="etl-parse") as batches,
    ):
        qwriter = csv.writer(qf)
        qwriter.writerow(QUARANTINE_ROWS_COLUMNS)
        unshaped = tuple(p for p in erased if not PSEUDONYM.fullmatch(p))  # none, unless the format changed
        for batch in batches:
            for name in personal:
                if name in batch.columns:
                    clear = batch.columns[name].to_pylist()
                    if name == customer and erased and pseudonymise.rotated:  # erased under an older key
                        erased = erased | _erased_since_rotation(pseudonymise, clear, erased)
                    batch.columns[name] = pa.array(pseudonymise.many(clear), pa.string())
            if batch.mode == "text":
                result.read_mode = "text"
                result.text_batches += 1
            for bad in batch.bad_lines:
                qwriter.writerow([bad.line, bad.reason, _withheld(bad.text) if personal else bad.text])
                result.reasons[_reason_kind(bad.reason)] += 1
            result.rows_in += batch.num_rows + len(batch.bad_lines)
            result.rows_quarantined += len(batch.bad_lines)
            if batch.num_rows == 0:
                continue
            checked = validate(batch, contract)
            for line, reason, raw in zip(checked.bad_lines, checked.bad_reasons, checked.bad_raw, strict=True):
                if erased and _mentions(raw, erased, unshaped):  # an erased customer's refused row: not kept either
                    result.rows_erased += 1
                    continue
                qwriter.writerow([int(line), reason, raw])
                result.reasons[_reason_kind(reason)] += 1
                result.rows_quarantined += 1
            valid = checked.valid
            if erased and customer and customer in valid.column_names:  # erased customers: never written again
                gone = pc.fill_null(pc.is_in(valid.column(customer), value_set=pa.array(sorted(erased))), False)
                result.rows_erased += int(pc.sum(gone).as_py() or 0)
                valid = valid.filter(pc.invert(gone))
            keep = seen.first_seen(row_hashes(valid))
            unique = valid if keep.all() else valid.filter(mask(keep))
            result.rows_duplicate += valid.num_rows - unique.num_rows
            result.rows_valid += unique.num_rows
            result.profile.update(unique, checked.empty_counts)
            pending.append(unique)
            pending_rows += unique.num_rows
            while pending_rows >= size:  # cut exactly: part bytes must not depend on block boundaries
                table = pa.concat_tables(pending)
                sink.write(table.slice(0, size))
                pending, pending_rows = [table.slice(size)], pending_rows - size
        if pending_rows or not sink.count:
            sink.write(pa.concat_tables(pending) if pending else schema.empty_table())
    result.parts = sink.parts
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


class _PartWriter:
    """Parquet parts encoded on a worker thread: encoding and zstd overlap the parsing of the next block.

    At most one part is being encoded while the next is prepared, so memory stays bounded.
    Each part is one row group in its own file, handed to ``on_part`` once closed.
    """

    def __init__(
        self, directory: Path, schema: pa.Schema, statistics: list[str], on_part: Callable[[Part], None]
    ) -> None:
        self._directory, self._schema, self._on_part = directory, schema, on_part
        floats = [f.name for f in schema if pa.types.is_floating(f.type)]
        # min/max only where readers filter (time, label, ids): on 29 high-entropy feature columns
        # statistics cost about a third of the encoding time and prune nothing
        self._options = {
            "compression": "zstd",
            "use_byte_stream_split": floats,
            "use_dictionary": [f.name for f in schema if f.name not in floats],
            "write_statistics": [f.name for f in schema if f.name in statistics],
        }
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-parquet")
        self._pending: Future[None] | None = None
        self.parts: list[Part] = []
        self.count = 0

    def write(self, table: pa.Table) -> None:
        """Queue ``table`` as the next part (waits for the part before it)."""
        self._wait()
        self._pending = self._pool.submit(self._encode, self.count, table)
        self.count += 1

    def _encode(self, index: int, table: pa.Table) -> None:
        path = self._directory / f"part-{index:05d}.parquet"
        with path.open("wb") as target:
            file = _HashingFile(target)
            with pq.ParquetWriter(file, self._schema, **self._options) as writer:
                # contiguous columns: page boundaries, hence the bytes, independent of how rows arrived
                writer.write_table(table.combine_chunks(), row_group_size=max(table.num_rows, 1))
        part = Part(index, path, table.num_rows, file.size, file.hexdigest())
        self.parts.append(part)
        self._on_part(part)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def __enter__(self) -> _PartWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            if exc_type is None:
                self._wait()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _withheld(text: str) -> str:
    """A line that could not be split into the file's columns may hold a customer id anywhere in it: its digest
    stands in for it (enough to find it in the source file), never the text."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
    return f"[withheld: the line could not be split into columns and may hold a customer id; sha256 {digest}]"


def _reason_kind(reason: str) -> str:
    """Group reasons for the report: drop the offending value, keep the rule."""
    return reason.split(" (", 1)[0].split(": ", 1)[0]


def _erased_since_rotation(pseudonymise: Pseudonymiser, clear: list[Any], erased: frozenset[str]) -> frozenset[str]:
    """The current pseudonyms of the ids in ``clear`` that were erased under an older key (after a rotation the
    exclusion list holds the pseudonym the erasure saw)."""
    found = set()
    for value in {v for v in clear if v not in (None, "")}:
        every = pseudonymise.every(str(value))
        if not erased.isdisjoint(every[1:]):
            found.add(every[0])
    return frozenset(found)


def _mentions(raw: str, erased: frozenset[str], unshaped: tuple[str, ...]) -> bool:
    """Whether a refused row's text names an erased customer: its pseudonym-shaped tokens looked up in the set
    (the row's length, not the number of erased customers times it), and any erased id of another shape."""
    return not erased.isdisjoint(PSEUDONYM.findall(raw)) or any(p in raw for p in unshaped)
