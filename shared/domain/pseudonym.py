"""Pseudonymised customers: a keyed hash replaces ``customer_id`` at the edge, before anything is stored.

    pseudonym = "cust_" + hex(HMAC-SHA256(key, customer_id))[:32]        (the first key, version 1)
    pseudonym = "cust<N>_" + hex(HMAC-SHA256(key, customer_id))[:32]     (key version N >= 2)

The key's version is written before it in the secret, ``v2:<key>`` (no prefix: version 1), and travels in every
pseudonym, so a record says which key made it. Rotating the key: the new one becomes ``v<N+1>:<new key>`` and
the old ones go to ``CUSTOMER_PSEUDONYM_PREVIOUS_KEYS`` (a JSON list, each with its own prefix); from then on
new records carry the new pseudonym, and access and erasure look for a customer under every key
(``Pseudonymiser.every``), so nothing stored under an old key is orphaned.

The key lives in Key Vault (``CUSTOMER_PSEUDONYM_KEY``, a Key Vault reference in Azure); without it,
outside production, a fixed development key is used and said so in the log. The same function finds a
customer's pseudonym for an access or erasure request, so the clear id is needed only to ask, never
stored. Without the key a pseudonym cannot be reversed or recomputed from a guessed id; with it, the
same customer always has the same pseudonym, so joins (labels to predictions, the stream's alerts per
customer) still work. Every value that reaches an edge is hashed, one already shaped like a pseudonym too:
a caller who knows a victim's pseudonym (it travels on the alerts hub) cannot add records under it. Internal
paths (labelled predictions becoming training rows, the dead-letter spool) carry stored pseudonyms
without passing them through here. Transaction ids stay as given. An id is hashed in its canonical form
(``canonical``: NFKC, one dash, trimmed, case kept), so the spellings a person or a system may give of one
id are one customer.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.domain.settings import Settings

log = logging.getLogger(__name__)

PREFIX = "cust_"
PATTERN = re.compile(r"cust(?:[2-9]|[1-9][0-9]+)?_[0-9a-f]{32}")
VERSIONED = re.compile(r"v([1-9][0-9]*):(.+)", re.DOTALL)


def parse_key(secret: str) -> tuple[int, bytes]:
    """A key setting's version and key: ``v2:<key>`` is version 2; a key without the prefix is version 1."""
    found = VERSIONED.fullmatch(secret)
    return (int(found.group(1)), found.group(2).encode("utf-8")) if found else (1, secret.encode("utf-8"))


def prefix_of(version: int) -> str:
    """The pseudonyms' prefix under key ``version``: ``cust_`` for the first, ``cust<N>_`` after a rotation."""
    return PREFIX if version == 1 else f"cust{version}_"


DEVELOPMENT_KEY = b"fraudops-development-pseudonym-key (not for production)"


DASHES = {ord(c): "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"}


def canonical(customer_id: str) -> str:
    """The one form of a customer id that is hashed, at every edge and for every request: Unicode NFKC (a
    precomposed and a decomposed "ü", full-width digits, are one), every dash and minus sign as "-", spaces
    around it trimmed. Case is kept: a bank's ids are case-sensitive as it issues them ("ab-1" and "AB-1" are
    two customers)."""
    return unicodedata.normalize("NFKC", customer_id).translate(DASHES).strip()


class Pseudonymiser:
    """``customer_id`` -> its pseudonym under the current key (``version``); ``every`` gives it under the previous
    keys too (access and erasure look for all of them)."""

    def __init__(self, key: bytes, version: int = 1, previous: Sequence[tuple[int, bytes]] = ()) -> None:
        if not key or any(not k for _, k in previous):
            raise ValueError("a pseudonym key cannot be empty")
        clash = sorted({v for v, k in previous if v == version and k != key})
        if clash:  # two keys under one version: the older one's records would never be found
            raise ValueError(
                f"a previous pseudonym key has the current key's version {clash[0]}: write the new key as "
                f"v{version + 1}:<key> (CUSTOMER_PSEUDONYM_KEY), the old ones keep theirs"
            )
        self._key, self.version = key, version
        self._previous = tuple((v, k) for v, k in previous if v != version)

    def __call__(self, customer_id: str | None) -> str | None:
        if customer_id is None or customer_id == "":
            return customer_id
        return self._under(self._key, self.version, customer_id)

    @property
    def rotated(self) -> bool:
        """Whether there are previous keys (records may carry an older pseudonym of a customer)."""
        return bool(self._previous)

    def every(self, customer_id: str) -> tuple[str, ...]:
        """The customer's pseudonym under the current key, then under each previous one (rotations)."""
        return tuple(
            dict.fromkeys(
                self._under(key, version, customer_id) for version, key in ((self.version, self._key), *self._previous)
            )
        )

    @staticmethod
    def _under(key: bytes, version: int, customer_id: str) -> str:
        text = canonical(str(customer_id))
        if not text:
            return ""
        return prefix_of(version) + hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def many(self, customer_ids: Iterable[str | None]) -> list[str | None]:
        """Each id's pseudonym (each distinct id hashed once)."""
        seen: dict[str | None, str | None] = {}
        out = []
        for value in customer_ids:
            if value not in seen:
                seen[value] = self(value)
            out.append(seen[value])
        return out


@lru_cache(maxsize=4)
def pseudonymiser(key: str | None, previous: str | None = None) -> Pseudonymiser:
    """The process's pseudonymiser for ``key`` (``None``: the development key, with a warning once) and the
    ``previous`` keys (``CUSTOMER_PSEUDONYM_PREVIOUS_KEYS``, a JSON list)."""
    import json

    older = [parse_key(str(k)) for k in json.loads(previous)] if previous else []
    if not key:
        log.warning(
            "CUSTOMER_PSEUDONYM_KEY is not set: customer ids are pseudonymised with the development key; "
            "set a secret key of your own (production refuses to start without one)"
        )
        return Pseudonymiser(DEVELOPMENT_KEY, 1, older)
    version, secret = parse_key(key)
    return Pseudonymiser(secret, version, older)


def for_settings(settings: Settings) -> Pseudonymiser:
    key, previous = settings.customer_pseudonym_key, settings.customer_pseudonym_previous_keys
    return pseudonymiser(key.get_secret_value() if key else None, previous.get_secret_value() if previous else None)
