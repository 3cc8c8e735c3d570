"""The audit chain in Blob: append blobs ``audit/chain/<YYYY-MM>.jsonl`` (``layout.audit_part``; a month that
outgrows one blob goes on in ``<YYYY-MM>.2.jsonl`` and so on), one typed ``AuditLine`` per act, appended only
at the length the writer read (``BlobStore.append``), so concurrent writers never fork or interleave the
chain: the one that loses re-reads the tail and seals its line after the winner's.

A part is closed by a ``part_sealed`` line naming the next part, appended like any other, before anything is
written to the next: so two instances whose clocks straddle a month boundary cannot both chain a line to the
same head (one seals, the other's append to the old part then fails and it follows the seal), and a part
is closed before Azure's 50,000-block cap on an append blob (one block per line) is reached.

With ``AUDIT_CHAIN_KEY`` (a Key Vault secret the app's identity alone reads) every line is signed (``mac``),
so whoever can append without the key (a Dask worker, a leaked SAS) cannot write a line that verifies.

In Azure the ``audit`` container has a time-based immutability (WORM) policy that allows appends only
(``infra/modules/storage.bicep``): no line can be changed or deleted during the retention period, by
anyone, this app included. ``shared.domain.audit`` builds and verifies the lines.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Literal

from shared.adapters.storage import BlobStore
from shared.domain import layout
from shared.domain.audit import GENESIS, MAX_LINE_BYTES, Act, ChainReport, seal, verify
from shared.domain.documents.governance import AuditLine
from shared.domain.errors import BlobNotFoundError, ConcurrentUpdateError, FraudOpsError

log = logging.getLogger(__name__)

CONTAINER = layout.AUDIT
PREFIX = layout.AUDIT_CHAIN_PREFIX
TAIL_BYTES = 4 * MAX_LINE_BYTES  # the last few lines: enough to find the head and an earlier try of the same act
ATTEMPTS = 30
PART = re.compile(re.escape(PREFIX) + r"([0-9]{4}-(?:0[1-9]|1[0-2]))(?:\.([2-9]|[1-9][0-9]+))?\.jsonl")
MAX_BLOCKS = 49_000  # lines in a part, its seal included: Azure refuses an append blob's 50,001st block
SEALED = "part_sealed"


def chain_key() -> bytes | None:
    """The chain's signing key (``AUDIT_CHAIN_KEY``; a Key Vault reference App Service could not resolve is no
    key); None: lines are hashed, not signed."""
    import os

    value = os.environ.get("AUDIT_CHAIN_KEY", "")
    if not value or value.startswith("@Microsoft.KeyVault("):
        return None
    return value.encode("utf-8")


def _order(name: str) -> tuple[str, int]:
    """A part's place in the chain: its month, then its number within the month (the first has none)."""
    match = PART.fullmatch(name)
    assert match is not None
    return match.group(1), int(match.group(2) or 1)


def _part(month: str, number: int) -> str:
    return f"{PREFIX}{month}.jsonl" if number == 1 else f"{PREFIX}{month}.{number}.jsonl"


class AuditWriteError(FraudOpsError):
    """The act could not be written to the audit chain; the message says why."""


def part_name(at: datetime) -> str:
    return layout.audit_part(at)


