"""The scorer's champion refresh on the in-memory store: swaps a verified model, keeps serving past a bad one."""

from __future__ import annotations

import numpy as np
import pytest

from shared.adapters.model_store import ModelStore
from shared.domain.contracts import get_contract
from shared.domain.errors import ModelNotAvailableError
from shared.scoring.scorer import Scorer

CREDITCARD = get_contract("creditcard")

FEATURES = CREDITCARD.feature_names


def _publish(models, version, onnx_bytes, **over):
    manifest = {"feature_names": FEATURES, "input_name": "features", "threshold": 0.5, "kind": "lightgbm", **over}
    models.publish(version, onnx_bytes, manifest)
    models.promote(version, expected_etag=models.champion()[1], reason="test")


def test_no_model_yet_is_a_reason_not_a_crash(memory_store):
    scorer = Scorer(ModelStore(memory_store, "fraud"), feature_names=FEATURES, refresh_seconds=0)
    with pytest.raises(ModelNotAvailableError, match="no model has been published"):
        scorer.current()


def test_a_new_champion_is_picked_up_and_a_tampered_one_refused(memory_store, small_model):
    onnx_bytes, x = small_model
    models = ModelStore(memory_store, "fraud")
    scorer = Scorer(models, feature_names=FEATURES, refresh_seconds=0)
    _publish(models, "v1", onnx_bytes)
    first = scorer.current()
    assert first.version == "v1" and np.all((p := first.predict_proba(x[:50])) >= 0) and np.all(p <= 1)
    _publish(models, "v2", onnx_bytes, threshold=0.2)
    assert scorer.current().version == "v2" and scorer.current().threshold == 0.2
    _publish(models, "v3", onnx_bytes)
    memory_store.put_bytes("models", "fraud/v3/model.onnx", onnx_bytes + b"tampered")  # bytes no longer match sha256
    assert scorer.current().version == "v2"  # refused, logged, and the verified model keeps serving


def test_a_model_with_the_wrong_feature_order_is_refused(memory_store, small_model):
    onnx_bytes, _ = small_model
    models = ModelStore(memory_store, "fraud")
    _publish(models, "v1", onnx_bytes, feature_names=list(reversed(FEATURES)))
    with pytest.raises(ModelNotAvailableError):
        Scorer(models, feature_names=FEATURES, refresh_seconds=0).current()


def test_a_model_trained_on_another_shape_of_the_contract_is_refused_and_a_reworded_one_serves(
    memory_store, small_model
):
    from pathlib import Path

    from shared.domain.contract_file import parse_contract

    text = (Path(__file__).resolve().parents[2] / "contracts" / "creditcard.yaml").read_text()
    now = parse_contract(text)
    reworded = parse_contract(text.replace("principal component 1 of", "the first principal component of"))
    reshaped = parse_contract(text.replace("{name: V3, type: float,", "{name: V3, type: float, minimum: -50,"))
    assert reworded.sha256 != now.sha256 and reworded.input_sha256 == now.input_sha256 != reshaped.input_sha256
    onnx_bytes, _ = small_model
    models = ModelStore(memory_store, "fraud")
    scorer = Scorer(models, feature_names=FEATURES, refresh_seconds=0, input_sha256=now.input_sha256)

    _publish(models, "v1", onnx_bytes, contract_input_sha256=reworded.input_sha256, dataset="creditcard")
    assert scorer.current().version == "v1"
    _publish(models, "v2", onnx_bytes, contract_input_sha256=reshaped.input_sha256, dataset="creditcard")
    assert scorer.current().version == "v1"  # the champion trained on another shape is refused, v1 keeps serving
    from shared.domain.errors import ModelIntegrityError

    with pytest.raises(ModelIntegrityError, match="trained on another version of dataset creditcard's contract"):
        scorer.pinned("v2")


# ---- issue 19: pinned versions (findings 11 and 13) ------------------------------------------------


