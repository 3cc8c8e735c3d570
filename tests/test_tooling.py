"""The habits the build holds: pins agree with the lock, the CI workflow and pre-commit hooks are valid."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT

BIN = Path(sys.executable).parent
PIN = re.compile(r"^([A-Za-z0-9_.\[\]-]+)==([^\s;#]+)", re.M)


def _pins(path: Path) -> dict[str, str]:
    """The pins of a requirements file and of the files it includes (``-r other.txt``, relative to it)."""
    text = path.read_text()
    pins = {re.sub(r"\[.*\]", "", n).lower().replace("_", "-"): v for n, v in PIN.findall(text)}
    for included in re.findall(r"^-r\s+(\S+)", text, re.M):
        pins |= _pins(path.parent / included)
    return pins


def test_every_direct_pin_is_the_locked_version():
    lock = _pins(ROOT / "requirements-dev.lock")
    direct = _pins(ROOT / "requirements.txt") | _pins(ROOT / "requirements-dev.txt")
    assert len(lock) > len(direct) > 30  # the lock holds the transitive ones too
    assert {n: (v, lock.get(n)) for n, v in direct.items() if lock.get(n) != v} == {}


def test_every_locked_requirement_has_a_hash():
    blocks = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements-dev.lock").read_text().strip())
    assert [b.split()[0] for b in blocks if "--hash=sha256:" not in b] == []
    assert "--hash=sha256:" in (ROOT / "requirements-worker-protos.txt").read_text()


def test_psutil_is_gone_with_its_last_use():
    assert "psutil" not in _pins(ROOT / "requirements.txt")


def test_the_ci_workflow_passes_actionlint_and_runs_make_test():
    workflow = ROOT / ".github" / "workflows" / "ci.yml"
    proc = subprocess.run([str(BIN / "actionlint"), str(workflow)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout
    steps = yaml.safe_load(workflow.read_text())["jobs"]["test"]["steps"]
    assert any("make test" in s.get("run", "") for s in steps)


USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)[ \t]*(#.*)?$", re.M)
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def _unpinned(workflow: str) -> list[str]:
    """Every `uses:` not pinned to a commit SHA with its release in a trailing comment (`@<40 hex> # v5.1.0`)."""
    return [
        f"{ref} {comment or ''}".strip()
        for ref, comment in USES.findall(workflow)
        if not ref.startswith("./") and not (SHA_PIN.match(ref) and re.match(r"#\s*v\d", comment or ""))
    ]


def test_every_action_is_pinned_to_a_commit_sha_with_its_version():
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
    uses = [u for w in workflows for u in USES.findall(w.read_text())]
    assert len(uses) >= 4
    assert {w.name: _unpinned(w.read_text()) for w in workflows} == {w.name: [] for w in workflows}
    # and the check sees what it is for: a tag, a branch, a short SHA, a SHA without its version
    bad = "steps:\n  - uses: actions/checkout@v5\n  - uses: a/b@main\n  - uses: a/b@fbc6f39 # v5.1.0\n"
    bad += "  - uses: actions/checkout@fbc6f3992d24b796d5a048ff273f7fcc4a7b6c09\n"
    assert len(_unpinned(bad)) == 4


def test_ci_audits_the_locks_strictly_and_keeps_the_sboms():
    jobs = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())["jobs"]
    steps = [s for job in jobs.values() for s in job["steps"]]
    audit = [s for s in steps if "make audit" in s.get("run", "")]
    assert audit and all(s.get("env", {}).get("AUDIT_STRICT") == "1" for s in audit)
    assert any("make sbom" in s.get("run", "") for s in steps)
    upload = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload and "dist/sbom" in upload[0]["with"]["path"]


def test_actionlint_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  t:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    proc = subprocess.run([str(BIN / "actionlint"), str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "nope" in proc.stdout


def test_pre_commit_hooks_run_the_pinned_tools_of_make_test():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    entries = {h["id"]: h["entry"] for repo in config["repos"] for h in repo["hooks"]}
    assert {"ruff-format", "ruff-check", "mypy", "import-linter", "actionlint"} <= set(entries)
    assert all(e.startswith(".venv/bin/") for e in entries.values())
    proc = subprocess.run([str(BIN / "pre-commit"), "validate-config"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
