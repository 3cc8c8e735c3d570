"""Hostile callers of the scoring API (issue 19, findings 11 and 13), over real sockets and against Azurite."""

from __future__ import annotations

import httpx
import pytest

from cli.devtools.models import publish_synthetic_model
from cli.server import running_server
from shared.adapters.model_store import VERSION_MAX
from shared.domain.contracts import get_contract

CREDITCARD = get_contract("creditcard")


TXN = {"transaction_id": "t1", **{f: 0.1 for f in CREDITCARD.feature_names}}


@pytest.fixture
def served(store, settings, monkeypatch):
    from tests.conftest import clear_caches

    monkeypatch.setenv("MODEL_REFRESH_SECONDS", "0")
    clear_caches()
    publish_synthetic_model(store, settings.model_name, version="v1", trees=5, rows=3000)
    store.put_bytes("quarantine", "evil/manifest.json", b'{"sha256": "x", "feature_names": [], "threshold": 0.5}')
    with running_server() as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http
    clear_caches()


class RecordingTransport:
    """An azure-core transport that records the path of every request it sends."""

    def __new__(cls, paths: list[str]):
        from azure.core.pipeline.transport import RequestsTransport

        class Recorder(RequestsTransport):
            def send(self, request, **kwargs):
                paths.append(httpx.URL(request.url).path)
                return super().send(request, **kwargs)

        return Recorder()


def test_a_pinned_version_that_is_a_path_never_reaches_another_container(store, settings, azurite):
    """Finding 11: ``../../quarantine/evil`` used to reach the quarantine container once the path was normalised."""
    from azure.storage.blob import BlobServiceClient

    from shared.adapters.model_store import ModelStore
    from shared.adapters.storage import AzureBlobStore
    from shared.domain.errors import InvalidModelVersionError
    from shared.scoring.scorer import Scorer

    publish_synthetic_model(store, settings.model_name, version="v1", trees=5, rows=3000)
    paths: list[str] = []
    recording = AzureBlobStore(BlobServiceClient.from_connection_string(azurite, transport=RecordingTransport(paths)))
    scorer = Scorer(
        ModelStore(recording, settings.model_name), feature_names=CREDITCARD.feature_names, refresh_seconds=0
    )
    for version in ("../../quarantine/evil", "..%2F..%2Fquarantine%2Fevil", "v1/../../quarantine/evil"):
        with pytest.raises(InvalidModelVersionError):
            scorer.pinned(version)
    assert scorer.pinned("v1").version == "v1" and scorer.current().version == "v1"
    # blob reads under the model's own prefix; a listing (the deprecated versions) of the models container only
    inside = f"/devstoreaccount1/models/{settings.model_name}/"
    assert paths and all(p.startswith(inside) or p == "/devstoreaccount1/models" for p in paths), paths
    assert not any(".." in p for p in paths)


def test_pinned_paths_over_http_are_422_with_a_reason(served):
    r = served.post("/api/score", json={"transactions": [TXN]}, headers={"X-Model-Version": "../../quarantine/evil"})
    assert r.status_code == 422 and "x-model-version" in r.text.lower()
    r = served.post("/api/score", json={"transactions": [TXN], "model_version": "../../quarantine/evil"})
    assert r.status_code == 422 and "is not a version name" in r.json()["detail"]
    assert served.post("/api/score", json={"transactions": [TXN], "model_version": "v1"}).status_code == 200
    # a name of the right shape but too long: the document bounds the header as the server does, so a request
    # the document calls valid is never refused (schemathesis found a 129-character header refused by the server)
    long_name = "v" + ".a" * 64
    r = served.post("/api/score", json={"transactions": [TXN]}, headers={"X-Model-Version": long_name})
    assert r.status_code == 422 and "x-model-version" in r.text.lower()
    header = next(
        p
        for p in served.get("/api/openapi.json").json()["paths"]["/api/score"]["post"]["parameters"]
        if p["name"] == "x-model-version"
    )
    assert header["schema"]["maxLength"] == VERSION_MAX


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"transactions": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
        b'{"transactions": [' + b'{"a": ' * 3_000 + b"1" + b"}" * 3_000 + b"]}",
    ],
)
def test_absurdly_nested_json_is_400_with_a_reason_not_500(served, body):
    """Finding 13: a RecursionError used to escape the decoder."""
    r = served.post("/api/score", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert "levels deep; a transaction is a flat object" in r.json()["detail"]
    assert served.post("/api/score", json={"transactions": [TXN]}).status_code == 200  # and the server is fine