class AuditLog:
    """Append acts to the chain and read it back."""

    def __init__(
        self,
        store: BlobStore,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        key: bytes | Literal["environment"] | None = "environment",
        max_blocks: int = MAX_BLOCKS,
    ) -> None:
        self.store = store
        self.clock = clock
        self.key = chain_key() if key == "environment" else key
        self.max_blocks = max_blocks

    def record(self, act: Act) -> AuditLine:
        """Seal ``act`` after the chain's head and append it; the sealed line. An earlier try of the same act that
        did land (a retry after a lost answer) is found in the tail and not written twice."""
        for attempt in range(ATTEMPTS):
            part, length, recent, head = self._place()
            mine = next((line for line in recent if line.id == act.id), None)
            if mine is not None:
                return mine
            if self.key is None and head is not None and head.mac is not None:
                # under WORM an unsigned line would stay a break for good: the act is left to a process that
                # holds the key (a promotion's line is written later by the monitor's reconcile)
                raise AuditWriteError(
                    f"the audit line for {act.act} is not written: the chain is signed and this process has no "
                    "AUDIT_CHAIN_KEY (a Dask worker, or a command run without the key); run it where the key is"
                )
            if length and self._full(part, recent):
                line = self._seal_part(part, head)
            else:
                line = seal(act, seq=head.seq + 1 if head else 0, prev=head.hash if head else GENESIS, key=self.key)
            try:
                self.store.append(CONTAINER, part, line.to_json(), position=length)
            except ConcurrentUpdateError:
                time.sleep(random.uniform(0.0, 0.02 * (attempt + 1)))  # another writer won: re-read its line
                continue
            if line.act == SEALED:
                continue  # the part is closed: the act goes into the next one
            log.info("audit: %s by %s (seq %d)", act.act, act.actor, line.seq)
            return line
        raise AuditWriteError(
            f"the audit line for {act.act} could not be appended after {ATTEMPTS} tries: other writers kept "
            "appending first"
        )

    def _place(self) -> tuple[str, int, list[AuditLine], AuditLine | None]:
        """Where the next line goes: the part, its length, its last lines, and the chain's head. The latest part,
        or the one its seal names; the clock's month only once it is later than the latest part's."""
        names = self._part_names()
        month = f"{self.clock():%Y-%m}"
        if not names:
            return _part(month, 1), 0, [], None
        latest = names[-1]
        length, recent = self._tail(latest)
        head = recent[-1] if recent else self._head_before(latest)
        if head is not None and head.act == SEALED and str(head.details.get("next")) != latest:
            next_part = str(head.details.get("next"))
            if PART.fullmatch(next_part) and _order(next_part) > _order(latest):
                length, recent = self._tail(next_part)
                return next_part, length, recent, recent[-1] if recent else head
        return latest, length, recent, head

    def _full(self, part: str, recent: list[AuditLine]) -> bool:
        """Whether ``part`` must be sealed before the next act: a later month has begun, or it nears the block cap."""
        if recent and recent[-1].act == SEALED:
            return False
        if _order(part)[0] < f"{self.clock():%Y-%m}":
            return True
        blocks = self.store.info(CONTAINER, part).blocks
        return blocks is not None and blocks >= self.max_blocks - 1  # the seal is the last block

    def _seal_part(self, part: str, head: AuditLine | None) -> AuditLine:
        month, number = _order(part)
        now = f"{self.clock():%Y-%m}"
        following = _part(now, 1) if now > month else _part(month, number + 1)
        act = Act(SEALED, "the audit chain", "the chain goes on in the next part", {"part": part, "next": following})
        return seal(act, seq=head.seq + 1 if head else 0, prev=head.hash if head else GENESIS, key=self.key)

    def _tail(self, part: str) -> tuple[int, list[AuditLine]]:
        """The part's length and its last complete lines (none for a part not yet created)."""
        try:
            size = self.store.info(CONTAINER, part).size
        except BlobNotFoundError:
            return 0, []
        if size == 0:  # created, not yet appended to (a writer crashed in between): an empty part
            return 0, []
        start = max(size - TAIL_BYTES, 0)
        raw = self.store.read_range(CONTAINER, part, start, size - start)
        lines = raw.split(b"\n")
        if start > 0:
            lines = lines[1:]  # the first may be the end of a line cut by the range
        return size, _parsed(lines, part)

    def _head_before(self, part: str) -> AuditLine | None:
        """The last line of the latest part before ``part`` (the chain runs on across parts)."""
        earlier = [name for name in self._part_names() if _order(name) < _order(part)]
        for name in reversed(earlier):
            _, recent = self._tail(name)
            if recent:
                return recent[-1]
        return None

    def parts(self, month: str | None = None) -> Iterator[tuple[str, bytes]]:
        """Every part in order (or the one of ``month``, ``YYYY-MM``), with its content."""
        for name in self._part_names():
            if month is None or _order(name)[0] == month:
                yield name, self.store.get_bytes(CONTAINER, name)[0]

    def _part_names(self) -> list[str]:
        """The chain's parts in order: only names a writer gives (``chain/YYYY-MM.jsonl``). Anything else in
        the folder is logged and left out, so a foreign blob that sorts first cannot stop every check."""
        names = sorted(self.store.list_names(CONTAINER, PREFIX))
        foreign = [n for n in names if not PART.fullmatch(n)]
        if foreign:
            log.error(
                "audit: %d blobs in %s%s are not chain parts and are ignored: %s",
                len(foreign),
                CONTAINER,
                PREFIX,
                foreign[:5],
            )
        return sorted((n for n in names if PART.fullmatch(n)), key=_order)

    def entries(self, month: str | None = None) -> list[AuditLine]:
        """Every line (or the lines of ``month``), typed."""
        return [line for name, content in self.parts(month) for line in _parsed(content.splitlines(), name)]

    def entries_since(self, month: str) -> list[AuditLine]:
        """The lines of ``month`` (``YYYY-MM``) and every later part."""
        return [
            line
            for name in self._part_names()
            if _order(name)[0] >= month
            for line in _parsed(self.store.get_bytes(CONTAINER, name)[0].splitlines(), name)
        ]

    def verify(self) -> ChainReport:
        """Every line's hash and link, and with the chain's key every signature from the first signed line on."""
        return verify(self.parts(), self.key)


def _parsed(lines: list[bytes], part: str) -> list[AuditLine]:
    """The lines that are audit entries; one that is not (a torn or foreign line) is skipped and logged, so
    it cannot stop every later act, the registry or the monthly report (``verify`` reports it as a break)."""
    out = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            out.append(AuditLine.parse(raw))
        except ValueError:
            log.error(
                "audit: %s holds a line that is not an audit entry (line %d of what was read); skipped", part, number
            )
    return out


def admin_actor(key: str) -> str:
    """An admin key's fingerprint (never the key): enough to tell which key acted once keys rotate."""
    import hashlib

    return f"admin key {hashlib.sha256(key.encode()).hexdigest()[:12]}"


def service_actor(role: str) -> str:
    """Who acts when the service does (a timer, a round closing): its managed identity in Azure, else the user."""
    import getpass
    import os

    client_id = os.environ.get("AZURE_CLIENT_ID")
    if client_id:
        return f"{role} (managed identity {client_id})"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = "unknown user"
    return f"{role} ({user} on {os.uname().nodename})"
