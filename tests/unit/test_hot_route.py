"""The hot path's route class: FastAPI's parameter resolution only for requests that carry a declared parameter."""

from __future__ import annotations

from typing import Annotated

import fastapi.routing
import pytest
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.testclient import TestClient

from api.hot_route import HotRoute


def _app() -> FastAPI:
    app = FastAPI()
    hot = fastapi.APIRouter(route_class=HotRoute)

    @hot.post("/score")
    async def score(
        request: Request,
        explain: Annotated[bool, Query()] = False,
        x_model_version: Annotated[str, Header(pattern=r"^v[0-9]{1,3}$", max_length=4)] = "",
    ) -> Response:
        return JSONResponse({"explain": explain, "version": x_model_version, "path": request.url.path})

    app.include_router(hot)
    return app


@pytest.fixture
def solved(monkeypatch) -> list[int]:
    """How many times FastAPI resolved a request's parameters."""
    calls: list[int] = []
    real = fastapi.routing.solve_dependencies

    async def counting(*args, **kwargs):
        calls.append(1)
        return await real(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return calls


def test_a_request_without_declared_parameters_gets_the_defaults_without_fastapis_resolution(solved):
    client = TestClient(_app())
    r = client.post("/score", content=b"{}", headers={"x-functions-key": "k"})
    assert r.status_code == 200 and r.json() == {"explain": False, "version": "", "path": "/score"}
    r = client.post("/score?code=the-function-key")  # the host's key in the query is not a declared parameter
    assert r.status_code == 200 and r.json()["explain"] is False
    assert solved == []


def test_a_request_with_a_declared_parameter_is_resolved_and_validated_by_fastapi(solved):
    client = TestClient(_app())
    r = client.post("/score?explain=true", headers={"X-Model-Version": "v12"})
    assert r.status_code == 200 and r.json() == {"explain": True, "version": "v12", "path": "/score"}
    assert client.post("/score?explain=maybe").status_code == 422
    for hostile in ("../../quarantine/evil", "v1234"):
        r = client.post("/score", headers={"x-model-version": hostile})
        assert r.status_code == 422 and "x-model-version" in r.text
    assert len(solved) == 4


@pytest.mark.parametrize(
    "signature",
    ["body", "dependency", "required", "sync"],
)
def test_an_endpoint_whose_parameters_cannot_be_skipped_is_refused_when_the_app_is_built(signature):
    async def dep() -> int:
        return 1

    endpoints = {
        "body": lambda: _endpoint_with_body,
        "dependency": lambda: _with(Annotated[int, Depends(dep)]),
        "required": lambda: _with(Annotated[str, Header()]),
        "sync": lambda: _sync,
    }
    with pytest.raises(TypeError, match="HotRoute endpoint"):
        HotRoute("/x", endpoints[signature](), methods=["POST"])


async def _endpoint_with_body(request: Request, payload: dict) -> Response:
    return Response()


def _with(annotation):  # an async endpoint with one extra parameter of this annotation and no default
    async def endpoint(request, extra):
        return Response()

    endpoint.__annotations__ = {"request": Request, "extra": annotation, "return": Response}
    return endpoint


def _sync(request: Request) -> Response:
    return Response()
