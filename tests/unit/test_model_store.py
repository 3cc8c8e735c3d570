"""The model store on the in-memory store: create-only versions, an ETag-guarded champion pointer."""

from __future__ import annotations

import hashlib

import pytest

from shared.adapters.model_store import ModelStore
from shared.domain.errors import ConcurrentUpdateError, ModelNotAvailableError


def test_publish_is_create_only_and_records_the_digest(memory_store):
    models = ModelStore(memory_store, "fraud")
    manifest = models.publish("v1", b"onnx-bytes", {"threshold": 0.3, "feature_names": ["a"]})
    assert manifest.sha256 == hashlib.sha256(b"onnx-bytes").hexdigest() and manifest.onnx_bytes == 10
    assert models.manifest("v1").threshold == 0.3 and models.file("v1", "model.onnx") == b"onnx-bytes"
    with pytest.raises(ConcurrentUpdateError, match="already exists"):
        models.publish("v1", b"other", {})
    with pytest.raises(ModelNotAvailableError):
        models.manifest("v2")


def test_promotion_is_guarded_by_the_pointers_etag(memory_store):
    models = ModelStore(memory_store, "fraud")
    for v in ("v1", "v2", "v3"):
        models.publish(v, b"onnx-" + v.encode(), {})
    assert models.champion() == (None, None)
    with pytest.raises(ModelNotAvailableError):  # only a published version can be promoted
        models.promote("v9", expected_etag=None, reason="absent")
    models.promote("v1", expected_etag=None, reason="first")
    version, etag = models.champion()
    assert version == "v1" and etag == models.pointer_etag()
    with pytest.raises(ConcurrentUpdateError):  # a second "first" promotion loses
        models.promote("v2", expected_etag=None, reason="also first")
    models.promote("v2", expected_etag=etag, reason="better")
    with pytest.raises(ConcurrentUpdateError):  # the ETag read before v2's promotion is stale now
        models.promote("v3", expected_etag=etag, reason="stale")
    assert models.champion()[0] == "v2"


# ---- issue 19, finding 12: integrity from the pointer down, not only of the ONNX bytes


def test_the_pointer_pins_the_manifest_and_the_manifest_pins_every_file(memory_store):
    from shared.domain.errors import ModelIntegrityError

    models = ModelStore(memory_store, "fraud")
    models.publish("v1", b"onnx", {"threshold": 0.5}, extra_files={"model.txt": b"booster"})
    models.promote("v1", expected_etag=None, reason="first")
    pointer = models.pointer()
    assert (
        pointer is not None
        and pointer.manifest_sha256
        == hashlib.sha256(memory_store.get_bytes("models", "fraud/v1/manifest.json")[0]).hexdigest()
    )
    assert models.file("v1", "model.txt") == b"booster"
    memory_store.put_bytes("models", "fraud/v1/model.txt", b"a booster someone swapped in")
    with pytest.raises(ModelIntegrityError, match=r"model.txt does not match"):  # before: never verified
        models.file("v1", "model.txt")
    memory_store.put_bytes("models", "fraud/v1/manifest.json", b'{"threshold": 0.01, "sha256": "x"}')
    with pytest.raises(ModelIntegrityError, match="not the one the champion pointer promoted"):
        models.manifest("v1", expected_sha256=pointer.manifest_sha256)
