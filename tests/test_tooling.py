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
    return {re.sub(r"\[.*\]", "", n).lower().replace("_", "-"): v for n, v in PIN.findall(path.read_text())}


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
