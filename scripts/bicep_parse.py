"""Parse Bicep files with checkov's own parser (pycep) and print what the tests compare, as JSON.

Runs in the infrastructure venv (``.venv-infra/bin/python scripts/bicep_parse.py FILE...``),
which has pycep; the app's venv does not. For each file: whether it parsed (and why not),
its parameters (with whether they have a default), outputs, modules (with the params
passed, expressions as pycep's trees) and variables.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def describe(path: Path) -> dict[str, Any]:
    """What one Bicep file declares, or the parser's error."""
    from pycep import BicepParser

    try:
        tree = BicepParser().parse(text=path.read_text(encoding="utf-8"))
    except Exception as exc:  # the parser raises lark errors of several kinds
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {
        "ok": True,
        "parameters": {
            name: {"has_default": p.get("default") is not None, "type": p.get("type")}
            for name, p in tree.get("parameters", {}).items()
        },
        "outputs": sorted(tree.get("outputs", {})),
        "modules": {
            name: {"path": m["detail"]["path"], "params": _config(m).get("params", {})}
            for name, m in tree.get("modules", {}).items()
        },
        "variables": {name: v["value"] for name, v in tree.get("variables", {}).items()},
        "resources": sorted(tree.get("resources", {})),
    }


def _config(module: dict[str, Any]) -> dict[str, Any]:
    """A module's body; pycep nests it one level deeper when the module has an ``if`` condition."""
    config: dict[str, Any] = module["config"]
    return config["config"] if "condition" in config else config


def main(argv: list[str]) -> int:
    json.dump({p: describe(Path(p)) for p in argv}, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
