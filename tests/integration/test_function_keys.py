"""Function keys as the host checks them: the local server refuses what Azure would, our clients always send one."""

from __future__ import annotations

import httpx
import pytest

from cli.server import running_server
from shared.adapters.function_keys import HEADER, function_app_client

KEY = "k3y-for-tests"


@pytest.fixture
def url(store):
    with running_server(function_key=KEY) as base:
        yield base


@pytest.mark.parametrize("headers", [{}, {HEADER: "wrong"}, {HEADER: ""}, {HEADER: "ключ"}])
def test_requests_without_a_valid_key_get_401_with_a_reason(url, headers):
    r = httpx.get(f"{url}/api/health", headers={k: v.encode() for k, v in headers.items()})
    assert r.status_code == 401
    assert HEADER in r.json()["detail"] or "not valid" in r.json()["detail"]


def test_the_key_in_the_header_or_in_code_reaches_the_app(url):
    assert httpx.get(f"{url}/api/health", headers={HEADER: KEY}).status_code == 503  # no model yet: the app answered
    assert httpx.get(f"{url}/api/health", params={"code": KEY}).status_code == 503


def test_function_app_client_sends_the_key_on_every_request():
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    with function_app_client("https://app.example", function_key=KEY, transport=httpx.MockTransport(record)) as http:
        http.get("/api/federated/model")
        http.post("/api/federated/rounds/1/updates", content=b"x", headers={"x-fl-bank": "bank-a"})
    assert [r.headers.get(HEADER) for r in seen] == [KEY, KEY]


def test_function_app_client_refuses_to_start_without_a_key():
    with pytest.raises(ValueError, match="401"):
        function_app_client("https://app.example", function_key="")


def test_the_load_generator_sends_the_key_the_benchmark_gives_it(url):
    import asyncio

    from cli.devtools import loadgen

    def kinds(headers):
        return asyncio.run(loadgen.run(f"{url}/api/health", rate=10, seconds=0.5, headers=headers))["error_kinds"]

    assert set(kinds([])) == {"status 401"}  # refused by the key check
    assert set(kinds([f"{HEADER}: {KEY}"])) == {"status 503"}  # past the check: the app says it has no model yet
