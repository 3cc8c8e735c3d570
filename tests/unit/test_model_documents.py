"""The model's stored documents as today's deployments hold them (written before issue 35) still read: the
manifests of the three kinds of publisher, the champion pointer pinning the manifest's stored bytes, and a
deprecation record; and a manifest published now reads back as it was written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from shared.adapters.model_store import ModelStore
from shared.domain import layout
from shared.domain.documents.model import FEDERATED, LIGHTGBM, ModelDescription, ModelManifest
from shared.domain.errors import ModelIntegrityError
from shared.domain.model_card import markdown

FIXTURES = Path(__file__).parents[1] / "fixtures" / "documents"
MODEL = "fraud"


def _stored(memory_store, name: str, path: str) -> bytes:
    data = (FIXTURES / name).read_bytes()
    memory_store.put_bytes(layout.MODELS, path, data)
    return data


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("model_manifest.json", LIGHTGBM),
        ("model_manifest_federated.json", FEDERATED),
        ("model_manifest_synthetic.json", LIGHTGBM),
    ],
)
def test_an_older_manifest_reads_with_every_field_typed(memory_store, name, kind):
    version = ModelManifest.model_validate_json((FIXTURES / name).read_bytes()).version
    data = _stored(memory_store, name, layout.model_file(MODEL, version, "manifest.json"))
    manifest = ModelStore(memory_store, MODEL).manifest(version, expected_sha256=hashlib.sha256(data).hexdigest())
    assert manifest.kind == kind and manifest.schema_version == 1 and not manifest.model_extra
    assert manifest.version == version and manifest.model_name == MODEL and manifest.feature_names
    assert manifest.decision_threshold() == manifest.threshold and manifest.digest_of("model.onnx") == manifest.sha256
    assert f"# Model card: {MODEL} {version}" in markdown(manifest)


def test_the_older_pointer_pins_the_older_manifest_s_stored_bytes(memory_store):
    models = ModelStore(memory_store, MODEL)
    _stored(memory_store, "champion_pointer.json", layout.champion_pointer(MODEL))
    pointer = models.pointer()
    assert pointer is not None and pointer.manifest_sha256 is not None
    _stored(memory_store, "model_manifest.json", layout.model_file(MODEL, pointer.version, "manifest.json"))
    assert models.manifest(pointer.version, expected_sha256=pointer.manifest_sha256).version == pointer.version
    with pytest.raises(ModelIntegrityError, match="not the one the champion pointer promoted"):
        models.manifest(pointer.version, expected_sha256="0" * 64)


def test_an_older_deprecation_record_reads(memory_store):
    version = "20261101T000000Z-aaaaaaaa"
    _stored(memory_store, "deprecation_record.json", layout.deprecation(MODEL, version))
    models = ModelStore(memory_store, MODEL)
    found = models.deprecation(version)
    assert found is not None and found.actor == "admin key def2dd87a30b" and found.reason == "leaky feature"
    assert models.deprecated() == {version}


def test_a_published_manifest_reads_back_as_written_and_its_digest_is_of_the_stored_bytes(memory_store):
    models = ModelStore(memory_store, MODEL)
    description = ModelDescription(feature_names=["a", "b"], threshold=0.4, metrics={"auc": 0.9}, dataset="d")
    published = models.publish("v1", b"onnx", description, extra_files={"model.txt": b"booster"})
    assert (
        models.manifest("v1") == published
        and published.digest_of("model.txt") == hashlib.sha256(b"booster").hexdigest()
    )
    models.promote("v1", expected_etag=None, reason="first")
    stored, _ = memory_store.get_bytes(layout.MODELS, layout.model_file(MODEL, "v1", "manifest.json"))
    assert models.pointer().manifest_sha256 == hashlib.sha256(stored).hexdigest()
    assert models.publish("v2", b"onnx", {"threshold": 0.4, "created_at": None}).threshold == 0.4  # a dict still works


def test_an_unreadable_manifest_is_refused_as_a_model_that_does_not_hold_together(memory_store):
    models = ModelStore(memory_store, MODEL)
    models.publish("v1", b"onnx", {"threshold": 0.5})
    memory_store.put_bytes(layout.MODELS, layout.model_file(MODEL, "v1", "manifest.json"), b'{"threshold": "high"}')
    with pytest.raises(ModelIntegrityError, match="not a readable ModelManifest"):
        models.manifest("v1")
