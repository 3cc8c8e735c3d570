"""The reviewed allow-list of known vulnerabilities: who accepted which finding, why, and until when.

An entry suppresses a finding of the audit only while it is current: the day after its ``expires`` date the
finding fails the audit again, so every exception is looked at anew instead of staying forever.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path

from scripts.supply_chain.locks import canonical

FIELDS = ("id", "package", "reason", "reviewed_by", "expires")
MAX_TERM = dt.timedelta(days=366)  # an exception is reviewed at least once a year


class AllowlistError(ValueError):
    """The allow-list file is malformed; the message names the entry and the field."""


@dataclass(frozen=True)
class Allowance:
    """One reviewed exception: a vulnerability id (or one of its aliases) in one package, until a date."""

    id: str
    package: str
    reason: str  # why it does not apply to us, or what mitigates it
    reviewed_by: str
    expires: dt.date  # the last day it suppresses the finding


@dataclass(frozen=True)
class Finding:
    """A known vulnerability pip-audit reported for a pinned package of one deployable's lock."""

    deployable: str
    package: str
    version: str
    id: str
    aliases: tuple[str, ...] = ()
    fix_versions: tuple[str, ...] = ()

    def label(self) -> str:
        fix = ", ".join(self.fix_versions) or "none published"
        aliases = f" ({', '.join(self.aliases)})" if self.aliases else ""
        return f"{self.deployable}: {self.package} {self.version} {self.id}{aliases}, fixed in: {fix}"


@dataclass(frozen=True)
class Verdict:
    """What the allow-list makes of the findings."""

    failing: tuple[Finding, ...]
    allowed: tuple[tuple[Finding, Allowance], ...]
    expired: tuple[tuple[Finding, Allowance], ...]  # failing again: their entry's date has passed
    unused: tuple[Allowance, ...]  # entries no finding needs any more (remove them)


def load(path: Path) -> list[Allowance]:
    """The entries of an allow-list file (``[[allow]]`` tables); a missing field or an odd value is an error."""
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise AllowlistError(f"{path}: not valid TOML: {exc}") from exc
    entries = []
    for n, raw in enumerate(data.get("allow", []), start=1):
        where = f"{path}: entry {n}"
        missing = [f for f in FIELDS if f not in raw]
        if missing:
            raise AllowlistError(f"{where}: missing {', '.join(missing)} (every entry needs {', '.join(FIELDS)})")
        unknown = sorted(set(raw) - set(FIELDS))
        if unknown:
            raise AllowlistError(f"{where}: unknown field {', '.join(unknown)}")
        if not isinstance(raw["expires"], dt.date) or isinstance(raw["expires"], dt.datetime):
            raise AllowlistError(f"{where}: expires must be a TOML date such as 2027-01-31, not {raw['expires']!r}")
        texts = {f: raw[f] for f in FIELDS if f != "expires"}
        blank = [f for f, v in texts.items() if not isinstance(v, str) or not v.strip()]
        if blank:
            raise AllowlistError(f"{where}: {', '.join(blank)} must be non-empty text")
        entries.append(
            Allowance(
                id=raw["id"].strip(),
                package=canonical(raw["package"]),
                reason=" ".join(raw["reason"].split()),
                reviewed_by=raw["reviewed_by"].strip(),
                expires=raw["expires"],
            )
        )
    return entries


def too_long(entries: list[Allowance], *, today: dt.date) -> list[Allowance]:
    """Entries whose expiry lies more than a year ahead (an exception is reviewed at least yearly)."""
    return [e for e in entries if e.expires - today > MAX_TERM]


def _covers(entry: Allowance, finding: Finding) -> bool:
    ids = {finding.id.upper(), *(a.upper() for a in finding.aliases)}
    return entry.package == canonical(finding.package) and entry.id.upper() in ids


def judge(findings: list[Finding], entries: list[Allowance], *, today: dt.date) -> Verdict:
    """Split the findings into failing and allowed: an entry covers a finding until its ``expires`` day included."""
    failing, allowed, expired = [], [], []
    used: set[Allowance] = set()
    for finding in findings:
        covering = [e for e in entries if _covers(e, finding)]
        used.update(covering)
        current = [e for e in covering if today <= e.expires]
        if current:
            allowed.append((finding, max(current, key=lambda e: e.expires)))
            continue
        failing.append(finding)
        if covering:
            expired.append((finding, max(covering, key=lambda e: e.expires)))
    unused = tuple(e for e in entries if e not in used)
    return Verdict(tuple(failing), tuple(allowed), tuple(expired), unused)
