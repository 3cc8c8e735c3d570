"""The benchmarks' load generator: it retires keep-alive connections the server is about to close."""

from __future__ import annotations

import asyncio

from cli.devtools import loadgen

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def _serve_closing_idle(idle_seconds: float) -> tuple[asyncio.AbstractServer, int]:
    """A tiny HTTP server that closes a keep-alive connection idle for ``idle_seconds``, as uvicorn does."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), idle_seconds)
                writer.write(RESPONSE)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_requests_after_idle_gaps_do_not_fail_on_connections_the_server_closed(monkeypatch):
    monkeypatch.setattr(loadgen, "IDLE_SECONDS", 0.15)

    async def scenario() -> dict:
        server, port = await _serve_closing_idle(0.2)
        async with server:
            return await loadgen.run(f"http://127.0.0.1:{port}/api/health", rate=4, seconds=1.5)

    result = asyncio.run(scenario())
    assert result["sent"] == 6 and result["ok"] == 6
    assert result["errors"] == 0 and result["error_kinds"] == {}
    assert result["connections"] > 4  # idle ones were retired and new ones opened


def test_back_to_back_requests_reconnect_to_a_server_that_closes_after_each_answer():
    """gunicorn's sync workers (the Azure ML inference server's) answer ``Connection: close`` every time."""
    opened = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal opened
        opened += 1
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(h[15:]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:"))
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def scenario() -> dict:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            return await loadgen.closed(f"http://127.0.0.1:{port}/score", requests=7, body=b"{}", connections=2)

    result = asyncio.run(scenario())
    assert result["requests"] == 7 and result["errors"] == 0
    assert opened == 7  # one connection per answer, as the server demands


def test_a_request_the_server_never_answers_is_an_error_at_the_timeout_not_a_hang():
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # and never answers
        await asyncio.sleep(1)
        writer.close()

    async def scenario() -> dict:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            return await loadgen.run(f"http://127.0.0.1:{port}/", rate=4, seconds=0.5, timeout=0.3)

    result = asyncio.run(scenario())
    assert result["sent"] == 2 and result["ok"] == 0
    assert result["error_kinds"] == {"timeout": 2} and result["p50_ms"] >= 300