@pytest.mark.parametrize(
    "version", ["../../quarantine/x", "v1/../v2", "..", "a/b", ".hidden", "v1.", "v" * 129, "v1\n", "%2e%2e"]
)
def test_a_pinned_version_that_is_not_a_version_name_is_refused_before_any_read(memory_store, version):
    from shared.domain.errors import InvalidModelVersionError

    reads: list[str] = []

    class Recording(type(memory_store)):
        def get_bytes(self, container, name):
            reads.append(f"{container}/{name}")
            return super().get_bytes(container, name)

    store = Recording()
    store.ensure_containers()
    scorer = Scorer(ModelStore(store, "fraud"), feature_names=FEATURES, refresh_seconds=0)
    with pytest.raises(InvalidModelVersionError, match="is not a version name"):
        scorer.pinned(version)
    assert reads == []
    for good in ("v1", "1.0", "20261202T053545Z-c07535fa", "fl-fraud-lr-r3"):
        with pytest.raises(ModelNotAvailableError):  # a version name: looked up (and absent)
            scorer.pinned(good)


class _Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rotating_through_many_pinned_versions_is_bounded_not_a_reload_per_request(memory_store, small_model):
    from shared.domain.errors import RetryLaterError
    from shared.scoring.scorer import PINNED_CACHE, PINNED_LOADS_PER_MINUTE

    onnx_bytes, _ = small_model
    models = ModelStore(memory_store, "fraud")
    for i in range(PINNED_CACHE + 1):
        models.publish(f"p{i}", onnx_bytes, {"feature_names": FEATURES, "input_name": "features", "threshold": 0.5})
    clock = _Clock()
    scorer = Scorer(models, feature_names=FEATURES, refresh_seconds=0, clock=clock)
    loads = 0
    with pytest.raises(RetryLaterError, match="pinned model versions were loaded in the last minute"):
        for request in range(100):  # five versions in turn through a cache of four: each request misses
            scorer.pinned(f"p{request % (PINNED_CACHE + 1)}")
            loads += 1
    assert loads == PINNED_LOADS_PER_MINUTE  # before: 100 loads, one per request
    assert scorer.pinned(f"p{(loads - 1) % (PINNED_CACHE + 1)}").version  # cached versions still answer
    clock.now += 60
    assert scorer.pinned("p0").version == "p0"  # the window moved on


def test_a_slow_pinned_load_never_holds_up_the_champion(memory_store, small_model):
    import threading

    onnx_bytes, x = small_model
    release, loading = threading.Event(), threading.Event()

    class Slow(type(memory_store)):
        def get_bytes(self, container, name):
            if name == "fraud/slow/model.onnx":
                loading.set()
                release.wait(30)
            return super().get_bytes(container, name)

    store = Slow()
    store.ensure_containers()
    models = ModelStore(store, "fraud")
    _publish(models, "v1", onnx_bytes)
    models.publish("slow", onnx_bytes, {"feature_names": FEATURES, "input_name": "features", "threshold": 0.5})
    scorer = Scorer(models, feature_names=FEATURES, refresh_seconds=0)
    pinned = threading.Thread(target=scorer.pinned, args=("slow",))
    pinned.start()
    assert loading.wait(10)
    champion = threading.Thread(target=lambda: scorer.current().predict_proba(x[:5]))
    champion.start()
    champion.join(10)
    try:
        assert not champion.is_alive()  # before: the refresh waited for the pinned load's lock
    finally:
        release.set()
        pinned.join(10)


def test_a_manifest_rewritten_after_promotion_is_refused_and_the_old_model_keeps_serving(memory_store, small_model):
    """Finding 12: a rewritten manifest (say, a threshold of 0.99, with the bytes' digest kept) used to be served."""
    import json

    onnx_bytes, _ = small_model
    models = ModelStore(memory_store, "fraud")
    scorer = Scorer(models, feature_names=FEATURES, refresh_seconds=0)
    _publish(models, "v1", onnx_bytes)
    _publish(models, "v2", onnx_bytes)
    assert scorer.current().version == "v2"
    scorer = Scorer(models, feature_names=FEATURES, refresh_seconds=0)
    doc = json.loads(memory_store.get_bytes("models", "fraud/v2/manifest.json")[0])
    memory_store.put_bytes("models", "fraud/v2/manifest.json", json.dumps({**doc, "threshold": 0.99}).encode())
    with pytest.raises(ModelNotAvailableError):  # refused: a fresh scorer has nothing else to serve
        scorer.current()
    memory_store.put_bytes("models", "fraud/champion.json", b'{"version": "v1"}')  # a pointer that pins nothing
    with pytest.raises(ModelNotAvailableError):
        scorer.current()
