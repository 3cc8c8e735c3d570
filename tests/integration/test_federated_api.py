"""The federated protocol over real HTTP: signed updates, every rejection, concurrent banks."""

from __future__ import annotations

import json
import threading
import time

import httpx
import numpy as np
import pytest

from cli.server import running_server
from fraudops_bank.signing import sign
from shared.federated.params import from_wire, to_wire

KEYS = {"bank-a": "key-a", "bank-b": "key-b", "bank-c": "key-c", "bank-d": "key-d", "bank-e": "key-e"}
INITIAL = {"coef": np.zeros(4, np.float32), "intercept": np.zeros(1, np.float32)}


def _params(value: float) -> bytes:
    return to_wire({"coef": np.full(4, value, np.float32), "intercept": np.array([value], np.float32)})


def _post(http, bank, body, *, round_number=1, examples=100, key=None, now=None, headers=None):
    path = f"/api/federated/rounds/{round_number}/updates"
    extra = {"x-fl-examples": str(examples), "x-fl-metrics": json.dumps({"auc": 0.9})}
    signed = headers or sign(
        (key or KEYS.get(bank, "x")).encode(), "POST", path, body, bank=bank, now=now or time.time(), extra=extra
    )
    return http.post(path, content=body, headers=signed), signed


@pytest.fixture
def fl(store, settings, monkeypatch):
    from api.federated import rounds_for
    from shared.domain.settings import get_settings
    from tests.conftest import clear_caches

    monkeypatch.setenv("FL_BANK_KEYS", json.dumps(KEYS))
    monkeypatch.setenv("FL_ADMIN_KEY", "admin-secret")
    monkeypatch.setenv("FL_MIN_CLIENTS", "3")
    monkeypatch.setenv("FL_AGGREGATOR", "fedavg")  # these tests check the weighted mean itself
    monkeypatch.setenv("FL_MODE", "visible")  # the visible protocol's updates (secure: test_federated_secure)
    clear_caches()
    rounds_for(get_settings()).start(INITIAL)
    with running_server() as url, httpx.Client(base_url=url, timeout=60) as http:
        yield http
    clear_caches()


def test_updates_close_the_round_and_the_new_model_is_served(fl):
    for bank, value in (("bank-a", 1.0), ("bank-b", 2.0)):
        r, _ = _post(fl, bank, _params(value))
        assert r.status_code == 202 and r.json()["status"] == "open"
    r, _ = _post(fl, "bank-c", _params(3.0), examples=200)
    assert r.status_code == 202 and r.json()["status"] == "closed"
    status = fl.get("/api/federated/rounds/1").json()
    assert status["participants"] == ["bank-a", "bank-b", "bank-c"]  # names only: each bank's facts are its own
    assert status["aggregate_metrics"] == {"auc": 0.9}
    assert fl.get("/api/federated/rounds/1/banks").status_code == 401
    banks = fl.get("/api/federated/rounds/1/banks", headers={"X-FL-Admin-Key": "admin-secret"}).json()["participants"]
    assert banks["bank-c"]["examples"] == 200 and "update" not in banks["bank-a"]
    model = fl.get("/api/federated/model", headers={"X-FL-Wire": "2"})
    assert model.headers["x-fl-round"] == "2"
    assert np.allclose(from_wire(model.content)["coef"], (100 * 1 + 100 * 2 + 200 * 3) / 400)


