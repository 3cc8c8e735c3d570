"""Where the banks' signing keys live: Key Vault secrets ``fl-bank-<id>`` in Azure, ``FL_BANK_KEYS`` locally.

Key Vault is a remote, throttled service and keys get revoked, so its store caches with a time to
live: a key found is reused for ``ttl`` seconds (a revoked bank loses access within that time on
every warm instance), and a key *not* found is remembered for ``negative_ttl`` seconds, so an
unknown bank id costs one vault call per window, not one per request. The cache holds at most
``MAX_CACHED`` ids (least recently used go first), so random ids cannot grow it without bound. A vault
that throttles or cannot be reached is ``RetryLaterError`` (503 at the edge), never a crash and never
"unknown bank"; a bank whose key was read before keeps its (expired) key meanwhile, so a throttling
caused by others does not lock out the banks that were already talking.
Ids are canonical (``shared.federated.banks.bank_id``) before they get here.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from shared.domain.errors import RetryLaterError

if TYPE_CHECKING:
    from shared.domain.config import FederatedConfig
    from shared.domain.settings import Settings

log = logging.getLogger(__name__)

SECRET_PREFIX = "fl-bank-"
TTL_SECONDS = 300.0
NEGATIVE_TTL_SECONDS = 60.0
MAX_CACHED = 10_000


class KeyStore(Protocol):
    """The key of a (canonical) bank id, or ``None`` for a bank with no key."""

    def get(self, bank: str) -> bytes | None: ...


class SecretReader(Protocol):
    """What the store needs of ``azure.keyvault.secrets.SecretClient``."""

    def get_secret(self, name: str) -> Any: ...


class SettingsKeys:
    """Bank keys from ``FL_BANK_KEYS`` (JSON ``{"bank": "key"}``), for local runs without Key Vault."""

    def __init__(self, raw: str | None) -> None:
        try:
            self._keys = {str(k).lower(): str(v).encode() for k, v in json.loads(raw or "{}").items()}
        except (ValueError, AttributeError):
            log.error("FL_BANK_KEYS is not a JSON object of bank ids to keys; no bank can sign in")
            self._keys = {}

    def get(self, bank: str) -> bytes | None:
        return self._keys.get(bank)


class KeyVaultKeys:
    """Bank keys read from Key Vault through ``client``, cached for ``ttl`` s (misses for ``negative_ttl`` s)."""

    def __init__(
        self,
        client: SecretReader,
        *,
        ttl: float = TTL_SECONDS,
        negative_ttl: float = NEGATIVE_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_cached: int = MAX_CACHED,
    ) -> None:
        self._client, self._ttl, self._negative_ttl, self._clock = client, ttl, negative_ttl, clock
        self._max_cached = max_cached
        self._cache: OrderedDict[str, tuple[bytes | None, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, bank: str) -> bytes | None:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(bank)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            key = self._fetch(bank)
        except RetryLaterError:
            if cached is not None and cached[0] is not None:
                log.warning("Key Vault unavailable; using bank %s's key read %.0f s ago", bank, now - cached[1])
                return cached[0]
            raise
        with self._lock:
            self._cache[bank] = (key, now + (self._ttl if key else self._negative_ttl))
            self._cache.move_to_end(bank)
            while len(self._cache) > self._max_cached:
                self._cache.popitem(last=False)
        return key

    def _fetch(self, bank: str) -> bytes | None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            value = self._client.get_secret(f"{SECRET_PREFIX}{bank}").value
        except ResourceNotFoundError:
            return None
        except AzureError as exc:  # throttled (429), unreachable, forbidden: the caller may retry, we cannot tell
            log.warning("Key Vault could not be read for bank %s: %s", bank, type(exc).__name__)
            raise RetryLaterError("the key store (Key Vault) cannot be read right now; retry in a minute") from None
        return value.encode() if value else None


def secret_client(vault_url: str, client_id: str | None = None, *, credential: Any | None = None) -> Any:
    """A Key Vault ``SecretClient`` with ``credential`` (the composition root's), else the identity ``client_id``'s."""
    from azure.keyvault.secrets import SecretClient

    if credential is None:
        from shared.adapters.identity import build_credential

        credential = build_credential(client_id)
    return SecretClient(vault_url, credential)


def store_bank_key(config: FederatedConfig, bank: str, *, credential: Any | None) -> dict[str, str]:
    """Create a bank's signing key: in Key Vault as ``fl-bank-<bank>`` if configured, else returned (FL_BANK_KEYS).

    ``credential`` reaches the vault (the composition root's; None: the process's default identity).
    """
    key = secrets.token_urlsafe(32)
    if config.key_vault_url:
        client = secret_client(config.key_vault_url, credential=credential)
        client.set_secret(f"{SECRET_PREFIX}{bank}", key, content_type="fraudops federated bank key")
        return {
            "bank": bank,
            "stored_in": f"{config.key_vault_url} secret {SECRET_PREFIX}{bank}",
            "hand_over": "read it from Key Vault and give it to the bank over a secure channel",
            "revocation": f"delete the secret; warm instances stop accepting it within {TTL_SECONDS:.0f} s",
        }
    return {
        "bank": bank,
        "key": key,
        "stored_in": "nowhere (no KEY_VAULT_URL): add it to FL_BANK_KEYS",
        "hand_over": "give the key to the bank; it sets FL_BANK_KEY",
    }


def revoke_bank_key(config: FederatedConfig, bank: str, *, credential: Any | None) -> dict[str, str]:
    """Delete a bank's signing key from Key Vault (soft delete: recoverable for the vault's retention)."""
    if not config.key_vault_url:
        from shared.domain.errors import ConfigurationError

        raise ConfigurationError(
            "no KEY_VAULT_URL: bank keys live in FL_BANK_KEYS; remove the bank's entry there and restart the app"
        )
    client = secret_client(config.key_vault_url, credential=credential)
    client.begin_delete_secret(f"{SECRET_PREFIX}{bank}").wait()
    return {
        "bank": bank,
        "revoked_in": f"{config.key_vault_url} secret {SECRET_PREFIX}{bank}",
        "takes_effect": f"warm instances stop accepting it within {TTL_SECONDS:.0f} s",
    }


def build_key_store(config: FederatedConfig | Settings, *, credential: Any | None = None) -> KeyStore:
    """The bank key store the config names: Key Vault when ``KEY_VAULT_URL`` is set, else ``FL_BANK_KEYS``."""
    if config.key_vault_url:
        return KeyVaultKeys(secret_client(config.key_vault_url, credential=credential))
    return SettingsKeys(config.fl_bank_keys.get_secret_value() if config.fl_bank_keys else None)
