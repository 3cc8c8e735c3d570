"""Audit every deployable's hashed lock with pip-audit, as written (no resolving), against the reviewed allow-list.

    .venv-audit/bin/python -m scripts.supply_chain.audit [--lock NAME=PATH ...] [--strict]

Exit 0 when no finding fails, 1 when one does, 2 when the audit could not be done. Where the vulnerability
service cannot be reached (a machine with no way out but the package index), a local run says so in one line
and exits 0; with ``AUDIT_STRICT=1`` (CI) that is a failure, and so is any dependency the service skipped.
The service is PyPI's JSON API (pip-audit's default) unless ``AUDIT_SERVICE=osv`` (``AUDIT_OSV_URL`` for a mirror).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from scripts.supply_chain import allowlist
from scripts.supply_chain.allowlist import Allowance, Finding
from scripts.supply_chain.locks import DEPLOYABLES, ROOT

ALLOWLIST = ROOT / "audit-allowlist.toml"
OSV_URL = "https://api.osv.dev/v1/query"  # pip-audit's default; AUDIT_OSV_URL or --osv-url for a mirror
# One release known to exist, asked of the service the way pip-audit asks it (name and version).
PYPI_PROBE = "https://pypi.org/pypi/pip/24.0/json"
OSV_PROBE = json.dumps({"package": {"name": "pip", "ecosystem": "PyPI"}, "version": "24.0"}).encode()
SERVICE_NAMES = {"pypi": "PyPI's JSON API", "osv": "OSV"}


@dataclass(frozen=True)
class LockReport:
    """pip-audit's answer for one lock: the vulnerable pins, and the pins it could not audit (with why)."""

    deployable: str
    audited: int
    findings: tuple[Finding, ...]
    skipped: tuple[str, ...]


class AuditError(RuntimeError):
    """The audit could not be done (a missing lock, pip-audit failing); the message says which and why."""


def unreachable(service: str, *, osv_url: str = OSV_URL, timeout: float = 10.0) -> str | None:
    """Why the vulnerability service cannot answer from this machine, or None when it answers."""
    url, body = (PYPI_PROBE, None) if service == "pypi" else (osv_url, OSV_PROBE)
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.load(response)
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        return f"{url}: {getattr(exc, 'reason', None) or exc}"
    if service == "pypi" and "vulnerabilities" not in answer:
        return f"{url}: the answer has no 'vulnerabilities' field"
    return None


def parse_report(deployable: str, report: dict[str, object]) -> LockReport:
    """pip-audit's JSON format (``{"dependencies": [{"name", "version", "vulns"} or {"name", "skip_reason"}]}``)."""
    findings, skipped, audited = [], [], 0
    for dep in report.get("dependencies", []):  # type: ignore[union-attr]
        if "skip_reason" in dep:
            skipped.append(f"{dep['name']}: {dep['skip_reason']}")
            continue
        audited += 1
        for vuln in dep.get("vulns", []):
            findings.append(
                Finding(
                    deployable=deployable,
                    package=dep["name"],
                    version=dep["version"],
                    id=vuln["id"],
                    aliases=tuple(vuln.get("aliases", [])),
                    fix_versions=tuple(vuln.get("fix_versions", [])),
                )
            )
    return LockReport(deployable, audited, tuple(findings), tuple(skipped))