def test_every_rejection_has_a_status_and_a_reason(fl):
    cases = []
    r, _ = _post(fl, "bank-x", _params(1.0))
    cases.append((r, 401, "unknown bank"))
    r, _ = _post(fl, "bank-b", _params(1.0), key="key-a")  # bank-a's key, claiming to be bank-b
    cases.append((r, 401, "signature does not match"))
    r, _ = _post(fl, "bank-a", _params(1.0), now=time.time() - 600)
    cases.append((r, 401, "clock is"))
    _, signed = _post(fl, "bank-a", _params(1.0))
    tampered = fl.post("/api/federated/rounds/1/updates", content=_params(9.0), headers=signed)
    cases.append((tampered, 401, "signature does not match"))
    ok, signed = _post(fl, "bank-b", _params(1.0))
    assert ok.status_code == 202
    replay = fl.post("/api/federated/rounds/1/updates", content=_params(1.0), headers=signed)
    cases.append((replay, 401, "nonce was already used"))
    r, _ = _post(fl, "bank-a", _params(2.0))  # a second, different update (the same one again is a retry: 202)
    cases.append((r, 409, "already sent"))
    r, _ = _post(fl, "bank-c", to_wire({"coef": np.zeros(5, np.float32)}))
    cases.append((r, 422, "do not match"))
    r, _ = _post(fl, "bank-c", _params(1.0), round_number=7)
    cases.append((r, 404, "does not exist"))
    r = fl.post("/api/federated/rounds/1/updates", content=_params(1.0), headers={"x-fl-examples": "1"})
    cases.append((r, 422, "x-fl-bank"))  # unsigned: the signing headers are required
    r = fl.post("/api/federated/rounds/1/aggregate", headers={"x-fl-admin-key": "wrong"})
    cases.append((r, 401, "admin key"))
    for response, status, words in cases:
        assert response.status_code == status, (response.status_code, response.text)
        assert words in json.dumps(response.json()), response.text


def test_update_for_a_closed_round_is_409(fl):
    for bank in ("bank-a", "bank-b", "bank-c"):
        _post(fl, bank, _params(1.0))
    r, _ = _post(fl, "bank-d", _params(1.0))
    assert r.status_code == 409 and "closed, not open" in r.json()["detail"]


def test_admin_aggregate_waits_for_enough_updates(fl):
    _post(fl, "bank-a", _params(1.0))
    r = fl.post("/api/federated/rounds/1/aggregate", headers={"x-fl-admin-key": "admin-secret"})
    assert r.status_code == 200 and r.json()["status"] == "open" and "1 of 3" in r.json()["why"]
    from shared.adapters.audit import AuditLog, admin_actor
    from shared.bootstrap import bootstrap

    [call] = [e for e in AuditLog(bootstrap().blob_store).entries() if e.act == "admin_call"]
    assert call.actor == admin_actor("admin-secret") and "admin-secret" not in json.dumps(call.to_dict())
    assert call.reason == "forced aggregation of round 1" and call.details["status"] == "open"


