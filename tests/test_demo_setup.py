"""`make demo` installs only what the demo uses (issue 42): the app's .venv and Azurite; the test tools, checkov,
the audit tools, playwright-core, Chromium, PostgreSQL and Redis are `make test`'s. Dry runs and files: offline."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_tooling import _pins

# What only the tests use, as a step of `make -n` shows it
TEST_ONLY = (
    "chromium",
    "postgresql",
    "redis",
    "checkov",
    ".venv-infra",
    ".venv-audit",
    ".venv-docs",
    "playwright",
    "requirements-dev.lock",
    "host-protos",
    "apt-install.sh",
)


def _dry_run(target: str) -> str:
    """Every command ``make <target>`` would run from nothing (-B: as if no stamp existed), run by none."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    proc = subprocess.run(
        ["make", "-n", "-B", "--no-print-directory", target],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_installs_only_what_the_demo_uses():
    demo = _dry_run("demo")
    assert [word for word in TEST_ONLY if word in demo] == []
    assert re.findall(r"-m venv (\S+)", demo) == [".venv"]
    assert "pip install --quiet --require-hashes -r requirements-demo.lock" in demo
    assert "npm ci --omit=dev" in demo
    assert "fraudops demo" in demo
    # and the check sees them where they belong: `make test` installs every one
    test = _dry_run("test")
    assert [word for word in TEST_ONLY if word not in test] == []


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_every_install_step_says_what_and_why_first():
    steps = _dry_run("test").splitlines()
    install = re.compile(r"^(?!echo ).*(-m venv|npm ci|apt-install\.sh)")
    installs = [i for i, s in enumerate(steps) if install.match(s)]
    assert len(installs) >= 7
    for i in installs:  # an apt step says it itself (scripts/apt-install.sh); the others print a line first
        said = "apt-install.sh" in steps[i] or any(s.startswith('echo "installing ') for s in steps[max(i - 3, 0) : i])
        assert said, steps[i]
    makefile = (ROOT / "Makefile").read_text()
    assert "apt-get" not in makefile  # every Debian package goes through the one script


def test_the_demo_lock_is_the_app_at_the_dev_locks_pins():
    demo, dev = _pins(ROOT / "requirements-demo.lock"), _pins(ROOT / "requirements-dev.lock")
    assert {n: (v, dev.get(n)) for n, v in demo.items() if dev.get(n) != v} == {}
    app = _pins(ROOT / "deploy" / "pipeline" / "requirements.txt") | _pins(ROOT / "requirements-demo.txt")
    assert set(app) <= set(demo)
    blocks = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements-demo.lock").read_text().strip())
    assert [b.split()[0] for b in blocks if "--hash=sha256:" not in b] == []
    tools = {"pytest", "ruff", "mypy", "schemathesis", "pyspark", "import-linter", "azure-functions-runtime", "uv"}
    assert tools <= set(dev)
    assert tools & set(demo) == set()


def test_azurite_installs_without_the_test_browser_driver():
    package = json.loads((ROOT / "package.json").read_text())
    assert package["dependencies"] == {"azurite": package["dependencies"]["azurite"]}
    assert set(package["devDependencies"]) == {"playwright-core"}
    lock = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    assert lock[""]["dependencies"] == package["dependencies"]
    assert lock[""]["devDependencies"] == package["devDependencies"]
    assert lock["node_modules/playwright-core"].get("dev") is True
    assert lock["node_modules/azurite"].get("dev") is None


def _stand_ins(tmp_path: Path, *, uid: int, sudo: bool) -> dict[str, str]:
    """A PATH of stand-ins: ``id`` says ``uid``, ``apt-get`` (and ``sudo`` if asked) write down how they ran."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "calls"
    scripts = {
        "id": f"#!/bin/sh\necho {uid}\n",
        "apt-get": f'#!/bin/sh\necho "apt-get $* frontend=$DEBIAN_FRONTEND" >> {log}\n',
    }
    if sudo:
        scripts["sudo"] = f'#!/bin/sh\necho "sudo" >> {log}\nexec "$@"\n'
    for name, text in scripts.items():
        (bin_ / name).write_text(text)
        (bin_ / name).chmod(0o755)
    (bin_ / "env").symlink_to(shutil.which("env") or "/usr/bin/env")
    return {"PATH": str(bin_), "HOME": str(tmp_path)}


def _apt_install(tmp_path: Path, *, uid: int, sudo: bool) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    proc = subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(ROOT / "scripts" / "apt-install.sh"), "wrk", "~1 MB", "the load"],
        capture_output=True,
        text=True,
        env=_stand_ins(tmp_path, uid=uid, sudo=sudo),
        timeout=30,
        check=False,
    )
    log = tmp_path / "calls"
    return proc, log.read_text().splitlines() if log.exists() else []


def test_apt_install_as_root_needs_no_sudo(tmp_path):
    proc, calls = _apt_install(tmp_path, uid=0, sudo=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "installing wrk (Debian package, ~1 MB): the load"
    assert calls == ["apt-get update -qq frontend=", "apt-get install -y -qq wrk frontend=noninteractive"]


def test_apt_install_as_a_user_goes_through_sudo(tmp_path):
    proc, calls = _apt_install(tmp_path, uid=1000, sudo=True)
    assert proc.returncode == 0, proc.stderr
    assert calls == [
        "sudo",
        "apt-get update -qq frontend=",
        "sudo",
        "apt-get install -y -qq wrk frontend=noninteractive",
    ]


def test_apt_install_without_root_or_sudo_says_what_to_run(tmp_path):
    proc, calls = _apt_install(tmp_path, uid=1000, sudo=False)
    assert proc.returncode == 1 and calls == []
    assert proc.stderr.strip().splitlines() == [
        "cannot install wrk: not root and no sudo; as root run: apt-get install -y wrk"
    ]


@pytest.mark.parametrize("script", ["scripts/apt-install.sh", "examples/first_day.sh"])
def test_the_scripts_pass_shellcheck(script):
    from tests.infra.conftest import infra_tool

    check = subprocess.run(
        [str(infra_tool("shellcheck")), "-x", script], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert check.returncode == 0, check.stdout
