"""Signed requests from banks: HMAC-SHA256 over method, path, timestamp, nonce, extra signed headers and body hash.

Headers: ``X-FL-Bank``, ``X-FL-Timestamp`` (Unix seconds), ``X-FL-Nonce`` and ``X-FL-Signature``
(hex). The bank signs with ``fraudops_bank.signing`` (the client's package) and ``verify`` checks
the same canonical bytes. A request is refused (401) for an unknown bank, a bad signature, a clock
skew over ``max_skew`` seconds or a nonce seen before; nonces are remembered in Blob, create-only,
so a replay is refused by every instance.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from fraudops_bank.signing import SIGNED_EXTRA, canonical
from fraudops_bank.signing import signature as hmac_hex
from shared.adapters.bank_keys import KeyStore, store_bank_key
from shared.domain import layout
from shared.domain.errors import BlobExistsError, FraudOpsError
from shared.federated.banks import BankIdError, bank_id

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.domain.config import FederatedConfig

log = logging.getLogger(__name__)

MAX_SKEW_SECONDS = 300
NONCE_PREFIX = layout.NONCES_PREFIX  # in the federated container; storage.bicep deletes them after a day
SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
TIMESTAMP = re.compile(r"[0-9]{1,12}")
NONCE = re.compile(r"[0-9A-Za-z]{16,128}")


class AuthError(FraudOpsError):
    """The request is not signed by a known bank (401)."""


def single_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers by lower-case name; ``AuthError`` when an ``X-FL-*`` header comes twice.

    A repeated header could be read one way by the signature check and another by the code that
    uses it; the protocol allows each exactly once.
    """
    out: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        if key.startswith("x-fl-") and key in out:
            raise AuthError(f"header {name} is given more than once; send each X-FL-* header exactly once")
        out[key] = value
    return out


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
    """The (canonical) bank that signed the request; ``AuthError`` with the reason otherwise.

    Every check that needs no key runs first, so a malformed request costs no key lookup.
    """
    raw_bank = headers.get("x-fl-bank", "")
    timestamp, nonce, signature = (headers.get(h, "") for h in ("x-fl-timestamp", "x-fl-nonce", "x-fl-signature"))
    if not (raw_bank and timestamp and nonce and signature):
        raise AuthError("the request is not signed (X-FL-Bank, X-FL-Timestamp, X-FL-Nonce, X-FL-Signature)")
    try:
        bank = bank_id(raw_bank)
    except BankIdError as exc:
        raise AuthError(f"X-FL-Bank: {exc.reason}") from None
    if not SIGNATURE.fullmatch(signature):
        raise AuthError("X-FL-Signature must be 64 hexadecimal digits (an HMAC-SHA256)")
    if not TIMESTAMP.fullmatch(timestamp):
        raise AuthError("X-FL-Timestamp must be whole Unix seconds (digits only)")
    skew = abs(now - int(timestamp))
    if skew > max_skew:
        raise AuthError(f"the request's clock is {skew:.0f} s off (at most {max_skew:.0f} s allowed)")
    if not NONCE.fullmatch(nonce):
        raise AuthError("X-FL-Nonce must be 16 to 128 letters and digits")
    key = keys.get(bank)
    if key is None:
        raise AuthError(f"unknown bank {bank!r}")
    extra = {k: headers.get(k, "") for k in SIGNED_EXTRA}
    expected = hmac_hex(key, canonical(method, path, timestamp, nonce, body, extra, bank))
    if not hmac.compare_digest(expected, signature.lower()):
        raise AuthError("the signature does not match the request")
    try:
        store.put_bytes(layout.FEDERATED, layout.nonce(bank, nonce), b"", overwrite=False)
    except BlobExistsError:
        raise AuthError("this nonce was already used (a replayed request)") from None
    return bank


def add_bank_key(
    bank: str, *, actor: str, config: FederatedConfig, store: BlobStore, credential: Any | None = None
) -> dict[str, str]:
    """Create a bank's signing key under its canonical id (see ``shared.adapters.bank_keys.store_bank_key``);
    audited in ``store`` (where it is kept, never the key). ``credential`` reaches Key Vault."""
    canonical_id = _canonical(bank)
    created = store_bank_key(config, canonical_id, credential=credential)
    _audit_key(store, "key_added", actor, canonical_id, created["stored_in"])
    return created


def revoke_bank_key(
    bank: str, *, actor: str, config: FederatedConfig, store: BlobStore, credential: Any | None = None
) -> dict[str, str]:
    """Delete a bank's signing key from Key Vault; audited in ``store``."""
    from shared.adapters.bank_keys import revoke_bank_key as revoke

    canonical_id = _canonical(bank)
    revoked = revoke(config, canonical_id, credential=credential)
    _audit_key(store, "key_revoked", actor, canonical_id, revoked["revoked_in"])
    return revoked


def _canonical(bank: str) -> str:
    try:
        return bank_id(bank)
    except BankIdError as exc:
        raise AuthError(exc.reason) from None


def _audit_key(store: BlobStore, act: str, actor: str, bank: str, where: str) -> None:
    from shared.adapters.audit import AuditLog
    from shared.domain.audit import Act

    reason = f"bank {bank}'s signing key {'created' if act == 'key_added' else 'revoked'}"
    AuditLog(store).record(Act(act, actor, reason, {"bank": bank, "where": where}))
