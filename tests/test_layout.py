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
PRAGMA = "# layout: not a blob"  # a word that is a container's name but names something else (a column, a tag)
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


def _keys(tree: ast.AST) -> set[int]:
    """Literals that are keys, not places: a dict's keys, a subscript's index, a comparison's operands, a command."""
    cached = getattr(tree, "_key_ids", None)
    if cached is None:
        cached = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                cached.update(id(k) for k in node.keys if k is not None)
            elif isinstance(node, ast.Subscript):
                cached.add(id(node.slice))
            elif isinstance(node, ast.Compare):
                cached.update(id(n) for n in (node.left, *node.comparators))
            elif (  # a command's name: `fraudops models ...`
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_parser"
                and node.args
            ):
                cached.add(id(node.args[0]))
        tree._key_ids = cached  # type: ignore[attr-defined]
    return cached


def literals(root: Path) -> list[str]:
    """Every string literal (f-string parts too) in ``root``'s packages that names a container or an owned path."""
    found = []
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root)
            if rel == HOME:
                continue
            text = path.read_text()
            tree = ast.parse(text)
            exempt = {n for n, line in enumerate(text.splitlines(), 1) if PRAGMA in line}
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
                    and id(node) not in _keys(tree)
                    and node.lineno not in exempt
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
