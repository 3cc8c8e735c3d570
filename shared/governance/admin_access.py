"""Who may call the admin routes, and who the audit chain then says acted (issue 41: named people for admin acts).

Two doors, each with its own app role and its own local key: the governance routes (``/api/admin/...``: the
registry, customers' rights, the chain's check; role ``ADMIN_ENTRA_ROLE``, key ``ADMIN_KEY`` in
``X-Admin-Key``) and the federated admin routes (forcing a round's aggregation, a round's banks; role
``FL_ADMIN_ENTRA_ROLE``, key ``FL_ADMIN_KEY`` in ``X-FL-Admin-Key``).

- A person signs in with Entra ID and sends ``Authorization: Bearer <access token>``: the token is checked
  (``shared.adapters.entra``), the door's app role must be in its ``roles`` (403 otherwise), and the actor is
  ``entra:<object id>`` with the person's name.
- The shared keys are for local runs only (tests, ``fraudops serve``, the simulation): in production a key is
  refused (401) with the reason; production without Entra ID configured answers 503 naming the settings to
  set, since no credential could be accepted. Locally a key acts as ``admin key <fingerprint>``.

Pure policy: the token check is passed in, so a test can give any; errors carry their reason and the edge
(``api.errors``) turns them into statuses.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Protocol

from pydantic import SecretStr

from shared.adapters.entra import Principal
from shared.domain.audit import Actor
from shared.domain.config import AdminAccessConfig
from shared.domain.errors import ConfigurationError, NotAllowedError, NotSignedInError

SETTINGS_TO_SET = "ADMIN_ENTRA_TENANT_ID and ADMIN_ENTRA_AUDIENCE"
ENTRA_PREFIX = "entra:"


class TokenCheck(Protocol):
    """What checks a bearer token (``shared.adapters.entra.EntraTokens``)."""

    def principal(self, token: str) -> Principal: ...


@dataclass(frozen=True)
class Door:
    """One family of admin routes: the header of its local key and the settings of its key and role."""

    name: str
    header: str
    key_setting: str
    role_setting: str


GOVERNANCE = Door("governance", "X-Admin-Key", "ADMIN_KEY", "ADMIN_ENTRA_ROLE")
FEDERATED = Door("federated", "X-FL-Admin-Key", "FL_ADMIN_KEY", "FL_ADMIN_ENTRA_ROLE")  # layout: not a blob


class AdminAccess:
    """Decide who an admin call is from (an ``Actor`` for the audit chain) or refuse it with the reason."""

    def __init__(self, config: AdminAccessConfig, *, tokens: TokenCheck | None) -> None:
        self.config = config
        self.tokens = tokens

    @property
    def production(self) -> bool:
        return self.config.app_env == "production"

    def role(self, door: Door) -> str:
        return self.config.fl_admin_entra_role if door is FEDERATED else self.config.admin_entra_role

    def key(self, door: Door) -> SecretStr | None:
        return self.config.fl_admin_key if door is FEDERATED else self.config.admin_key

    def actor(self, door: Door, *, authorization: str | None, key: str | None) -> Actor:
        """Who calls ``door`` with these headers (``Authorization``, the door's key header); else the refusal:
        ``NotSignedInError`` (401), ``NotAllowedError`` (403), ``ConfigurationError`` (503)."""
        if authorization is not None:
            return self._person(door, authorization)
        if self.production:
            if self.tokens is None:
                raise self._not_configured()
            if key is not None:
                raise NotSignedInError(
                    f"admin keys are for local runs; sign in with Entra ID and send 'Authorization: Bearer <token>' "
                    f"({self._how(door)})"
                )
            raise NotSignedInError(
                f"sign in with Entra ID and send 'Authorization: Bearer <token>' ({self._how(door)})"
            )
        return self._key_holder(door, key)

    def _person(self, door: Door, authorization: str) -> Actor:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotSignedInError("the Authorization header must be 'Bearer <access token>' from Entra ID")
        if self.tokens is None:
            raise self._not_configured()
        principal = self.tokens.principal(token.strip())
        role = self.role(door)
        if role not in principal.roles:
            raise NotAllowedError(
                f"{principal.name or principal.oid} is signed in but lacks the app role {role} that the "
                f"{door.name} admin routes need; ask an owner of the app registration to assign it"
            )
        return Actor(f"{ENTRA_PREFIX}{principal.oid}", principal.name)

    def _key_holder(self, door: Door, given: str | None) -> Actor:
        from shared.adapters.audit import admin_actor

        configured = self.key(door)
        if (
            not configured
            or not given
            or not hmac.compare_digest(configured.get_secret_value().encode(), given.encode())
        ):
            hint = " (or sign in with Entra ID: Authorization: Bearer <token>)" if self.tokens is not None else ""
            raise NotSignedInError(f"the admin key ({door.header}) is missing or wrong{hint}")
        return Actor(admin_actor(given))

    def _how(self, door: Door) -> str:
        audience = self.config.audiences[0] if self.config.audiences else "the admin app registration"
        return f"a token for {audience} with the app role {self.role(door)}"

    def _not_configured(self) -> ConfigurationError:
        if self.production:
            return ConfigurationError(
                "admin sign-in with Entra ID is not configured, and admin keys are for local runs: "
                f"set {SETTINGS_TO_SET}"
            )
        return ConfigurationError(
            f"a bearer token was sent but Entra ID admin sign-in is not configured: set {SETTINGS_TO_SET}, or send the "
            "admin key locally"
        )
