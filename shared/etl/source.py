"""Reading an input file (CSV, CSV.gz or Parquet) as Arrow record batches with line numbers.

Two CSV modes. ``typed`` parses the contract's numeric columns straight to float64 (fast;
the common case). ``text`` reads them as strings so that a non-numeric cell becomes a row
problem instead of a file problem; the ETL switches to it when a typed read meets a value
that does not convert. Rows with the wrong number of fields never reach a batch: pyarrow's
invalid-row handler hands them to us with their physical line number.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from shared.contract import DatasetContract
from shared.errors import FileRejectedError

Mode = Literal["typed", "text"]
BLOCK_BYTES = 4 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"


@dataclass
class BadLine:
    """A line that is not a row of the table (wrong field count), kept with its text."""

    line: int
    text: str
    reason: str


@dataclass
class Batch:
    """Columns of one batch, the physical line number of each row, and lines skipped so far."""

    columns: dict[str, pa.Array]
    lines: np.ndarray
    bad_lines: list[BadLine] = field(default_factory=list)

    @property
    def num_rows(self) -> int:
        return len(self.lines)


@dataclass(frozen=True)
class FileLayout:
    """What the first bytes of a file tell: its format and its columns."""

    kind: Literal["csv", "csv.gz", "parquet"]
    columns: list[str]


def detect_layout(path: Path) -> FileLayout:
    """Format and header of a file, or ``FileRejectedError`` with the reason."""
    with path.open("rb") as f:
        head = f.read(4)
    if not head:
        raise FileRejectedError("the file is empty (0 bytes)")
    if head == PARQUET_MAGIC:
        import pyarrow.parquet as pq

        try:
            return FileLayout("parquet", pq.read_schema(path).names)
        except (pa.ArrowInvalid, OSError) as exc:
            raise FileRejectedError(f"the file looks like Parquet but cannot be read ({exc})") from None
    kind: Literal["csv", "csv.gz"] = "csv.gz" if head[:2] == GZIP_MAGIC else "csv"
    raw = _first_line(path, gzipped=kind == "csv.gz")
    if not raw.strip():
        raise FileRejectedError("the file has no header line (its first line is blank)")
    if b"\x00" in raw:
        raise FileRejectedError("the file is not a text table (it contains NUL bytes); expected CSV")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileRejectedError(
            f"the header is not UTF-8 text (undecodable byte at position {exc.start}); save the file as UTF-8"
        ) from None
    names = next(csv.reader([text.rstrip("\r\n")]), [])
    names = [n.strip() for n in names]
    if len(names) < 2:
        raise FileRejectedError("the file is not a table: its first line has fewer than two comma-separated fields")
    return FileLayout(kind, names)


def _first_line(path: Path, *, gzipped: bool) -> bytes:
    try:
        if gzipped:
            with gzip.open(path, "rb") as g:
                return g.readline(1 << 20)
        with path.open("rb") as f:
            return f.readline(1 << 20)
    except (OSError, EOFError) as exc:
        raise FileRejectedError(f"the file cannot be decompressed ({exc})") from None


def line_numbers(start: int, count: int, skipped: np.ndarray, first_line: int) -> np.ndarray:
    """Physical line numbers of parsed rows ``start..start+count``, given the sorted skipped lines.

    The m-th parsed row sits at line ``m + first_line + #{j : skipped[j] - j - first_line <= m}``.
    """
    m = np.arange(start, start + count, dtype=np.int64)
    if skipped.size == 0:
        return m + first_line
    gaps = skipped - np.arange(skipped.size) - first_line
    return m + first_line + np.searchsorted(gaps, m, side="right")


def iter_batches(path: Path, layout: FileLayout, contract: DatasetContract, mode: Mode) -> Iterator[Batch]:
    """Batches of the contract's columns present in the file; unknown columns are not read."""
    wanted = [c for c in contract.names if c in layout.columns]
    if layout.kind == "parquet":
        yield from _parquet_batches(path, wanted, contract)
        return
    bad: list[BadLine] = []
    expected = len(layout.columns)

    def on_invalid(row: pacsv.InvalidRow) -> str:
        n = row.number if row.number is not None else -1
        bad.append(BadLine(n, row.text, f"wrong field count: {row.actual_columns} fields, expected {expected}"))
        return "skip"

    types: dict[str, pa.DataType] = {}
    for name in wanted:
        col = contract.column(name)
        types[name] = pa.string() if (mode == "text" or col.dtype == "string") else pa.float64()
    stream: pa.NativeFile = pa.OSFile(str(path))
    if layout.kind == "csv.gz":
        stream = pa.CompressedInputStream(stream, "gzip")
    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(use_threads=False, block_size=BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            include_columns=wanted, column_types=types, null_values=[""], strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    parsed = 0
    reported = 0
    try:
        for rb in reader:
            skipped = np.array(sorted(b.line for b in bad if b.line >= 0), dtype=np.int64)
            lines = line_numbers(parsed, rb.num_rows, skipped, first_line=2)
            parsed += rb.num_rows
            new_bad, reported = bad[reported:], len(bad)
            yield Batch({n: rb.column(n) for n in wanted}, lines, new_bad)
    finally:
        stream.close()
    if len(bad) > reported:
        yield Batch({n: pa.array([], type=types[n]) for n in wanted}, np.array([], dtype=np.int64), bad[reported:])


def _parquet_batches(path: Path, wanted: list[str], contract: DatasetContract) -> Iterator[Batch]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    row = 0
    for rb in pf.iter_batches(batch_size=65_536, columns=wanted):
        cols = {}
        for name in wanted:
            arr = rb.column(name)
            target = pa.string() if contract.column(name).dtype == "string" else pa.float64()
            try:
                cols[name] = arr.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise FileRejectedError(
                    f"column {name} has type {arr.type}, which cannot be read as {target}"
                ) from None
        yield Batch(cols, np.arange(row + 1, row + 1 + rb.num_rows, dtype=np.int64))
        row += rb.num_rows


def is_conversion_error(exc: Exception) -> bool:
    """True when a typed CSV read failed only because some value is not a number."""
    return isinstance(exc, pa.ArrowInvalid) and "conversion error" in str(exc)


def describe_read_error(exc: Exception) -> str:
    """A sentence for a person about a CSV that cannot be read even as text."""
    text = str(exc)
    if "UTF8" in text or "utf8" in text.lower():
        return "the file contains bytes that are not UTF-8 text; save it as UTF-8"
    if "straddling" in text or "block" in text:
        return f"a row is longer than {BLOCK_BYTES // (1024 * 1024)} MB; the file is not a transaction table"
    return f"the file cannot be parsed as CSV ({text.splitlines()[0] if text else type(exc).__name__})"
