"""The copies that hold a customer's clear id: the landing zone (``raw/``) and whole files the ETL refused
(``quarantine/<dataset>/files/``), both kept as the bank sent them.

Everything else the system stores carries the pseudonym; these two cannot, since they are the bank's own
bytes. So they are searched by what only a request carries (the clear id as given and in its canonical form,
and the customer's transaction ids), in every format the ETL accepts, told apart by content as the ETL does:
CSV, gzip-compressed CSV, Parquet. Reads are streamed (a CSV in download chunks, gunzipped on the way; a
Parquet file by ranges, one row group at a time), so a landed file of several gigabytes is searched in
bounded memory. A value matches only as a whole field, so ``ann`` does not find ``joanne``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from shared.adapters.storage import BlobStore
from shared.domain import layout
from shared.domain.errors import BlobNotFoundError, FileRejectedError

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
BLOCK_BYTES = 8 * 1024 * 1024
MAX_LINE_BYTES = 16 * 1024 * 1024
UNREADABLE = "(the file holds the value but cannot be read as lines: it is kept as the bank sent it)"


def clear_names(store: BlobStore) -> Iterator[tuple[str, str]]:
    """Every blob that may hold clear ids: ``(container, name)``, the landing zone's then the refused files'."""
    for name in store.list_names(layout.RAW):
        yield layout.RAW, name
    for name in store.list_names(layout.QUARANTINE):
        if layout.is_quarantined_file(name):
            yield layout.QUARANTINE, name


def matching(store: BlobStore, container: str, name: str, needles: Iterable[str]) -> list[dict[str, Any]]:
    """The records of one blob holding any of ``needles`` as a whole field: a CSV's lines (``{"line": ...}``), a
    Parquet file's rows (their columns). Empty when none does."""
    wanted = sorted({n for n in needles if n})
    if not wanted:
        return []
    try:
        size = store.info(container, name).size
        head = store.read_range(container, name, 0, min(size, 4)) if size else b""
    except BlobNotFoundError:
        return []  # moved or expired between the listing and the read (a refused file goes to quarantine)
    if head.startswith(PARQUET_MAGIC):
        return _parquet_rows(store, container, name, wanted)
    stream: Iterable[bytes] = store.download_chunks(container, name)
    if head.startswith(GZIP_MAGIC):
        from shared.etl.streams import gunzip

        stream = gunzip(stream)
    return _csv_lines(stream, wanted, lambda: _bytes_hold(store, container, name, wanted))


def _field_pattern(needles: list[str]) -> re.Pattern[bytes]:
    alternatives = b"|".join(re.escape(n.encode("utf-8")) for n in needles)
    return re.compile(rb"(?:^|[,;\t|\"])(?:" + alternatives + rb")(?:$|[,;\t|\"\r\n])", re.M)


def _csv_lines(chunks: Iterable[bytes], needles: list[str], holds: Callable[[], bool]) -> list[dict[str, Any]]:
    from shared.etl.streams import line_blocks

    pattern = _field_pattern(needles)
    found: list[dict[str, Any]] = []
    try:
        for block in line_blocks(chunks, sep=b"\n", block_bytes=BLOCK_BYTES, max_line_bytes=MAX_LINE_BYTES):
            data = bytes(block)  # whole lines: a field is never cut between two blocks
            if not pattern.search(data):
                continue
            found.extend(
                {"line": line.decode("utf-8", "replace").rstrip("\r")}
                for line in data.split(b"\n")
                if pattern.search(line)
            )
    except FileRejectedError:  # a line over the bound or a broken gzip stream: what was read, and said
        return found or ([{"line": UNREADABLE}] if holds() else [])
    return found


class RangeFile(io.RawIOBase):
    """A blob as a seekable file read by ranges: Parquet's footer, then the row groups, without the whole file."""

    def __init__(self, store: BlobStore, container: str, name: str) -> None:
        self.store, self.container, self.name = store, container, name
        self.size = store.info(container, name).size
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        length = min(len(buffer), self.size - self.position)
        if length <= 0:
            return 0
        data = self.store.read_range(self.container, self.name, self.position, length)
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


WHOLE_BYTES = 16 * 1024 * 1024  # a Parquet blob up to this size is read in one request (each costs a round trip)


def open_parquet(store: BlobStore, container: str, name: str) -> Any:
    """A Parquet blob as ``pyarrow.parquet.ParquetFile``: read whole when small (one request), by ranges when
    larger than ``WHOLE_BYTES`` (its footer, then what is asked for), so memory stays bounded either way."""
    import pyarrow.parquet as pq

    if store.info(container, name).size <= WHOLE_BYTES:
        return pq.ParquetFile(io.BytesIO(store.get_bytes(container, name)[0]))
    return pq.ParquetFile(io.BufferedReader(RangeFile(store, container, name), buffer_size=1024 * 1024))


def _parquet_rows(store: BlobStore, container: str, name: str, needles: list[str]) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        source = open_parquet(store, container, name)
    except (pa.ArrowException, OSError):
        return [{"line": UNREADABLE}] if _bytes_hold(store, container, name, needles) else []
    text = [  # ids a bank exports as text, as integers, or dictionary-encoded (a categorical column)
        f.name
        for f in source.schema_arrow
        if pa.types.is_string(f.type)
        or pa.types.is_large_string(f.type)
        or pa.types.is_integer(f.type)
        or pa.types.is_dictionary(f.type)
    ]
    value_set = pa.array(needles, pa.string())
    found: list[dict[str, Any]] = []
    for group in range(source.num_row_groups):
        if not text:
            break
        keys = source.read_row_group(group, columns=text)
        hit = None
        for column in text:
            match = pc.fill_null(pc.is_in(keys.column(column).cast(pa.string()), value_set=value_set), False)
            hit = match if hit is None else pc.or_(hit, match)
        if hit is None or not pc.any(hit).as_py():
            continue
        rows = source.read_row_group(group).filter(hit)
        found.extend({k: _plain(v) for k, v in row.items()} for row in rows.to_pylist())
    return found


def _bytes_hold(store: BlobStore, container: str, name: str, needles: list[str]) -> bool:
    pattern = re.compile(b"|".join(re.escape(n.encode("utf-8")) for n in needles))
    overlap = max(len(n.encode("utf-8")) for n in needles)
    carry = b""
    for chunk in store.download_chunks(container, name):
        data = carry + chunk
        if pattern.search(data):
            return True
        carry = data[-overlap:]
    return False


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
