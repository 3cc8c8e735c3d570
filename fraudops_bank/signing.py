"""Signed requests: HMAC-SHA256 over method, path, bank, timestamp, nonce, the other signed headers and the body hash.

Headers: ``X-FL-Bank``, ``X-FL-Timestamp`` (Unix seconds), ``X-FL-Nonce`` and ``X-FL-Signature``
(hex). The server verifies with the same ``canonical`` bytes (``shared.federated.auth.verify``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

SIGNED_EXTRA = ("x-fl-examples", "x-fl-metrics")


def canonical(
    method: str, path: str, timestamp: str, nonce: str, body: bytes, extra: Mapping[str, str], bank: str = ""
) -> bytes:
    """The bytes a bank signs: the request line, its signing headers, its bank id and the body's digest."""
    parts = [
        method.upper(),
        path,
        bank,
        timestamp,
        nonce,
        *(f"{k}:{extra.get(k, '')}" for k in SIGNED_EXTRA),
        hashlib.sha256(body).hexdigest(),
    ]
    return "\n".join(parts).encode()


def signature(key: bytes, signed: bytes) -> str:
    """The hex HMAC-SHA256 of ``signed`` under ``key``."""
    return hmac.new(key, signed, hashlib.sha256).hexdigest()


def sign(
    key: bytes, method: str, path: str, body: bytes, *, bank: str, now: float, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The headers a bank sends (``extra`` holds the other signed headers, lower-case names)."""
    timestamp, nonce = str(int(now)), secrets.token_hex(16)
    extra = dict(extra or {})
    signed = canonical(method, path, timestamp, nonce, body, extra, bank.lower())
    return {
        "X-FL-Bank": bank,
        "X-FL-Timestamp": timestamp,
        "X-FL-Nonce": nonce,
        "X-FL-Signature": signature(key, signed),
        **extra,
    }
