"""The house plan (ARCHITECTURE.md) is held by the build: import-linter's contracts, and what they cannot see."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("cli", "functions", "api", "training", "shared", "fraudops_bank")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
    )


def test_every_contract_is_kept():
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "0 broken" in proc.stdout


@pytest.fixture
def copy(tmp_path):
    """The packages and the contracts, copied so a test can plant an import."""
    for name in PACKAGES:
        shutil.copytree(
            ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "build", ".ruff_cache")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("module", "planted", "broken"),
    [
        ("shared/streaming/processor.py", "import api.decode", "Layers"),  # a service imports an entry point
        ("shared/domain/contract.py", "import shared.adapters.storage", "Layers"),  # the domain reaches for I/O
        ("shared/etl/validate.py", "import shared.bootstrap", "Layers"),  # a service reaches for the composition root
        ("shared/etl/validate.py", "import training.data", "never imports training"),
        ("shared/scoring/scorer.py", "import azurefunctions.extensions.bindings.blob", "Functions SDK"),
        ("fraudops_bank/model.py", "import lightgbm", "bank client stands alone"),  # banks install it without
        ("fraudops_bank/client.py", "import mlflow", "bank client stands alone"),
        # an engine imports its caller: the cycle the engines' interface removed (function-level imports count)
        ("training/engines/local.py", "import training.pipeline", "No import cycle inside training"),
        ("training/interactions.py", "import training.search", "No import cycle inside training"),
        ("shared/etl/manifest.py", "import shared.etl.service", "No import cycle inside shared.etl"),
        ("shared/scoring/explain.py", "import shared.scoring.scorer", "No import cycle inside shared.scoring"),
    ],
)
def test_a_planted_import_breaks_a_contract(copy, module, planted, broken):
    path = copy / module
    path.write_text(path.read_text() + f"\n{planted}  # planted by the test\n")
    proc = _lint(copy)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "1 broken" in proc.stdout and broken in proc.stdout.split("Broken contracts")[-1]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_the_entry_layer_imports_azure_functions():
    """import-linter sees external packages whole (``azure``), so ``azure.functions`` is checked here."""
    offenders = {
        str(p.relative_to(ROOT))
        for pkg in ("shared", "training", "fraudops_bank")
        for p in (ROOT / pkg).rglob("*.py")
        if any(n == "azure.functions" or n.startswith("azure.functions.") for n in _imports(p))
    }
    assert offenders == set()
    assert "azure.functions" in _imports(ROOT / "functions" / "stream.py")  # the scan does find the import
