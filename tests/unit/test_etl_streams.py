"""Byte-stream plumbing: read-ahead, gunzip and line blocks keep every byte and fail loudly."""

from __future__ import annotations

import gzip
import hashlib

import pytest

from shared.domain.errors import FileRejectedError
from shared.etl.streams import ReadAhead, gunzip, line_blocks


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_read_ahead_passes_every_chunk_in_order_and_hashes_them():
    chunks = [bytes([i]) * (i + 1) for i in range(50)]
    with ReadAhead(iter(chunks), depth=3) as ahead:
        got = list(ahead)
        digest = ahead.hexdigest()
    assert got == chunks
    assert digest == hashlib.sha256(b"".join(chunks)).hexdigest()


def test_read_ahead_raises_the_source_error_in_the_consumer():
    def source():
        yield b"first"
        raise ConnectionResetError("storage went away")

    with ReadAhead(source()) as ahead:
        assert next(ahead) == b"first"
        with pytest.raises(ConnectionResetError, match="storage went away"):
            next(ahead)
        with pytest.raises(RuntimeError, match="not read to the end"):
            ahead.hexdigest()


def test_read_ahead_close_stops_a_source_that_would_never_end():
    produced = 0

    def endless():
        nonlocal produced
        while True:
            produced += 1
            yield b"x" * 1024

    ahead = ReadAhead(endless(), depth=2)
    next(ahead)
    ahead.close()
    assert produced < 10  # bounded read-ahead: it never ran far ahead of the consumer
    assert not ahead._thread.is_alive()


@pytest.mark.parametrize("piece", [1, 7, 1000, 1 << 20])
def test_gunzip_restores_several_members_whatever_the_chunking(piece):
    original = b"".join(f"{i},{i * 2}\n".encode() for i in range(20_000))
    data = gzip.compress(original[:50_000]) + gzip.compress(original[50_000:])
    assert b"".join(gunzip(_pieces(data, piece), out_bytes=4096)) == original


def test_gunzip_output_pieces_are_bounded_so_a_bomb_cannot_fill_memory():
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))
    sizes = [len(p) for p in gunzip([bomb], out_bytes=1 << 20)]
    assert max(sizes) <= 1 << 20 and sum(sizes) == 50 * 1024 * 1024


def test_truncated_and_corrupt_gzip_are_rejected_with_a_reason():
    data = gzip.compress(b"a,b\n1,2\n" * 1000)
    with pytest.raises(FileRejectedError, match="truncated"):
        list(gunzip([data[: len(data) // 2]]))
    corrupt = data[:10] + bytes(b ^ 0xFF for b in data[10:40]) + data[40:]
    with pytest.raises(FileRejectedError, match="cannot be decompressed"):
        list(gunzip([corrupt]))


@pytest.mark.parametrize("piece", [3, 64, 999, 5000, 100_000])
@pytest.mark.parametrize("trailing_newline", [True, False])
def test_line_blocks_end_at_line_ends_and_lose_nothing(piece, trailing_newline):
    text = b"".join(f"{i},{'v' * (i % 37)}\n".encode() for i in range(3000))
    if not trailing_newline:
        text = text.rstrip(b"\n")
    blocks = [bytes(b) for b in line_blocks(_pieces(text, piece), sep=b"\n", block_bytes=4096, max_line_bytes=1 << 20)]
    assert b"".join(blocks) == text
    assert all(b.endswith(b"\n") for b in blocks[:-1])
    assert all(b for b in blocks)


def test_a_line_longer_than_the_limit_rejects_the_file():
    with pytest.raises(FileRejectedError, match="a line is longer than 1 MB"):
        list(line_blocks(_pieces(b"x" * (3 << 20), 1 << 16), sep=b"\n", block_bytes=4096, max_line_bytes=1 << 20))
