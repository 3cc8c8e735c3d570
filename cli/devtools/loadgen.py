"""An open-loop HTTP/1.1 load generator for loopback benchmarks (run as its own process).

Requests leave on a fixed schedule (``rate`` per second) whatever the responses do, each on
a free keep-alive connection from a pool (a new one is opened when all are busy, or when the
server answered ``Connection: close``). No request ever waits for an earlier one, so a stalled
server shows up in the tail instead of silently slowing the load (no coordinated omission); each
latency runs from the moment the client takes up the request (connecting included) to the last
byte of the answer, so the event loop's timer granularity (a millisecond under uvloop) is not
counted as the server's; how late the client itself was is reported apart (``send_lag_p99_ms``),
and ``achieved_rate`` shows whether it kept the schedule. The client is raw asyncio streams with
pre-encoded requests, so its own cost per request stays small next to the server's. Prints one
JSON line: sent, ok, errors, achieved rate, p50/p95/p99/max in ms.

    python -m cli.devtools.loadgen --url http://127.0.0.1:PORT/api/health --rate 50 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

IDLE_SECONDS = 4.0  # below uvicorn's 5 s keep-alive: an idle connection is retired before the server closes it


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.used = time.perf_counter()
        self.closing = False  # the server answered ``Connection: close`` (gunicorn's sync workers always do)

    def reusable(self) -> bool:
        """Not closed by the server and not idle long enough for its keep-alive timeout to close it."""
        return not self.closing and not self.reader.at_eof() and time.perf_counter() - self.used < IDLE_SECONDS

    async def request(self, payload: bytes) -> int:
        self.used = time.perf_counter()
        self.writer.write(payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
            elif line[:11].lower() == b"connection:" and line[11:].strip().lower() == b"close":
                self.closing = True
        if length:
            await self.reader.readexactly(length)
        self.used = time.perf_counter()
        return status


def _extra(headers: list[str]) -> str:
    """``Name: value`` lines as sent on every request (the function key, for one)."""
    return "".join(f"{h.strip()}\r\n" for h in headers)


async def run(
    url: str,
    *,
    rate: float,
    seconds: float,
    method: str = "GET",
    body: bytes = b"",
    content_type: str = "application/json",
    pool: int = 64,
    headers: list[str] | None = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"{method} {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n{_extra(headers or [])}"
    )
    if body:
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    payload = (head + "\r\n").encode() + body
    # no connection opened ahead of need: a server with one synchronous worker (gunicorn's sync workers, the
    # Azure ML inference server's) would sit blocked on an idle one while the requests queue behind it
    idle: list[_Connection] = []
    latencies: list[float] = []
    lags: list[float] = []
    errors = ok = 0
    kinds: Counter[str] = Counter()  # what each error was: a status code, or the client-side exception
    opened = len(idle)

    async def one(scheduled: float) -> None:
        nonlocal errors, ok, opened
        started = time.perf_counter()  # the client's own timer lag is not the server's latency
        lags.append(started - scheduled)
        conn = idle.pop() if idle else None
        while conn is not None and not conn.reusable():  # what an HTTP client's pool does (idle timeout)
            conn.writer.close()
            conn = idle.pop() if idle else None
        try:
            async with asyncio.timeout(timeout):  # connecting included: a full backlog is the server's delay
                if conn is None:
                    opened += 1
                    conn = _Connection(*await asyncio.open_connection(host, port))
                status = await conn.request(payload)
        except TimeoutError:  # counted at the timeout: the percentiles stay lower bounds, not flattered
            errors += 1
            kinds["timeout"] += 1
            latencies.append(timeout)
            if conn is not None:
                conn.writer.close()
            return
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors += 1
            kinds[type(exc).__name__] += 1
            if conn is not None:
                conn.writer.close()
            return
        latencies.append(time.perf_counter() - started)
        if status == 200:
            ok += 1
        else:
            errors += 1
            kinds[f"status {status}"] += 1
        if len(idle) < pool:
            idle.append(conn)
        else:
            conn.writer.close()

    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    for conn in idle:
        conn.writer.close()
    ms = np.asarray(latencies) * 1000.0 if latencies else np.asarray([float("nan")])
    return {
        "rate": rate,
        "sent": total,
        "ok": ok,
        "errors": errors,
        "error_kinds": dict(kinds),
        "achieved_rate": round(total / elapsed, 1),
        "connections": opened,
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
        "send_lag_p99_ms": round(float(np.percentile(np.asarray(lags) * 1000.0, 99)), 3) if lags else 0.0,
    }


async def closed(
    url: str,
    *,
    requests: int,
    body: bytes,
    content_type: str = "application/json",
    connections: int = 1,
    headers: list[str] | None = None,
) -> dict[str, float]:
    """``requests`` back to back, spread over ``connections`` keep-alive connections each sending one at a time.

    One connection measures latency (the server idles while the client sends and reads); two let
    the server decode one request while another is being scored, which is its throughput.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = f"{parts.path}{'?' + parts.query if parts.query else ''}"
    payload = (
        f"POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\n{_extra(headers or [])}"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    times: list[float] = []
    errors = 0

    async def worker(count: int) -> None:
        nonlocal errors
        conn = _Connection(*await asyncio.open_connection(host, port))
        for _ in range(count):
            t0 = time.perf_counter()
            if not conn.reusable():  # the server closed it: a new connection, timed with the request
                conn.writer.close()
                conn = _Connection(*await asyncio.open_connection(host, port))
            if await conn.request(payload) != 200:
                errors += 1
            times.append(time.perf_counter() - t0)
        conn.writer.close()

    shares = [requests // connections + (i < requests % connections) for i in range(connections)]
    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in shares if n))
    elapsed = time.perf_counter() - started
    ms = np.asarray(times) * 1000.0
    return {
        "requests": requests,
        "connections": connections,
        "errors": errors,
        "per_s": round(requests / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--rate", type=float, default=10.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--method", default="GET")
    p.add_argument("--body-file", help="request body (POST)")
    p.add_argument("--content-type", default="application/json")
    p.add_argument("--closed", type=int, default=0, help="instead: this many POSTs back to back")
    p.add_argument("--connections", type=int, default=1, help="with --closed: spread over this many connections")
    p.add_argument("--header", action="append", default=[], help="'Name: value' sent on every request (repeatable)")
    p.add_argument("--timeout", type=float, default=10.0, help="open loop: a request unanswered this long is an error")
    args = p.parse_args()
    body = Path(args.body_file).read_bytes() if args.body_file else b""
    job = (
        closed(
            args.url,
            requests=args.closed,
            body=body,
            content_type=args.content_type,
            connections=args.connections,
            headers=args.header,
        )
        if args.closed
        else run(
            args.url,
            rate=args.rate,
            seconds=args.seconds,
            method=args.method,
            body=body,
            content_type=args.content_type,
            headers=args.header,
            timeout=args.timeout,
        )
    )
    try:
        import uvloop

        result = uvloop.run(job)
    except ImportError:
        result = asyncio.run(job)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
