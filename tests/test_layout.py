"""The storage layout has one home: no module but ``shared/domain/layout.py`` spells a container or a path prefix."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from shared.domain import layout
from tests.conftest import ROOT

PACKAGES = ("api", "cli", "functions", "shared", "training")
HOME = Path("shared/domain/layout.py")
# the names of blobs the layout module owns, beyond the containers: a literal of one elsewhere is a second home
OWNED = (
    layout.CHAMPION,
    layout.ERASURES_PREFIX,
    layout.AUDIT_CHAIN_PREFIX,
    layout.REQUESTS_PREFIX,
    layout.NONCES_PREFIX,
    "_manifest.json",
    "_progress/",
)


def _offending(text: str) -> bool:
    if text in layout.CONTAINERS:
        return True
    if any(text.startswith(f"{c}/") for c in layout.CONTAINERS):
        return True
    return any(owned in text for owned in OWNED)


def literals(root: Path) -> list[str]:
    """Every string literal (f-string parts included) under ``root``'s packages that names a container or an owned path."""
    found = []
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root)
            if rel == HOME:
                continue
            tree = ast.parse(path.read_text())
            docstrings = {
                id(node.body[0].value)
                for node in ast.walk(tree)
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                and node.body
                and isinstance(node.body[0], ast.Expr)
                and isinstance(node.body[0].value, ast.Constant)
            }
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and id(node) not in docstrings
                    and _offending(node.value)
                ):
                    found.append(f"{rel}:{node.lineno}: {node.value!r}")
    return found


def test_no_container_or_path_literal_outside_the_layout_module():
    assert literals(ROOT) == []


@pytest.mark.parametrize(
    "planted",
    [
        'CONTAINER = "curated"',
        'NAME = f"reports/training/{1}.json"',
        'POINTER = "fraud/champion.json"',
    ],
)
def test_a_planted_literal_is_found(tmp_path, planted):
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "shared" / "scoring" / "scorer.py"
    target.write_text(target.read_text() + f"\n{planted}  # planted by the test\n")
    before = set(literals(ROOT))
    after = [hit for hit in literals(tmp_path) if hit not in before]
    assert len(after) == 1 and after[0].startswith("shared/scoring/scorer.py:"), after

