"""Admin routes behind Entra ID (issue 41), over real HTTP: a tenant of our own (an RSA key made here, its JWKS
served on a loopback socket), the API on uvicorn pointed at it, and every attack on the token performed and
refused with a one-line reason. A valid token rolls the champion back and the audit chain names the person
(object id and name) and still verifies; the admin keys are refused in production."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import SecretStr

from cli.devtools.models import publish_synthetic_model
from cli.server import running_server
from shared.adapters.audit import AuditLog, admin_actor

TENANT = "0b5e7f4c-1d2a-4c3b-9e8f-123456789abc"
OTHER_TENANT = "9f9f9f9f-0000-4000-8000-000000000000"
AUDIENCE = "api://fraudops-admin-test"
CLIENT_ID = "5d1c9a2e-7b3f-4e6d-8a9b-0c1d2e3f4a5b"
OID = "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d"
NAME = "Jeanne Dupont"
KID = "test-key-1"
KEY = "local-governance-key-for-tests"
VERSIONS = ("20261101T000000Z-aaaaaaaa", "20261102T000000Z-bbbbbbbb", "20261103T000000Z-cccccccc")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Tenant:
    """An Entra ID tenant as far as a token check can see: a signing key, its JWKS on 127.0.0.1, tokens."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwks = json.dumps({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}).encode()
        self.fetches = 0
        self.url = ""

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        base: dict[str, Any] = {
            "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
            "aud": AUDIENCE,
            "tid": TENANT,
            "oid": OID,
            "name": NAME,
            "preferred_username": "jeanne.dupont@bank.example",
            "roles": ["Fraudops.Admin"],
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        }
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    def token(self, *, key: Any = None, kid: str = KID, **changes: Any) -> str:
        return jwt.encode(self.claims(**changes), key or self.key, algorithm="RS256", headers={"kid": kid})

    def bearer(self, **changes: Any) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(**changes)}"}


