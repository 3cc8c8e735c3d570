"""The worker tier: a stand-in host drives the real worker logic (``tests/worker/host.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.worker.host import Host, ProtosMissing, fresh_app_modules, load_protos


@pytest.fixture(scope="module")
def protos():
    try:
        return load_protos()
    except ProtosMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def host(protos) -> Iterator[Host]:
    """The app indexed and loaded by the worker, as a new worker process would (fresh imports of the app)."""
    fresh_app_modules()
    h = Host(protos=protos)
    init = h.start()
    assert init.result.status == protos.StatusResult.Success, init.result.exception.message
    yield h
    h.close()
    fresh_app_modules()  # the worker indexed this import of the app; whoever imports it next gets a fresh one
