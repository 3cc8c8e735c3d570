"""Byte-stream plumbing for the ETL: read ahead in a thread, gunzip, cut text at line ends.

Everything here works on iterators of ``bytes`` chunks, so an upload is never held whole in
memory: at most ``depth`` chunks wait in the read-ahead queue and one block is being parsed.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import zlib
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import TypeVar

from shared.domain.errors import FileRejectedError

CHUNK_BYTES = 8 * 1024 * 1024
_DONE = object()
T = TypeVar("T")


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Prefetch(Iterator[T]):
    """Pull items from ``source`` in a background thread, at most ``depth`` ahead of the consumer.

    An exception in the thread (a storage error, a rejected file) is raised in the consumer at
    the point it was reached. ``close`` stops the thread early.
    """

    def __init__(self, source: Iterable[T], *, depth: int, name: str = "etl-prefetch") -> None:
        self._source = source
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.finished = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _accept(self, item: T) -> bool:  # noqa: ARG002 (a hook: subclasses look at the item)
        """Called in the thread for each item; False drops it."""
        return True

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._source:
                if self._accept(item) and not self._put(item):
                    return
            self.finished = True
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(_Failed(exc))

    def __next__(self) -> T:
        item = self._queue.get()
        if item is _DONE:
            self._queue.put(_DONE)  # stay exhausted
            raise StopIteration
        if isinstance(item, _Failed):
            self._queue.put(item)
            raise item.exc
        return item  # type: ignore[return-value]

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
        self._thread.join()

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ReadAhead(Prefetch[bytes]):
    """Byte chunks read ahead in a thread (download and parsing overlap), hashed on the way.

    The thread spends its time in socket reads and SHA-256, which release the GIL.
    """

    def __init__(self, source: Iterable[bytes], *, depth: int = 2) -> None:
        self._sha256 = hashlib.sha256()
        super().__init__(source, depth=depth, name="etl-read-ahead")

    def _accept(self, item: bytes) -> bool:
        if not item:
            return False
        self._sha256.update(item)
        return True

    def hexdigest(self) -> str:
        """SHA-256 of the whole source; only once it has been read to the end."""
        self._thread.join()
        if not self.finished:
            raise RuntimeError("the source was not read to the end")
        return self._sha256.hexdigest()

    def __enter__(self) -> ReadAhead:
        return self


def file_chunks(path: str, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """A local file as chunks (what ``transform_file`` and the tests feed the ETL)."""
    with open(path, "rb") as f:
        yield from iter(lambda: f.read(size), b"")


def gunzip(chunks: Iterable[bytes], *, out_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Decompress a gzip stream (several members allowed) in bounded pieces: a gzip bomb cannot blow up memory."""
    decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
    fed = False  # whether the current member has received any input
    try:
        for chunk in chunks:
            data = chunk
            while data:
                fed = True
                out = decomp.decompress(data, out_bytes)
                if out:
                    yield out
                data = decomp.unconsumed_tail
                if decomp.eof:  # the next member starts in unused_data (which repeats unconsumed_tail)
                    data = decomp.unused_data
                    decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    fed = False
        tail = decomp.flush()
        if tail:
            yield tail
    except zlib.error as exc:
        raise FileRejectedError(f"the file is gzip-compressed but cannot be decompressed ({exc})") from None
    if fed and not decomp.eof:
        raise FileRejectedError("the gzip stream is truncated (it ends before its end marker)")


def line_blocks(
    chunks: Iterable[bytes],
    *,
    sep: bytes,
    block_bytes: int,
    max_line_bytes: int,
) -> Iterator[bytes | memoryview]:
    """Regroup chunks into blocks that end at a line end (the last block may not).

    A chunk's whole lines are passed on as a view of the chunk, not a copy; only the line cut
    by a chunk boundary is copied, into a small joint block with whatever small pieces came
    before it. Small chunks are gathered until they make ``block_bytes``.
    """
    head: list[bytes | memoryview] = []
    head_bytes = 0
    carry = b""
    for chunk in chunks:
        first = chunk.find(sep)
        if first < 0:
            carry += chunk
            if len(carry) > max_line_bytes:
                raise FileRejectedError(
                    f"a line is longer than {max_line_bytes // (1024 * 1024)} MB; the file is not a transaction table"
                )
            continue
        last = chunk.rfind(sep)
        joint = carry + chunk[: first + 1]
        head.append(joint)
        head_bytes += len(joint)
        carry = chunk[last + 1 :]
        body = memoryview(chunk)[first + 1 : last + 1]
        if len(body) >= block_bytes // 2:
            yield _joined(head)
            head, head_bytes = [], 0
            yield body
        elif body:
            head.append(body)
            head_bytes += len(body)
        if head_bytes >= block_bytes:
            yield _joined(head)
            head, head_bytes = [], 0
    if carry:
        head.append(carry)
    if head:
        yield _joined(head)


def _joined(pieces: list[bytes | memoryview]) -> bytes | memoryview:
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)