@pytest.fixture(scope="module")
def tenant() -> Iterator[Tenant]:
    found = Tenant()

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found.fetches += 1
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(found.jwks)))
            self.end_headers()
            self.wfile.write(found.jwks)

        def log_message(self, *_: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    thread = threading.Thread(target=server.serve_forever, name="jwks", daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_address[1]}/{TENANT}/discovery/v2.0/keys"
    yield found
    server.shutdown()
    server.server_close()


def _entra(tenant: Tenant, **more: Any) -> dict[str, Any]:
    return {
        "admin_entra_tenant_id": TENANT,
        "admin_entra_audience": f"{AUDIENCE},{CLIENT_ID}",
        "admin_entra_jwks_url": tenant.url,
        "admin_key": SecretStr(KEY),
        "fl_admin_key": SecretStr(KEY + "-fl"),
        **more,
    }


@pytest.fixture
def local(store, settings, tenant) -> Iterator[httpx.Client]:
    """A local run with Entra ID admin sign-in configured (and the local keys): three published versions."""
    for i, version in enumerate(VERSIONS):
        publish_synthetic_model(store, settings.model_name, version=version, trees=3, rows=3000, seed=i)
        time.sleep(0.01)
    served = settings.model_copy(update=_entra(tenant))
    with running_server(settings=served) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield http


@pytest.fixture
def production(store, settings, tenant) -> Iterator[httpx.Client]:
    """APP_ENV=production with Entra ID configured (model_copy: Settings would refuse Azurite in production, and
    only the admin policy is under test)."""
    served = settings.model_copy(update=_entra(tenant, app_env="production"))
    with running_server(settings=served) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield http


def _refused(r: httpx.Response, status: int, words: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    detail = r.json()["detail"]
    assert words in detail and "\n" not in detail, detail


# ---- the attacks: each refused, with a reason --------------------------------------------------
def test_tokens_that_do_not_hold_are_refused_each_with_its_reason(local, tenant):
    fetched = tenant.fetches
    wrong_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    header = {"alg": "none", "typ": "JWT", "kid": KID}
    unsigned = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(tenant.claims()).encode())}."
    hs_header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KID}).encode())
    hs_body = f"{hs_header}.{_b64(json.dumps(tenant.claims()).encode())}"
    hs256 = f"{hs_body}.{_b64(hmac.new(tenant.public_pem, hs_body.encode(), hashlib.sha256).digest())}"
    now = int(time.time())
    attacks = {
        "wrong audience": (tenant.bearer(aud="api://another-app"), 401, "another audience"),
        "another tenant": (
            tenant.bearer(iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0", tid=OTHER_TENANT),
            401,
            "another tenant",
        ),
        "another authority": (tenant.bearer(iss=f"https://evil.example/{TENANT}/v2.0"), 401, "another tenant"),
        "expired": (tenant.bearer(iat=now - 7200, nbf=now - 7200, exp=now - 600), 401, "expired"),
        "not yet valid": (tenant.bearer(nbf=now + 600, exp=now + 4000), 401, "not valid yet"),
        "no expiry": (tenant.bearer(exp=None), 401, "'exp' claim"),
        "no role": (tenant.bearer(roles=None), 403, "lacks the app role Fraudops.Admin"),
        "another role": (tenant.bearer(roles=["Fraudops.Reader"]), 403, "lacks the app role"),
        "no object id": (tenant.bearer(oid=None), 401, "no 'oid' claim"),
        "alg none": ({"authorization": f"Bearer {unsigned}"}, 401, "signed with 'none'"),
        "HS256 with the public key as secret": ({"authorization": f"Bearer {hs256}"}, 401, "signed with 'HS256'"),
        "another key, same kid": (
            {"authorization": f"Bearer {tenant.token(key=wrong_key)}"},
            401,
            "signature does not hold",
        ),
        "unknown kid": ({"authorization": f"Bearer {tenant.token(kid='not-ours')}"}, 401, "not one of the tenant's"),
        "garbage": ({"authorization": "Bearer not.a.token"}, 401, "not a JWT"),
        "not bearer": ({"authorization": f"Basic {_b64(b'user:password')}"}, 401, "'Bearer <access token>'"),
    }
    for name, (headers, status, words) in attacks.items():
        r = local.get("/api/admin/models", headers=headers)
        assert r.status_code == status, (name, r.text)
        _refused(r, status, words)
        # the route's own dependency refuses too, not only the gate: the federated admin route has no gate
        r = local.get("/api/federated/rounds/1/banks", headers=headers)
        assert r.status_code in (401, 403), (name, r.text)
    # a refused POST never reaches the body: a large one is refused as fast as a small one
    r = local.post("/api/admin/champion/rollback", content=b" " * 2_000_000, headers=tenant.bearer(roles=None))
    _refused(r, 403, "lacks the app role")
    # the tenant's keys were read once (and once more at most for the unknown kid), not once per request
    assert tenant.fetches - fetched <= 2


def test_the_federated_admin_routes_demand_their_own_role(local, tenant):
    governance_only = tenant.bearer(roles=["Fraudops.Admin"])
    _refused(local.post("/api/federated/rounds/1/aggregate", headers=governance_only), 403, "Fraudops.FederatedAdmin")
    federated = tenant.bearer(roles=["Fraudops.FederatedAdmin"])
    r = local.get("/api/federated/rounds/1/banks", headers=federated)
    assert r.status_code not in (401, 403), r.text  # signed in with the role: the round's own answer (404 here)
    _refused(local.get("/api/admin/models", headers=federated), 403, "lacks the app role Fraudops.Admin")


def test_the_admin_keys_are_refused_in_production(production, tenant):
    for path, header, key in (
        ("/api/admin/models", "x-admin-key", KEY),
        ("/api/federated/rounds/1/banks", "x-fl-admin-key", KEY + "-fl"),
    ):
        _refused(production.get(path, headers={header: key}), 401, "admin keys are for local runs; sign in with Entra")
        _refused(production.get(path), 401, "sign in with Entra ID")
    r = production.get("/api/admin/models", headers=tenant.bearer())
    assert r.status_code == 200, r.text  # the person with the role is let in


def test_production_without_entra_id_says_which_settings_to_set(store, settings, tenant):
    served = settings.model_copy(update={"app_env": "production", "admin_key": SecretStr(KEY)})
    with running_server(settings=served) as url, httpx.Client(base_url=url, timeout=60) as http:
        for headers in ({"x-admin-key": KEY}, {}, tenant.bearer()):
            r = http.get("/api/admin/models", headers=headers)
            _refused(r, 503, "set ADMIN_ENTRA_TENANT_ID and ADMIN_ENTRA_AUDIENCE")


# ---- the person acts, and the chain names them ---------------------------------------------------
def test_a_signed_in_person_rolls_back_and_the_audit_chain_names_them(local, tenant, store):
    assert all(line.actor_name is None for line in AuditLog(store).entries())  # so far: services, no names
    rollback = {"reason": "incident 41", "to": VERSIONS[1]}
    r = local.post("/api/admin/champion/rollback", json=rollback, headers=tenant.bearer())
    assert r.status_code == 200 and r.json()["champion"] == VERSIONS[1], r.text
    # a v1 token (issuer sts.windows.net, audience the client id) of the same tenant is taken too
    v1 = tenant.bearer(
        iss=f"https://sts.windows.net/{TENANT}/",
        aud=CLIENT_ID,
        name=None,
        preferred_username=None,
        upn="j.dupont@bank.example",
    )
    r = local.post(f"/api/admin/models/{VERSIONS[0]}/deprecate", json={"reason": "leaky feature"}, headers=v1)
    assert r.status_code == 200 and r.json()["actor"] == f"entra:{OID} (j.dupont@bank.example)", r.text
    # locally the key still works, and acts as the key's fingerprint
    r = local.get("/api/admin/models", headers={"x-admin-key": KEY})
    assert r.status_code == 200
    shown = local.get(f"/api/admin/models/{VERSIONS[1]}", headers=tenant.bearer()).json()
    assert shown["history"][-1]["actor"] == f"entra:{OID} ({NAME})"

    chain = AuditLog(store)
    lines = chain.entries()
    moved = next(line for line in lines if line.act == "rollback")
    assert moved.actor == f"entra:{OID}" and moved.actor_name == NAME
    assert moved.details["version"] == VERSIONS[1] and moved.reason == "incident 41"
    stored = json.loads(moved.to_json())
    assert stored["actor"] == f"entra:{OID}" and stored["actor_name"] == NAME  # in the hashed line itself
    deprecated = next(line for line in lines if line.act == "deprecation")
    assert deprecated.actor_name == "j.dupont@bank.example"
    listed, looked = lines[-2:]  # admin reads are audited: by the key, then by the person
    assert listed.actor == admin_actor(KEY) and listed.actor_name is None
    assert looked.actor == f"entra:{OID}" and looked.actor_name == NAME
    report = chain.verify()
    assert report.intact and report.lines == len(lines), report.broken
    over_http = local.get("/api/admin/audit/verify", headers=tenant.bearer()).json()
    assert over_http["intact"] and over_http["lines"] == len(lines) + 1  # the check is itself audited

    # a name changed after the fact breaks the line's hash: the name is part of what the chain protects
    part, content = next(chain.parts())
    forged = content.replace(NAME.encode(), b"Someone Else")
    from shared.domain.audit import verify

    broken = verify([(part, forged)]).broken
    assert broken is not None and "changed after it was written" in broken.reason
