"""Signed requests from banks: HMAC-SHA256 over method, path, timestamp, nonce, extra signed headers and body hash.

Headers: ``X-FL-Bank``, ``X-FL-Timestamp`` (Unix seconds), ``X-FL-Nonce`` and ``X-FL-Signature``
(hex). A request is refused (401) for an unknown bank, a bad signature, a clock skew over
``max_skew`` seconds or a nonce seen before; nonces are remembered in Blob, create-only, so a
replay is refused by every instance.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from shared.domain.errors import BlobExistsError, FraudOpsError

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.domain.settings import Settings

log = logging.getLogger(__name__)

MAX_SKEW_SECONDS = 300
SIGNED_EXTRA = ("x-fl-examples", "x-fl-metrics")


class AuthError(FraudOpsError):
    """The request is not signed by a known bank (401)."""


class KeyStore(Protocol):
    def get(self, bank: str) -> bytes | None: ...


def canonical(method: str, path: str, timestamp: str, nonce: str, body: bytes, extra: Mapping[str, str]) -> bytes:
    parts = [
        method.upper(),
        path,
        timestamp,
        nonce,
        *(f"{k}:{extra.get(k, '')}" for k in SIGNED_EXTRA),
        hashlib.sha256(body).hexdigest(),
    ]
    return "\n".join(parts).encode()


def sign(
    key: bytes, method: str, path: str, body: bytes, *, bank: str, now: float, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The headers a bank sends (``extra`` holds the other signed headers, lower-case names)."""
    timestamp, nonce = str(int(now)), secrets.token_hex(16)
    extra = dict(extra or {})
    signature = hmac.new(key, canonical(method, path, timestamp, nonce, body, extra), hashlib.sha256).hexdigest()
    return {
        "X-FL-Bank": bank,
        "X-FL-Timestamp": timestamp,
        "X-FL-Nonce": nonce,
        "X-FL-Signature": signature,
        **{k: v for k, v in extra.items()},
    }


def verify(
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    *,
    keys: KeyStore,
    store: BlobStore,
    now: float,
    max_skew: float = MAX_SKEW_SECONDS,
) -> str:
    """The bank that signed the request; ``AuthError`` with the reason otherwise."""
    bank = headers.get("x-fl-bank", "")
    timestamp, nonce, signature = (headers.get(h, "") for h in ("x-fl-timestamp", "x-fl-nonce", "x-fl-signature"))
    if not (bank and timestamp and nonce and signature):
        raise AuthError("the request is not signed (X-FL-Bank, X-FL-Timestamp, X-FL-Nonce, X-FL-Signature)")
    key = keys.get(bank)
    if key is None:
        raise AuthError(f"unknown bank {bank!r}")
    extra = {k: headers.get(k, "") for k in SIGNED_EXTRA}
    expected = hmac.new(key, canonical(method, path, timestamp, nonce, body, extra), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise AuthError("the signature does not match the request")
    try:
        skew = abs(now - float(timestamp))
    except ValueError:
        raise AuthError("X-FL-Timestamp is not a number of seconds") from None
    if skew > max_skew:
        raise AuthError(f"the request's clock is {skew:.0f} s off (at most {max_skew:.0f} s allowed)")
    if len(nonce) > 128 or not nonce.isalnum():
        raise AuthError("X-FL-Nonce must be letters and digits, at most 128")
    try:
        store.put_bytes("federated", f"_nonces/{bank}/{nonce}", b"", overwrite=False)
    except BlobExistsError:
        raise AuthError("this nonce was already used (a replayed request)") from None
    return bank


class SettingsKeys:
    """Bank keys from ``FL_BANK_KEYS`` (JSON ``{"bank": "key"}``), for local runs without Key Vault."""

    def __init__(self, raw: str | None) -> None:
        try:
            self._keys = {str(k): str(v).encode() for k, v in json.loads(raw or "{}").items()}
        except (ValueError, AttributeError):
            log.error("FL_BANK_KEYS is not a JSON object of bank ids to keys; no bank can sign in")
            self._keys = {}

    def get(self, bank: str) -> bytes | None:
        return self._keys.get(bank)


class KeyVaultKeys:
    """Bank keys as Key Vault secrets ``fl-bank-<id>``, read with the app's identity, cached per process."""

    def __init__(self, vault_url: str, client_id: str | None = None) -> None:
        from azure.keyvault.secrets import SecretClient

        from shared.adapters.identity import azure_credential

        self._client = SecretClient(vault_url, azure_credential(client_id))
        self._cache: dict[str, bytes] = {}

    def get(self, bank: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        if bank not in self._cache:
            if not bank.replace("-", "").isalnum():
                return None
            try:
                value = self._client.get_secret(f"fl-bank-{bank}").value
            except ResourceNotFoundError:
                return None  # not cached: a key added later works without a restart
            if not value:
                return None
            self._cache[bank] = value.encode()
        return self._cache[bank]


def add_bank_key(settings: Settings, bank: str) -> dict[str, str]:
    """Create a bank's signing key: in Key Vault as ``fl-bank-<bank>`` if configured, else returned (FL_BANK_KEYS)."""
    if not bank or not bank.replace("-", "").isalnum() or len(bank) > 100:
        raise AuthError("a bank id is letters, digits and dashes, at most 100 characters")
    key = secrets.token_urlsafe(32)
    if settings.key_vault_url:
        from azure.keyvault.secrets import SecretClient

        from shared.adapters.identity import azure_credential

        client = SecretClient(
            settings.key_vault_url,
            azure_credential(settings.storage_credential_client_id),
        )
        client.set_secret(f"fl-bank-{bank}", key, content_type="fraudops federated bank key")
        return {
            "bank": bank,
            "stored_in": f"{settings.key_vault_url} secret fl-bank-{bank}",
            "hand_over": "read it from Key Vault and give it to the bank over a secure channel",
        }
    return {
        "bank": bank,
        "key": key,
        "stored_in": "nowhere (no KEY_VAULT_URL): add it to FL_BANK_KEYS",
        "hand_over": "give the key to the bank; it sets FL_BANK_KEY",
    }


@lru_cache(maxsize=4)
def get_keys(settings: Settings) -> KeyStore:
    if settings.key_vault_url:
        return KeyVaultKeys(settings.key_vault_url, settings.storage_credential_client_id)
    return SettingsKeys(settings.fl_bank_keys)
