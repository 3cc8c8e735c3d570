"""MkDocs hook (mkdocs.yml ``hooks:``): adds the reference pages generated from the code (issue 42).

MkDocs runs in its own venv (``.venv-docs``), which has none of the app's packages, so the pages are made
by ``scripts/docs_reference.py`` in the app's venv (``FRAUDOPS_DOCS_PYTHON``, default ``.venv/bin/python``)
and added to the build as generated files: nothing generated is written under ``docs/``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]


def on_files(files: Files, config: Any) -> Files:
    python = os.environ.get("FRAUDOPS_DOCS_PYTHON", str(ROOT / ".venv" / "bin" / "python"))
    done = subprocess.run(
        [python, str(ROOT / "scripts" / "docs_reference.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/docs_reference.py failed ({done.returncode}):\n{done.stderr}")
    for path, markdown in json.loads(done.stdout).items():
        files.append(File.generated(config, path, content=markdown))
    return files