def test_concurrent_banks_over_http(fl, monkeypatch):
    results: list[int] = []

    def send(bank: str, value: float) -> None:
        with httpx.Client(base_url=str(fl.base_url), timeout=60) as http:
            results.append(_post(http, bank, _params(value))[0].status_code)

    threads = [threading.Thread(target=send, args=(b, float(i))) for i, b in enumerate(list(KEYS)[:3])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [202, 202, 202]
    status = fl.get("/api/federated/rounds/1").json()
    assert status["status"] == "closed" and len(status["participants"]) == 3
    assert fl.get("/api/federated/rounds/2").json()["status"] == "open"


# ---- issue 18: hostile banks over HTTP (the state machine's own defences are in tests/unit/test_federated_attacks.py)


def test_one_key_cannot_post_as_several_spellings_of_its_bank(fl):
    assert _post(fl, "bank-a", _params(1.0))[0].status_code == 202
    for spelling in ("Bank-a", "BANK-A"):
        r, _ = _post(fl, spelling, _params(2.0), key="key-a")
        assert r.status_code == 409 and "bank bank-a already sent" in r.json()["detail"]
    status = fl.get("/api/federated/rounds/1").json()
    assert list(status["participants"]) == ["bank-a"] and status["status"] == "open"


def _signed(bank: str, body: bytes, extra: dict[str, str], *, round_number: int = 1) -> dict[str, str]:
    path = f"/api/federated/rounds/{round_number}/updates"
    return sign(KEYS[bank].encode(), "POST", path, body, bank=bank, now=time.time(), extra=extra)


@pytest.mark.parametrize(
    ("examples", "metrics", "status", "words"),
    [
        ("9" * 400, '{"auc": 0.9}', 422, "x-fl-examples"),  # before: float() overflow, round stuck in aggregating
        ("0", '{"auc": 0.9}', 422, "x-fl-examples"),
        ("12.5", '{"auc": 0.9}', 422, "x-fl-examples"),
        ("100", '{"auc": NaN}', 422, "x-fl-metrics"),  # before: stored, then every GET of the round failed
        ("100", '{"auc": 1e999}', 422, "x-fl-metrics"),
        ("100", "[" * 8_000, 422, "x-fl-metrics"),  # before: RecursionError, a 500
    ],
)
def test_signed_headers_outside_their_declared_syntax_are_422_and_the_round_still_closes(
    fl, examples, metrics, status, words
):
    body = _params(1.0)
    r = fl.post(
        "/api/federated/rounds/1/updates",
        content=body,
        headers=_signed("bank-a", body, {"x-fl-examples": examples, "x-fl-metrics": metrics}),
    )
    assert r.status_code == status, r.text
    assert words in json.dumps(r.json()).lower()
    for bank in ("bank-a", "bank-b", "bank-c"):
        assert _post(fl, bank, _params(1.0))[0].status_code == 202
    assert fl.get("/api/federated/rounds/1").json()["status"] == "closed"


def test_odd_signature_headers_are_401_with_a_reason_not_500(fl):
    body = _params(1.0)
    good = _signed("bank-a", body, {"x-fl-examples": "100", "x-fl-metrics": "{}"})
    for name, value, words in (
        ("X-FL-Signature", "\xe9".encode("latin-1") * 64, "x-fl-signature"),  # before: TypeError (compare_digest)
        ("X-FL-Timestamp", "nan", "x-fl-timestamp"),  # before: nan passed the skew check
    ):
        headers = {**good, name: value}
        r = fl.post("/api/federated/rounds/1/updates", content=body, headers=headers)
        assert r.status_code in (401, 422), r.text
        assert words in json.dumps(r.json()).lower()
    assert fl.get("/api/federated/rounds/1").json()["participants"] == []


def test_a_signed_header_given_twice_is_refused(fl):
    """Before: the signature read one value, FastAPI another."""
    body = _params(1.0)
    signed = _signed("bank-a", body, {"x-fl-examples": "10", "x-fl-metrics": "{}"})
    headers = [*signed.items(), ("X-FL-Examples", "1000000000")]
    r = fl.post("/api/federated/rounds/1/updates", content=body, headers=headers)
    assert r.status_code == 401 and "given more than once" in r.json()["detail"]
    assert fl.get("/api/federated/rounds/1").json()["participants"] == []


def test_a_body_declaring_billions_of_values_is_422_before_it_is_read(fl):
    header = json.dumps({"coef": {"dtype": "F32", "shape": [2**31], "data_offsets": [0, 2**33]}}).encode()
    r, _ = _post(fl, "bank-a", len(header).to_bytes(8, "little") + header + bytes(4_000_000))
    assert r.status_code == 422 and "parameters declared" in r.json()["detail"]


def test_a_client_of_wire_format_1_is_told_to_upgrade(fl):
    """fraudops-bank 0.1 asks for the model without X-FL-Wire and posts an .npz: both answer with the upgrade."""
    import io

    old = fl.get("/api/federated/model")
    assert old.status_code == 422 and "pip install -U fraudops-bank" in old.json()["detail"]
    assert fl.get("/api/federated/model", headers={"X-FL-Wire": "2"}).status_code == 200
    buf = io.BytesIO()
    np.savez(buf, coef=np.full(4, 1.0, np.float32), intercept=np.zeros(1, np.float32))
    r, _ = _post(fl, "bank-a", buf.getvalue())
    assert r.status_code == 422 and "wire format 1" in r.json()["detail"]


def test_a_throttled_key_vault_is_503_with_a_reason(fl, monkeypatch):
    from azure.core.exceptions import HttpResponseError

    from shared.adapters import bank_keys

    class Throttled:
        def get_secret(self, name):
            raise HttpResponseError("429 Too Many Requests")

    with monkeypatch.context() as patched:
        from shared.bootstrap import Services

        patched.setattr(Services, "bank_keys", property(lambda _services: bank_keys.KeyVaultKeys(Throttled())))
        r, _ = _post(fl, "bank-a", _params(1.0))
    assert r.status_code == 503 and "retry" in r.json()["detail"]
    assert _post(fl, "bank-a", _params(1.0))[0].status_code == 202  # the vault is back: the bank gets in