def audit_lock(deployable: str, lock: Path, *, service: str, osv_url: str = OSV_URL, timeout: int = 30) -> LockReport:
    """Run pip-audit on one hashed lock, taking its pins as written: no pip, no resolving, every hash required."""
    if not lock.is_file():
        raise AuditError(f"{deployable}: no lock at {lock} (every deployable's hashed lock is audited)")
    pip_audit = Path(sys.executable).parent / "pip-audit"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        cmd = [str(pip_audit), "-r", str(lock), "--disable-pip", "--require-hashes", "-s", service]
        cmd += ["--osv-url", osv_url] if service == "osv" else []
        cmd += ["-f", "json", "-o", str(out), "--progress-spinner", "off", "--timeout", str(timeout)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode not in (0, 1) or not out.exists():  # 1: vulnerabilities found, the report is written
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise AuditError(f"{deployable}: pip-audit failed on {lock} (exit {proc.returncode}): {' | '.join(detail)}")
        return parse_report(deployable, json.loads(out.read_text()))


def _locks(specs: list[str] | None) -> list[tuple[str, Path]]:
    if not specs:
        return [(d.name, ROOT / d.lock) for d in DEPLOYABLES]
    pairs = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            raise SystemExit(f"--lock takes NAME=PATH, not {spec!r}")
        pairs.append((name, Path(path)))
    return pairs


def _print_verdict(reports: list[LockReport], entries: list[Allowance], *, strict: bool, today: dt.date) -> int:
    findings = [f for r in reports for f in r.findings]
    verdict = allowlist.judge(findings, entries, today=today)
    for report in reports:
        vulnerable = len({f.package for f in report.findings})
        print(f"audit: {report.deployable}: {report.audited} pins audited, {vulnerable} with known vulnerabilities")
        for line in report.skipped:
            print(f"audit: {report.deployable}: NOT AUDITED {line}")
    for finding, entry in verdict.allowed:
        print(f"audit: allowed until {entry.expires} by {entry.reviewed_by}: {finding.label()} ({entry.reason})")
    for finding, entry in verdict.expired:
        print(
            f"audit: allow-list entry for {entry.id} in {entry.package} expired on {entry.expires}: {finding.label()}"
        )
    for entry in verdict.unused:
        print(f"audit: allow-list entry {entry.id} for {entry.package} matches no finding: remove it")
    for entry in allowlist.too_long(entries, today=today):
        print(f"audit: allow-list entry {entry.id} for {entry.package} runs past a year ({entry.expires}): shorten it")
    for finding in verdict.failing:
        print(f"audit: FAIL {finding.label()}")
    unaudited = sum(len(r.skipped) for r in reports)
    failed = bool(verdict.failing) or bool(allowlist.too_long(entries, today=today)) or (strict and unaudited > 0)
    print(f"audit: {'FAILED' if failed else 'passed'}: {len(verdict.failing)} failing, {len(verdict.allowed)} allowed")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--lock", action="append", metavar="NAME=PATH", help="audit this lock (default: every deployable)"
    )
    parser.add_argument("--allowlist", type=Path, default=ALLOWLIST)
    parser.add_argument("--service", choices=sorted(SERVICE_NAMES), default=os.environ.get("AUDIT_SERVICE", "pypi"))
    parser.add_argument("--osv-url", default=os.environ.get("AUDIT_OSV_URL", OSV_URL))
    parser.add_argument("--strict", action="store_true", default=os.environ.get("AUDIT_STRICT") == "1")
    args = parser.parse_args(argv)
    today = dt.date.today()
    try:
        entries = allowlist.load(args.allowlist)
        locks = _locks(args.lock)
        missing = [f"{name}: {path}" for name, path in locks if not path.is_file()]
        if missing:
            raise AuditError(f"no lock for {', '.join(missing)} (every deployable's hashed lock is audited)")
        why = unreachable(args.service, osv_url=args.osv_url)
        if why is not None:
            what = f"{SERVICE_NAMES[args.service]} is unreachable from this machine ({why})"
            if args.strict:
                print(f"audit: FAILED: {what}; a strict audit (AUDIT_STRICT=1) needs it", file=sys.stderr)
                return 2
            print(f"audit: not run: {what}; CI runs it strictly (AUDIT_STRICT=1)")
            return 0
        reports = [audit_lock(name, path, service=args.service, osv_url=args.osv_url) for name, path in locks]
    except (AuditError, allowlist.AllowlistError) as exc:
        print(f"audit: FAILED: {exc}", file=sys.stderr)
        return 2
    return _print_verdict(reports, entries, strict=args.strict, today=today)


if __name__ == "__main__":
    sys.exit(main())
