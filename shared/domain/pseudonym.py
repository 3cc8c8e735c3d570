"""Pseudonymised customers: a keyed hash replaces ``customer_id`` at the edge, before anything is stored.

    pseudonym = "cust_" + hex(HMAC-SHA256(key, customer_id))[:32]

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
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.domain.settings import Settings

log = logging.getLogger(__name__)

PREFIX = "cust_"
PATTERN = re.compile(r"cust_[0-9a-f]{32}")
DEVELOPMENT_KEY = b"fraudops-development-pseudonym-key (not for production)"


DASHES = {ord(c): "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"}


def canonical(customer_id: str) -> str:
    """The one form of a customer id that is hashed, at every edge and for every request: Unicode NFKC (a
    precomposed and a decomposed "ü", full-width digits, are one), every dash and minus sign as "-", spaces
    around it trimmed. Case is kept: a bank's ids are case-sensitive as it issues them ("ab-1" and "AB-1" are
    two customers)."""
    return unicodedata.normalize("NFKC", customer_id).translate(DASHES).strip()


class Pseudonymiser:
    """``customer_id`` -> its pseudonym under one key."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("a pseudonym key cannot be empty")
        self._key = key

    def __call__(self, customer_id: str | None) -> str | None:
        if customer_id is None or customer_id == "":
            return customer_id
        text = canonical(str(customer_id))
        if not text:
            return ""
        return PREFIX + hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

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
def pseudonymiser(key: str | None) -> Pseudonymiser:
    """The process's pseudonymiser for ``key`` (``None``: the development key, with a warning once)."""
    if not key:
        log.warning(
            "CUSTOMER_PSEUDONYM_KEY is not set: customer ids are pseudonymised with the development key; "
            "set a secret key of your own (production refuses to start without one)"
        )
        return Pseudonymiser(DEVELOPMENT_KEY)
    return Pseudonymiser(key.encode("utf-8"))


def for_settings(settings: Settings) -> Pseudonymiser:
    key = settings.customer_pseudonym_key
    return pseudonymiser(key.get_secret_value() if key else None)
