"""The federation's roster: each bank's Ed25519 public key and the server's, pinned by every bank.

Secure aggregation agrees keys *through* the server, so a bank must know that a public key the server
relays is really another bank's: each bank signs what it advertises with its own Ed25519 identity key
(which never leaves it, and which the server does not hold, unlike the HMAC key it signs requests with),
and every bank checks those signatures against the roster the banks agreed on out of band. The server
signs the global model it serves with its own key, whose public half is in the roster too.

The roster is a JSON file::

    {"server": "<base64 Ed25519 public key>", "banks": {"bank-a": "<base64 Ed25519 public key>", ...}}
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path

from fraudops_bank.errors import BankError, ParametersError

KEY_BYTES = 32


class RosterError(BankError):
    """The roster is unreadable, or a signature does not check against it."""


def new_identity_key() -> bytes:
    """A fresh Ed25519 private key, raw (32 bytes)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().private_bytes_raw()


def identity_from_secret(secret: str) -> bytes:
    """The Ed25519 private key derived from a high-entropy secret (as Key Vault keeps the server's): SHA-256."""
    if len(secret) < 32:
        raise RosterError("a signing secret must be at least 32 characters of randomness")
    import hashlib

    return hashlib.sha256(b"fraudops identity|" + secret.encode()).digest()


def identity_public(private: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def sign(private: bytes, message: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(private).sign(message)


def checks(public: bytes, message: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object, *, what: str, size: int | None = None, limit: int = 4096) -> bytes:
    """Base64 ``text`` decoded; ``ParametersError`` naming ``what`` when it is not base64 of the right size."""
    if not isinstance(text, str) or len(text) > limit:
        raise ParametersError(f"{what} must be base64 text of at most {limit} characters")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ParametersError(f"{what} is not base64") from None
    if size is not None and len(data) != size:
        raise ParametersError(f"{what} must be {size} bytes, got {len(data)}")
    return data


@dataclass(frozen=True)
class Roster:
    """Who is in the federation, by the Ed25519 public keys the banks agreed on."""

    banks: dict[str, bytes]
    server: bytes | None = None

    @classmethod
    def from_json(cls, text: str) -> Roster:
        try:
            doc = json.loads(text)
            banks = {str(b).lower(): unb64(k, what=f"bank {b}'s key", size=KEY_BYTES) for b, k in doc["banks"].items()}
            server = doc.get("server")
            return cls(banks, unb64(server, what="the server's key", size=KEY_BYTES) if server else None)
        except (ValueError, KeyError, TypeError, AttributeError, ParametersError) as exc:
            reason = exc.reason if isinstance(exc, ParametersError) else f"{type(exc).__name__}: {exc}"
            raise RosterError(f'the roster is not {{"server": base64, "banks": {{bank: base64}}}} ({reason})') from None

    @classmethod
    def load(cls, path: Path) -> Roster:
        try:
            return cls.from_json(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise RosterError(f"cannot read the roster {path}: {exc.strerror or exc}") from None

    def to_json(self) -> str:
        doc: dict[str, object] = {"banks": {b: b64(k) for b, k in sorted(self.banks.items())}}
        if self.server is not None:
            doc["server"] = b64(self.server)
        return json.dumps(doc, indent=2)

    def check_bank(self, bank: str, message: bytes, signature: bytes) -> None:
        """``RosterError`` unless ``bank`` is in the roster and signed ``message``."""
        key = self.banks.get(bank)
        if key is None:
            raise RosterError(f"bank {bank} is not in this bank's roster: refusing a round it takes part in")
        if not checks(key, message, signature):
            raise RosterError(
                f"bank {bank}'s advertised keys are not signed by the key the roster pins for it: "
                "the server relayed keys that are not that bank's"
            )

    def check_server(self, message: bytes, signature: bytes) -> None:
        """``RosterError`` unless the server's pinned key signed ``message``."""
        if self.server is None:
            raise RosterError("the roster pins no server key: add the server's public key to check what it serves")
        if not checks(self.server, message, signature):
            raise RosterError("the global model is not signed by the server key this bank's roster pins: refused")
