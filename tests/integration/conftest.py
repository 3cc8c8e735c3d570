"""Fixtures of the integration tests that start a server of their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cli.devtools.redis import RedisNotAvailable, RedisServer, private_redis


@pytest.fixture(scope="module")
def redis_module() -> Iterator[RedisServer]:
    """A private Redis (Debian's redis-server) for the module, stopped at its end, a failed test or not."""
    try:
        with private_redis() as server:
            yield server
    except RedisNotAvailable as exc:
        pytest.skip(str(exc))
