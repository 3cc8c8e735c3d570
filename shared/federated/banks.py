"""Bank ids: one strict pattern, lower case, so a bank is one participant however its id is spelled.

Key Vault folds the case of secret names (``fl-bank-Bank-A`` is ``fl-bank-bank-a``), so every
place that keys something by bank (participants, update blobs, nonces, key lookups) must use the
same canonical spelling; ``bank_id`` is the one function that gives it.
"""

from __future__ import annotations

import re

from shared.domain.errors import FraudOpsError

PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
HEADER_PATTERN = "^" + PATTERN.pattern.replace("a-z", "A-Za-z") + "$"  # as sent: either case
RULE = "a bank id is 1 to 64 letters, digits and inner dashes (compared in lower case)"


class BankIdError(FraudOpsError):
    """A bank id outside the pattern."""


def bank_id(raw: str) -> str:
    """The canonical (lower-case) form of ``raw``; ``BankIdError`` when it is not a bank id at all."""
    canonical = raw.lower() if raw.isascii() else ""
    if not PATTERN.fullmatch(canonical):
        raise BankIdError(f"{RULE}; got {raw[:80]!r}")
    return canonical
