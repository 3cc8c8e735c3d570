"""Entra ID access tokens of the admin routes, checked with PyJWT against the tenant's published signing keys.

A token is accepted only if every one of these holds, and each refusal says which did not, in one line:

- it is a JWT signed with RS256 (``alg`` is read from the header first: ``none``, HS256 and every other
  algorithm are refused before any key is looked at, and the decode itself allows RS256 alone);
- its key (``kid``) is one of the tenant's (the JWKS at ``ADMIN_ENTRA_JWKS_URL``, by default
  ``https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys``, fetched by ``PyJWKClient`` and cached)
  and its signature holds under that key;
- its issuer is the tenant's, v2.0 (``https://login.microsoftonline.com/<tenant>/v2.0``) or v1
  (``https://sts.windows.net/<tenant>/``), and its audience one of ``ADMIN_ENTRA_AUDIENCE``;
- it is within its ``nbf``..``exp`` window, give or take ``LEEWAY_SECONDS`` of clock skew;
- it names a principal (``oid``).

What roles the caller needs is the policy's (``shared.governance.admin_access``), not this module's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.domain.errors import NotSignedInError, RetryLaterError

log = logging.getLogger(__name__)

ALGORITHM = "RS256"  # what Entra ID signs access tokens with
LEEWAY_SECONDS = 60  # clock skew between Entra ID and this instance
JWKS_TIMEOUT_SECONDS = 5.0
V2_ISSUER = "https://login.microsoftonline.com/{tenant}/v2.0"
V1_ISSUER = "https://sts.windows.net/{tenant}/"
JWKS_URL = "https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys"


@dataclass(frozen=True)
class Principal:
    """Who a valid token names: their object id, the name to show, and their app roles."""

    oid: str
    name: str | None
    roles: frozenset[str]


class EntraTokens:
    """Checks Entra ID access tokens of one tenant and audience; one per process (its key cache is shared)."""

    def __init__(
        self, *, tenant_id: str, audiences: Sequence[str], jwks_url: str | None = None, leeway: float = LEEWAY_SECONDS
    ) -> None:
        from jwt import PyJWKClient

        if not audiences:
            raise ValueError("at least one audience is needed")
        self.tenant_id = tenant_id.lower()
        self.audiences = list(audiences)
        self.issuers = (V2_ISSUER.format(tenant=self.tenant_id), V1_ISSUER.format(tenant=self.tenant_id))
        self.leeway = leeway
        self.keys = PyJWKClient(
            jwks_url or JWKS_URL.format(tenant=self.tenant_id),
            cache_keys=True,
            lifespan=3600,  # Entra ID rolls its keys over weeks; an unknown kid refetches (at most every 30 s)
            timeout=JWKS_TIMEOUT_SECONDS,
        )

    def principal(self, token: str) -> Principal:
        """The principal ``token`` names; ``NotSignedInError`` (with why) when it does not hold,
        ``RetryLaterError`` when the tenant's keys cannot be read now."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise NotSignedInError(
                "the bearer token is not a JWT; sign in with Entra ID and send its access token"
            ) from None
        algorithm = header.get("alg")
        if algorithm != ALGORITHM:
            raise NotSignedInError(
                f"the token is signed with {algorithm!r}; only {ALGORITHM} Entra ID tokens are taken"
            )
        key = self._key(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audiences,
                issuer=self.issuers,
                leeway=self.leeway,
                options={"require": ["exp", "nbf", "iss", "aud"], "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise NotSignedInError(_why(exc, self.audiences, self.tenant_id)) from None
        oid = claims.get("oid")
        if not isinstance(oid, str) or not oid:
            raise NotSignedInError("the token names no principal (no 'oid' claim): ask for an access token")
        roles = claims.get("roles")
        return Principal(
            oid=oid,
            name=_name(claims),
            roles=frozenset(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else frozenset(),
        )

    def _key(self, token: str) -> Any:
        """The tenant's public key the token names (``kid``), fetched or from the cache."""
        from jwt import PyJWKClientConnectionError, PyJWKClientError, PyJWTError

        try:
            return self.keys.get_signing_key_from_jwt(token).key
        except PyJWKClientConnectionError as exc:
            log.error("admin sign-in: the tenant's signing keys could not be read: %s", exc)
            raise RetryLaterError(
                "the tenant's signing keys cannot be read now, so no token can be checked; try again shortly"
            ) from None
        except PyJWKClientError:
            raise NotSignedInError(
                "the token's signing key (kid) is not one of the tenant's: a token of another tenant or a forged one"
            ) from None
        except PyJWTError:
            raise NotSignedInError(
                "the token does not hold (malformed); sign in with Entra ID and send its access token"
            ) from None


def _name(claims: dict[str, Any]) -> str | None:
    """The name a person signed in with (``name``, else their sign-in name); an application's id when no person."""
    for claim in ("name", "preferred_username", "upn", "unique_name"):
        value = claims.get(claim)
        if isinstance(value, str) and value:
            return value[:200]
    app = claims.get("azp") or claims.get("appid")
    return f"application {app}" if isinstance(app, str) and app else None


def _why(exc: Exception, audiences: Sequence[str], tenant: str) -> str:
    """One line for a person: which check the token failed and what to do."""
    import jwt

    if isinstance(exc, jwt.ExpiredSignatureError):
        return "the token has expired; get a new one (az account get-access-token, or sign in again)"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "the token is not valid yet (its 'nbf' is in the future); check the clocks or get a new token"
    if isinstance(exc, jwt.InvalidAudienceError):
        return f"the token is for another audience; ask for a token for {audiences[0]}"
    if isinstance(exc, jwt.InvalidIssuerError):
        return f"the token was issued by another tenant or authority; sign in to tenant {tenant}"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "the token's signature does not hold under the tenant's key: it was altered or forged"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token lacks the '{exc.claim}' claim; ask Entra ID for an access token"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return f"the token is not signed with {ALGORITHM}; only Entra ID tokens are taken"
    return "the token does not hold (malformed); sign in with Entra ID and send its access token"
