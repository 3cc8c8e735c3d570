"""No dataset's names outside its contract, its generator and the tests: every path reads them from the contract.

A string literal (not a docstring) naming the creditcard dataset or one of its columns (``Time``, ``V1``..
``V28``, ``Amount``, ``Class``), or an f-string building ``V{i}``, fails this test, with the file and line.
The few that stay are listed below with their reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("shared", "api", "cli", "functions", "training", "fraudops_bank")
OWN_GENERATOR = {"training/generate.py", "training/mechanics.py"}  # creditcard's generator
NAMES = re.compile(r"^(creditcard|Time|Amount|Class|V([1-9]|1[0-9]|2[0-8]))$")
ALLOWED = {
    ("shared/domain/settings.py", "creditcard"): "DATASET_NAME's default: the reference dataset",
    ("shared/scoring/records.py", "Time"): "reading records written before the event time had its own name",
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def literals(path: Path) -> list[tuple[int, str]]:
    """The dataset names ``path`` spells: (line, literal)."""
    tree = ast.parse(path.read_text(), str(path))
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if NAMES.match(node.value):
                found.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            parts = [v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
            if parts and parts[0] == "V" and len(node.values) == 2:
                found.append((node.lineno, "V{i}"))
    return found


def test_no_dataset_name_is_spelled_outside_its_contract() -> None:
    offending = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in OWN_GENERATOR or rel.startswith("training/generators/"):
                continue
            offending += [f"{rel}:{line}: {text!r}" for line, text in literals(path) if (rel, text) not in ALLOWED]
    assert not offending, "dataset names outside the contract:\n" + "\n".join(offending)


def test_the_scan_finds_what_it_is_for(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text('"""Time and Amount in prose are fine."""\nX = ["Amount", f"V{3}", "creditcard", "Timer"]\n')
    assert literals(planted) == [(2, "Amount"), (2, "V{i}"), (2, "creditcard")]
