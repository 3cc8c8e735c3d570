"""Who may call the admin routes (``shared.governance.admin_access``), with a fake token check, and the named audit
line: a person's name is hashed with the line, and lines without one (every line before issue 41) still verify."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from shared.adapters.audit import admin_actor
from shared.adapters.entra import Principal
from shared.domain.audit import GENESIS, Act, Actor, AuditLine, seal, verify
from shared.domain.config import AdminAccessConfig
from shared.domain.errors import ConfigurationError, NotAllowedError, NotSignedInError
from shared.governance.admin_access import FEDERATED, GOVERNANCE, AdminAccess

PERSON = Principal(oid="6a7b8c9d", name="Jeanne Dupont", roles=frozenset({"Fraudops.Admin"}))


class FakeTokens:
    """Every token names ``PERSON`` except ``"bad"``, which does not hold."""

    def principal(self, token: str) -> Principal:
        if token == "bad":
            raise NotSignedInError("the token's signature does not hold")
        return PERSON


def _access(env: str = "development", *, entra: bool = True) -> AdminAccess:
    config = AdminAccessConfig(
        app_env=env,  # type: ignore[arg-type]
        admin_key=SecretStr("k"),
        fl_admin_key=SecretStr("fk"),
        admin_entra_tenant_id="t" if entra else None,
        admin_entra_audience="api://fraudops-admin" if entra else None,
        admin_entra_role="Fraudops.Admin",
        fl_admin_entra_role="Fraudops.FederatedAdmin",
        admin_entra_jwks_url=None,
    )
    return AdminAccess(config, tokens=FakeTokens() if entra else None)


def test_a_person_with_the_role_is_the_actor_and_one_without_is_refused():
    assert _access().actor(GOVERNANCE, authorization="Bearer x", key=None) == Actor("entra:6a7b8c9d", "Jeanne Dupont")
    with pytest.raises(NotAllowedError, match=r"lacks the app role Fraudops\.FederatedAdmin"):
        _access().actor(FEDERATED, authorization="Bearer x", key=None)
    with pytest.raises(NotSignedInError, match="does not hold"):
        _access().actor(GOVERNANCE, authorization="Bearer bad", key=None)
    with pytest.raises(NotSignedInError, match="'Bearer <access token>'"):
        _access().actor(GOVERNANCE, authorization="Basic x", key=None)


def test_keys_work_locally_and_are_refused_in_production():
    assert _access().actor(GOVERNANCE, authorization=None, key="k") == Actor(admin_actor("k"))
    assert _access(entra=False).actor(FEDERATED, authorization=None, key="fk") == Actor(admin_actor("fk"))
    with pytest.raises(NotSignedInError, match=r"admin key \(X-FL-Admin-Key\) is missing or wrong"):
        _access().actor(FEDERATED, authorization=None, key="k")  # the other door's key
    with pytest.raises(NotSignedInError, match="admin keys are for local runs; sign in with Entra ID"):
        _access("production").actor(GOVERNANCE, authorization=None, key="k")
    for authorization, key in ((None, "k"), (None, None), ("Bearer x", None)):
        with pytest.raises(ConfigurationError, match="set ADMIN_ENTRA_TENANT_ID and ADMIN_ENTRA_AUDIENCE"):
            _access("production", entra=False).actor(GOVERNANCE, authorization=authorization, key=key)
    with pytest.raises(ConfigurationError, match="send the admin key locally"):
        _access(entra=False).actor(GOVERNANCE, authorization="Bearer x", key=None)


def test_a_named_line_hashes_the_name_and_unnamed_lines_keep_their_old_form():
    old = seal(Act("promotion", "admin key 3f2a", "before issue 41"), seq=0, prev=GENESIS)
    named = seal(Act("rollback", Actor("entra:6a7b8c9d", "Jeanne Dupont"), "incident"), seq=1, prev=old.hash)
    assert "actor_name" not in json.loads(old.to_json())  # unnamed: the very bytes of before
    assert json.loads(named.to_json())["actor_name"] == "Jeanne Dupont" and named.who.endswith("(Jeanne Dupont)")
    assert AuditLine.parse(named.to_json()) == named
    chain = old.to_json() + named.to_json()
    assert verify([("chain/2026-12.jsonl", chain)]).intact
    renamed = chain.replace(b"Jeanne Dupont", b"Someone Else")
    broken = verify([("chain/2026-12.jsonl", renamed)]).broken
    assert broken is not None and broken.seq == 1 and "changed after it was written" in broken.reason
    with pytest.raises(ValueError, match="fields"):
        AuditLine.parse(json.dumps({**json.loads(old.to_json()), "actor_email": "x"}))


def test_the_tenant_and_the_audience_go_together_and_the_tenant_is_an_id(monkeypatch):
    from shared.domain.settings import load_settings

    monkeypatch.setenv("ADMIN_ENTRA_TENANT_ID", "0b5e7f4c-1d2a-4c3b-9e8f-123456789abc")
    with pytest.raises(ConfigurationError, match="ADMIN_ENTRA_TENANT_ID and ADMIN_ENTRA_AUDIENCE go together"):
        load_settings()
    monkeypatch.setenv("ADMIN_ENTRA_AUDIENCE", "api://fraudops-admin, 5d1c9a2e-7b3f-4e6d-8a9b-0c1d2e3f4a5b")
    config = load_settings().admin_access
    assert config.entra and config.audiences == ("api://fraudops-admin", "5d1c9a2e-7b3f-4e6d-8a9b-0c1d2e3f4a5b")
    monkeypatch.setenv("ADMIN_ENTRA_TENANT_ID", "contoso.onmicrosoft.com")
    with pytest.raises(ConfigurationError, match="ADMIN_ENTRA_TENANT_ID"):
        load_settings()
