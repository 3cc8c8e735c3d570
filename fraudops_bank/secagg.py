"""The primitives of secure aggregation (Bonawitz et al., CCS 2017), for the banks and the server alike.

Nothing here is a home-made cipher: key agreement is X25519, keys are derived with HKDF-SHA256,
shares travel sealed with AES-256-GCM, and masks are the AES-256-CTR keystream of a derived key,
all from ``cryptography``. What is written here is arithmetic over them:

- **Shamir's secret sharing** over the prime field of 2**521 - 1 (a Mersenne prime, larger than any
  32-byte secret): ``split`` gives each holder ``(x, f(x))`` of a random polynomial of degree
  ``threshold - 1`` whose constant term is the secret; ``combine`` interpolates ``f(0)``.
- **Fixed point in the ring of 2**64** (``encode``/``decode``): a value ``v`` is ``round(v * 2**32)``,
  two's complement in a ``uint64``, so masks and sums wrap in NumPy's own ``uint64`` arithmetic. A sum of
  ``n`` encoded values decodes to the true sum within ``n * 2**-33`` per coordinate (each rounding is at
  most half a step), provided every value is below ``2**31 / MAX_BANKS`` in size, which ``encode`` checks. Round 0's
  statistics, larger numbers, use 16 fraction bits (``limit`` and ``error_bound`` take the count).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

import numpy as np

from fraudops_bank.errors import ParametersError

FIELD_PRIME = 2**521 - 1
SECRET_BYTES = 32
FRACTION_BITS = 32
MAX_BANKS = 1024  # the most banks one secure sum is sized for


def limit(fraction_bits: int = FRACTION_BITS) -> float:
    """The largest value one bank may put in a sum of ``MAX_BANKS`` encoded with ``fraction_bits``."""
    return 2.0 ** (63 - fraction_bits) / MAX_BANKS


Share = tuple[int, int]


# ---- Shamir's secret sharing ----------------------------------------------------------------------
def split(secret: bytes, *, holders: int, threshold: int, coefficient: Callable[[], int] | None = None) -> list[Share]:
    """``holders`` shares of ``secret`` (x = 1..holders), any ``threshold`` of which give it back.

    ``coefficient`` draws the polynomial's other coefficients (tests pass known ones); by default
    uniformly from the field with the operating system's randomness.
    """
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"a shared secret is {SECRET_BYTES} bytes")
    if not 1 <= threshold <= holders:
        raise ValueError(f"the threshold must be between 1 and the {holders} holders, got {threshold}")
    draw = coefficient or (lambda: secrets.randbelow(FIELD_PRIME))
    coefficients = [int.from_bytes(secret, "big"), *(draw() % FIELD_PRIME for _ in range(threshold - 1))]
    shares = []
    for x in range(1, holders + 1):
        y = 0
        for c in reversed(coefficients):  # Horner
            y = (y * x + c) % FIELD_PRIME
        shares.append((x, y))
    return shares


def combine(shares: Sequence[Share], *, threshold: int) -> bytes:
    """The secret from ``threshold`` shares of distinct holders (Lagrange interpolation at 0)."""
    chosen = list(shares)[:threshold]
    xs = [x for x, _ in chosen]
    if len(chosen) < threshold or len(set(xs)) != len(xs):
        raise ParametersError(f"{threshold} shares from distinct holders are needed, got {len(set(xs))}")
    if any(not 0 < x < FIELD_PRIME or not 0 <= y < FIELD_PRIME for x, y in chosen):
        raise ParametersError("a share lies outside the field")
    secret = 0
    for i, (xi, yi) in enumerate(chosen):
        num, den = 1, 1
        for j, xj in enumerate(xs):
            if j != i:
                num = num * -xj % FIELD_PRIME
                den = den * (xi - xj) % FIELD_PRIME
        secret = (secret + yi * num * pow(den, -1, FIELD_PRIME)) % FIELD_PRIME
    if secret >= 2 ** (8 * SECRET_BYTES):
        raise ParametersError("the shares do not give back a secret: at least one of them is not genuine")
    return secret.to_bytes(SECRET_BYTES, "big")


def share_to_text(share: Share) -> str:
    return f"{share[0]}:{share[1]:x}"


def share_from_text(text: str) -> Share:
    try:
        x, y = text.split(":")
        return int(x), int(y, 16)
    except ValueError:
        raise ParametersError("a share is not 'x:hex'") from None


# ---- key agreement, key derivation, sealing ------------------------------------------------------
def new_private_key() -> bytes:
    """A fresh X25519 private key, raw (32 bytes)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    return X25519PrivateKey.generate().private_bytes_raw()


def public_key(private: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def agree(private: bytes, peer_public: bytes, *, info: bytes) -> bytes:
    """A 32-byte key both sides derive: HKDF-SHA256 over the X25519 shared secret, bound to ``info``."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    try:
        shared = X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError as exc:  # a low-order point gives an all-zero secret, which the library refuses
        raise ParametersError(f"a peer's public key is unusable ({exc})") from None
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def derive(seed: bytes, *, info: bytes) -> bytes:
    """A 32-byte key for one purpose from a seed (HKDF-SHA256)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(seed)


def seal(key: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
    """AES-256-GCM with a random nonce (prepended); ``aad`` binds it to its round, sender and recipient."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, sealed: bytes, *, aad: bytes) -> bytes:
    """The plaintext of ``seal``; ``ParametersError`` when it was altered or sealed for another round or bank."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], aad)
    except (InvalidTag, ValueError):
        raise ParametersError(
            "a sealed share does not open: it was altered, or sealed for another round or another bank"
        ) from None


# ---- masks and fixed point -----------------------------------------------------------------------
def mask(seed: bytes, length: int) -> np.ndarray:
    """``length`` pseudo-random ``uint64`` from a 32-byte seed: the AES-256-CTR keystream of a key derived from it."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = derive(seed, info=b"fraudops secagg mask")
    stream = Cipher(algorithms.AES(key), modes.CTR(b"\0" * 16)).encryptor().update(b"\0" * (8 * length))
    return np.frombuffer(stream, dtype="<u8").astype(np.uint64)


def encode(values: np.ndarray, fraction_bits: int = FRACTION_BITS) -> np.ndarray:
    """Fixed point with ``fraction_bits`` fraction bits in the ring of 2**64; ``ParametersError`` out of range."""
    v = np.asarray(values, np.float64)
    if not np.isfinite(v).all():
        raise ParametersError("a value to be summed securely is NaN or infinite")
    most = limit(fraction_bits)
    if (np.abs(v) >= most).any():
        raise ParametersError(f"a value to be summed securely is {np.abs(v).max():.3g} in size; at most {most:.3g}")
    return np.rint(v * 2.0**fraction_bits).astype(np.int64).view(np.uint64)


def decode(total: np.ndarray, fraction_bits: int = FRACTION_BITS) -> np.ndarray:
    """The float64 values of a (sum of) encoded vector(s)."""
    return np.asarray(total, np.uint64).view(np.int64).astype(np.float64) / 2.0**fraction_bits


def error_bound(banks: int, fraction_bits: int = FRACTION_BITS) -> float:
    """How far a decoded sum of ``banks`` encoded values may be from the true sum, per coordinate."""
    return banks * 2.0 ** -(fraction_bits + 1)
