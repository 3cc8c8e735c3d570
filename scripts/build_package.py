#!/usr/bin/env python3
"""Build one deployable's package: ``python3 scripts/build_package.py scoring|pipeline [--out DIR] [--zip FILE]``.

The package is what Azure runs, built here from the app's hashed lock, never resolved at deploy time:

- ``function_app.py`` from ``deploy/<app>/`` (one line over ``functions/apps.py``) and the top-level ``host.json``;
- the source packages the app needs (the scoring app has no ``training``), from the working tree or, with
  ``--ref``, from a commit (``git archive``: what is committed is what is deployed);
- ``.python_packages/lib/site-packages``: ``deploy/<app>/requirements.lock`` installed with ``pip install
  --target --require-hashes --no-deps --only-binary=:all:`` for Linux x86-64 and CPython 3.13 (the Flex
  Consumption platform), so no remote build runs and every byte is pinned by hash;
- ``fraudops-package.json``: the app, the lock's SHA-256, the commit, and the packages installed.

``infra/deploy.sh`` and ``azd`` (``azure.yaml``'s prepackage hooks) both run this script, so they deploy the same
bytes. Standard library only: it runs with any Python 3.11+ that has pip.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The source each app needs. The scoring app: the HTTP and stream entry points and the library they run on; the
# dataset contracts; no training, no command line. fraudops_bank is the bottom layer of the tree (the protocol the
# federated code shares with the banks' client, and constants such as the function-key header): pure Python, its
# libraries (safetensors, dp-accounting) are in the pipeline's lock only, and loaded only by the federated routes.
SOURCES = {
    "scoring": ("api", "functions", "shared", "contracts", "fraudops_bank"),
    "pipeline": ("api", "functions", "shared", "contracts", "training", "fraudops_bank"),
}
PLATFORM = "manylinux_2_28_x86_64"  # Flex Consumption's Linux x86-64 (glibc 2.28 or later)
# pip matches only the platform tags it is given: every manylinux a glibc-2.28 x86-64 system runs, newest first
PLATFORMS = (PLATFORM, *(f"manylinux_2_{minor}_x86_64" for minor in range(27, 16, -1)), "manylinux2014_x86_64")
PYTHON_VERSION = "3.13"
SITE_PACKAGES = Path(".python_packages") / "lib" / "site-packages"  # where the Python worker looks in a package
MANIFEST = "fraudops-package.json"
# Tests of the deploy scripts (tests/infra/test_scripts.py) set this to leave the dependencies out: the package's
# source and manifest are what they check, and tests/deployables/ builds complete packages. Its manifest says so.
SKIP_INSTALL = "FRAUDOPS_PACKAGE_SKIP_INSTALL"


class BuildError(Exception):
    """A package that cannot be built, with the reason."""


def lock_of(app: str) -> Path:
    return ROOT / "deploy" / app / "requirements.lock"


def _sources(app: str, ref: str | None, into: Path) -> str | None:
    """Copy the app's source packages into ``into``; the commit they came from (None: the working tree)."""
    paths = SOURCES[app]
    if ref is None:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")
        for name in paths:
            shutil.copytree(ROOT / name, into / name, ignore=ignore)
        return None
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", f"{ref}^{{commit}}"], capture_output=True, text=True, check=False
    )
    if commit.returncode != 0:
        raise BuildError(f"{ref} is not a commit of {ROOT}: {commit.stderr.strip()}")
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "src.zip"  # zip, not tar: tarfile's safe extraction needs Python 3.11.4+
        subprocess.run(["git", "-C", str(ROOT), "archive", "--format=zip", "-o", str(archive), ref, *paths], check=True)
        with zipfile.ZipFile(archive) as source:
            source.extractall(into)  # our own commit's paths, relative and inside the listed folders
    return commit.stdout.strip()


def _install(app: str, site: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--require-hashes",
        "--only-binary=:all:",
        *(option for platform in PLATFORMS for option in ("--platform", platform)),
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--target",
        str(site),
        "-r",
        str(lock_of(app)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"pip could not install {lock_of(app).relative_to(ROOT)}: {done.stderr.strip()[-2000:]}")


def _installed(site: Path) -> dict[str, str]:
    found = {}
    for info in site.glob("*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").rpartition("-")
        found[name.lower().replace("_", "-")] = version
    return dict(sorted(found.items()))


def build(app: str, out: Path, ref: str | None = None) -> Path:
    """Build ``app``'s package in ``out`` (emptied first) and return it."""
    if app not in SOURCES:
        raise BuildError(f"unknown app {app!r}: choose one of {', '.join(SOURCES)}")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    commit = _sources(app, ref, out)
    shutil.copy2(ROOT / "deploy" / app / "function_app.py", out / "function_app.py")
    shutil.copy2(ROOT / "host.json", out / "host.json")
    shutil.copy2(lock_of(app), out / "requirements.lock")  # what was installed, for the SBOM and the audit
    site = out / SITE_PACKAGES
    installed = os.environ.get(SKIP_INSTALL) != "1"
    if installed:
        _install(app, site)
    else:
        print(f"warning: {SKIP_INSTALL}=1: the {app} package has no dependencies and cannot run", file=sys.stderr)
        site.mkdir(parents=True)
    for cache in site.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    manifest = {
        "app": app,
        "lock_sha256": hashlib.sha256(lock_of(app).read_bytes()).hexdigest(),
        "commit": commit,
        "python": PYTHON_VERSION,
        "platform": PLATFORM,
        "dependencies_installed": installed,
        "packages": _installed(site),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def zip_package(package: Path, target: Path) -> Path:
    """Zip the package's contents (not the folder: the platform wants host.json at the root), in a stable order."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in sorted(p for p in package.rglob("*") if p.is_file()):
            archive.write(path, path.relative_to(package).as_posix())
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a deployable's package from its hashed lock.")
    parser.add_argument("app", help="scoring or pipeline")
    parser.add_argument("--out", type=Path, help="package folder (default: dist/<app>)")
    parser.add_argument("--zip", type=Path, help="also write the package as this zip file")
    parser.add_argument("--ref", help="take the source from this commit (git archive) instead of the working tree")
    args = parser.parse_args(argv)
    try:
        package = build(args.app, args.out or ROOT / "dist" / args.app, args.ref)
        if args.zip:
            zip_package(package, args.zip)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if "unknown app" in str(exc) else 1
    size = sum(p.stat().st_size for p in package.rglob("*") if p.is_file())
    print(f"built {args.app}: {package} ({size / 1e6:.0f} MB unpacked)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
