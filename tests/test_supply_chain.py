"""Supply chain (issue 41): the audit of every deployable's hashed lock, its reviewed allow-list, the SBOMs."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import subprocess
import threading
from pathlib import Path

import pytest

from scripts.supply_chain import allowlist, audit
from scripts.supply_chain.allowlist import Finding
from scripts.supply_chain.locks import DEPLOYABLES, canonical, read_pins
from tests.conftest import ROOT

AUDIT_PY = ROOT / ".venv-audit" / "bin" / "python"
# A pin with published advisories (CVE-2021-33503 among them), with the digests PyPI lists for its two files.
PLANTED = """\
urllib3==1.26.4 \\
    --hash=sha256:2f4da4594db7e1e110a944bb1b551fdf4e6c136ad42e4234131391e21eb5b0df \\
    --hash=sha256:e7b021f7241115872f92f43c6508082facffbd1c048e3c6e2bb9c2a157e28937
    # via requests
"""
CLEAN = """\
idna==3.21 \\
    --hash=sha256:13c8b14853c5c336eaab526f3390817e9c8fcd8fa175abdd1a7480a5c94f99cb \\
    --hash=sha256:387ab0bbea1ee7a196ea5b24eb007bad0242cc3127fe96713939942bc9e720d7
"""
ADVISORY = {
    "id": "PYSEC-2021-108",
    "aliases": ["CVE-2021-33503", "GHSA-q2q7-5pp4-w6pf"],
    "summary": "Catastrophic backtracking in URL authority parser when passed URL containing many @ characters",
    "affected": [
        {
            "package": {"name": "urllib3", "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.26.5"}]}],
        }
    ],
}
TODAY = dt.date(2026, 12, 7)


def _tool(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    if not AUDIT_PY.exists():
        pytest.fail("no .venv-audit: `make setup` (or `make .venv-audit/.installed`) installs the audit tools")
    cmd = [str(AUDIT_PY), "-m", f"scripts.supply_chain.{module}", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def _entry(vuln: str, expires: dt.date) -> str:
    return (
        f'[[allow]]\nid = "{vuln}"\npackage = "urllib3"\nreason = "planted by the test, never installed"\n'
        f'reviewed_by = "tests/test_supply_chain.py"\nexpires = {expires.isoformat()}\n'
    )


def _audit_the_planted_pin(tmp_path: Path, *service: str) -> None:
    """The planted pin fails a strict audit, naming it; allowed until tomorrow it passes; expired, it fails again."""
    lock, entries = tmp_path / "planted.lock", tmp_path / "allow.toml"
    lock.write_text(CLEAN + PLANTED)
    entries.write_text("")
    args = ("--strict", "--lock", f"planted={lock}", "--allowlist", str(entries), *service)

    proc = _tool("audit", *args)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    fails = re.findall(r"^audit: FAIL planted: urllib3 1\.26\.4 (\S+)", proc.stdout, re.M)
    assert fails and "idna" not in proc.stdout.split("FAIL", 1)[1], proc.stdout
    assert "planted: 2 pins audited, 1 with known vulnerabilities" in proc.stdout

    today = dt.date.today()
    entries.write_text("\n".join(_entry(v, today + dt.timedelta(days=1)) for v in fails))
    allowed = _tool("audit", *args)
    assert allowed.returncode == 0 and "allowed until" in allowed.stdout, allowed.stdout + allowed.stderr
    entries.write_text("\n".join(_entry(v, today - dt.timedelta(days=1)) for v in fails))
    expired = _tool("audit", *args)
    assert expired.returncode == 1 and "expired on" in expired.stdout, expired.stdout + expired.stderr


def test_a_planted_vulnerable_pin_fails_the_audit_naming_it(tmp_path):
    why = audit.unreachable("pypi")
    if why is not None:
        pytest.skip(f"the vulnerability service (PyPI's JSON API) is unreachable from this machine: {why}")
    _audit_the_planted_pin(tmp_path, "--service", "pypi")


class _OsvStandIn(http.server.BaseHTTPRequestHandler):
    """OSV's query API on loopback, knowing one advisory (urllib3 1.26.4's, as OSV publishes it, abridged)."""

    def do_POST(self) -> None:
        query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        known = (query["package"]["name"], query["version"]) == ("urllib3", "1.26.4")
        body = json.dumps({"vulns": [ADVISORY]} if known else {}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def test_the_real_pip_audit_fails_on_a_planted_pin_against_a_local_osv(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OsvStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _audit_the_planted_pin(
            tmp_path, "--service", "osv", "--osv-url", f"http://127.0.0.1:{server.server_port}/v1/query"
        )
    finally:
        server.shutdown()
        server.server_close()


def test_an_unreachable_service_is_said_in_one_line_and_fails_only_a_strict_audit(monkeypatch, capsys):
    monkeypatch.setattr(
        audit, "unreachable", lambda _service, **_: "https://example.invalid: Name or service not known"
    )
    monkeypatch.delenv("AUDIT_STRICT", raising=False)

    assert audit.main([]) == 0
    out = capsys.readouterr()
    assert out.out.count("\n") == 1 and "unreachable" in out.out and "AUDIT_STRICT=1" in out.out

    monkeypatch.setenv("AUDIT_STRICT", "1")
    assert audit.main([]) == 2
    assert "unreachable" in capsys.readouterr().err


def test_a_missing_deployable_lock_fails_the_audit(tmp_path, capsys):
    assert audit.main(["--lock", f"scoring={tmp_path / 'nope.lock'}"]) == 2
    assert "nope.lock" in capsys.readouterr().err


def test_an_expired_entry_no_longer_suppresses_its_finding(tmp_path):
    path = tmp_path / "allow.toml"
    path.write_text(
        _entry("PYSEC-2021-108", TODAY)  # its last day is today: still allowed
        + _entry("GHSA-v845-jxx5-vc9f", TODAY - dt.timedelta(days=1))  # expired yesterday
    )
    findings = [
        Finding("scoring", "urllib3", "1.26.4", "PYSEC-2021-108", aliases=("CVE-2021-33503",)),
        Finding("scoring", "urllib3", "1.26.4", "PYSEC-2023-192", aliases=("GHSA-v845-jxx5-vc9f",)),
        Finding("bank", "jinja2", "2.10", "PYSEC-2019-217"),
    ]

    verdict = allowlist.judge(findings, allowlist.load(path), today=TODAY)

    assert [f.id for f, _ in verdict.allowed] == ["PYSEC-2021-108"]
    assert [f.id for f in verdict.failing] == ["PYSEC-2023-192", "PYSEC-2019-217"]  # an alias matches too
    assert [(f.id, e.expires) for f, e in verdict.expired] == [("PYSEC-2023-192", TODAY - dt.timedelta(days=1))]
    assert allowlist.judge(findings, allowlist.load(path), today=TODAY + dt.timedelta(days=1)).allowed == ()


def test_an_entry_needs_every_field_and_a_date(tmp_path):
    path = tmp_path / "allow.toml"
    path.write_text('[[allow]]\nid = "PYSEC-2021-108"\npackage = "urllib3"\nexpires = 2027-01-01\n')
    with pytest.raises(allowlist.AllowlistError, match="missing reason, reviewed_by"):
        allowlist.load(path)
    path.write_text(_entry("PYSEC-2021-108", TODAY).replace("2026-12-07", '"soon"'))
    with pytest.raises(allowlist.AllowlistError, match="TOML date"):
        allowlist.load(path)


def test_the_committed_allowlist_is_valid_and_reviewed_at_least_yearly():
    entries = allowlist.load(ROOT / "audit-allowlist.toml")
    assert allowlist.too_long(entries, today=dt.date.today()) == []


@pytest.fixture(scope="module")
def sboms(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sbom")
    proc = _tool("sbom", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.mark.parametrize("deployable", DEPLOYABLES, ids=[d.name for d in DEPLOYABLES])
def test_each_sbom_lists_every_pin_of_its_lock_with_version_purl_and_hashes(sboms, deployable):
    lock = (ROOT / deployable.lock).read_text()
    pins = read_pins(ROOT / deployable.lock)
    assert len(pins) == len(re.findall(r"^[A-Za-z0-9][^\s#]*==", lock, re.M)) > 10  # the reader missed none
    assert all(p.hashes for p in pins), "every pin of a deployable's lock is hashed"

    bom = json.loads((sboms / f"{deployable.name}.cdx.json").read_text())

    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
    assert bom["metadata"]["component"]["name"] in {f"fraudops-{deployable.name}", "fraudops-bank"}
    listed = {}
    for c in bom["components"]:
        digests = {h["content"] for r in c.get("externalReferences", []) for h in r.get("hashes", [])}
        listed[canonical(c["name"])] = (c["version"], c["purl"], digests)
    expected = {p.name: (p.version, f"pkg:pypi/{p.name}@{p.version}", set(p.hashes)) for p in pins}
    assert {n: (listed.get(n), e) for n, e in expected.items() if listed.get(n) != e} == {}
    assert set(listed) == set(expected)
