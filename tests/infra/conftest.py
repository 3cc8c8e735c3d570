"""Fixtures for the infrastructure checks: the infra venv's tools and the parsed Bicep files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

INFRA = ROOT / "infra"
INFRA_VENV = ROOT / ".venv-infra" / "bin"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))


def infra_tool(name: str) -> Path:
    """A tool from the infrastructure venv; the test fails (not skips) when it is missing."""
    path = INFRA_VENV / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make setup` (it installs requirements-infra.txt)")
    return path


@pytest.fixture(scope="session")
def bicep() -> dict[str, dict[str, Any]]:
    """Every Bicep file under infra/, parsed by checkov's parser, keyed by path relative to infra/."""
    out = subprocess.run(
        [str(infra_tool("python")), str(ROOT / "scripts" / "bicep_parse.py"), *map(str, BICEP_FILES)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return {str(Path(path).relative_to(INFRA)): info for path, info in json.loads(out).items()}
