"""A CycloneDX SBOM (JSON, spec 1.6) per deployable, from its hashed lock, made by cyclonedx-py.

    .venv-audit/bin/python -m scripts.supply_chain.sbom [--out dist/sbom]

Writes ``<out>/<deployable>.cdx.json``: every pinned package of the lock with its version, purl and the
sha256 digests the lock allows. Reproducible (no timestamp, no random serial), so a rebuild diffs cleanly.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from scripts.supply_chain.locks import DEPLOYABLES, ROOT, Deployable

OUT = ROOT / "dist" / "sbom"


def _root_pyproject(deployable: Deployable, tmp: Path) -> Path:
    """The SBOM's main component: the deployable's own pyproject, or one naming it with the project's version."""
    if deployable.pyproject is not None:
        return ROOT / deployable.pyproject
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    path = tmp / f"{deployable.name}.pyproject.toml"
    fields = {"name": f"fraudops-{deployable.name}", "version": version, "description": deployable.description}
    path.write_text("[project]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items()))  # TOML strings
    return path


def write_sbom(deployable: Deployable, out: Path) -> Path:
    """Run ``cyclonedx-py requirements`` on the deployable's lock; the output is validated against the schema."""
    lock = ROOT / deployable.lock
    if not lock.is_file():
        raise FileNotFoundError(f"{deployable.name}: no lock at {deployable.lock}")
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{deployable.name}.cdx.json"
    cyclonedx = Path(sys.executable).parent / "cyclonedx-py"
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(cyclonedx), "requirements", str(lock), "--pyproject", str(_root_pyproject(deployable, Path(tmp)))]
        cmd += ["--mc-type", "library" if deployable.name == "bank" else "application"]
        cmd += ["--sv", "1.6", "--of", "JSON", "--output-reproducible", "--validate", "-o", str(target)]
        # cyclonedx-lib warns that a requirements file has no dependency graph: true, and said once here.
        env = os.environ | {"PYTHONWARNINGS": "ignore::UserWarning"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{deployable.name}: cyclonedx-py failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    try:
        for deployable in DEPLOYABLES:
            path = write_sbom(deployable, args.out)
            print(f"sbom: {deployable.name}: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"sbom: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
