"""Cold start of the scoring package as Azure runs it: ``python scripts/bench_cold_start.py [--package DIR]``.

Builds the scoring app's package (``scripts/build_package.py scoring``: its lock, for Linux x86-64 and Python
3.13) unless ``--package`` names one, then times fresh ``python -I -S`` processes that see only the package (its
source and ``.python_packages/lib/site-packages``, as the Python worker puts them on the path):

- **ours**: ``import function_app`` (the worker's indexing imports exactly this);
- **floor**: importing every third-party module that ``import function_app`` loads (each library's modules,
  submodules included, in the order they were loaded), and nothing of ours: the libraries come from the same
  package, so the ratio is what our own modules add on top of the library code they cannot avoid.

Our composition root pauses the garbage collector while it imports (``functions/startup.py``); the floor is a
plain import, as any app's libraries cost. For transparency the floor is also timed with the collector paused
(``package_floor_paused_import_s``): that ratio is what our own modules cost, the other what an app gains over
its libraries. Runs alternate (ours, floor, paused floor, ...); the medians are reported with their ratios;
issue 41's target is at most 1.2 against the plain floor. The libraries of the floor are printed, so a library
loaded at import time that the app could defer shows up there. ``make bench-score`` runs this too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.2

PATHS = "import sys; sys.path[:0] = [{package!r}, {package!r} + '/.python_packages/lib/site-packages']\n"
OURS = PATHS + "import time\nt = time.perf_counter()\nimport function_app\nprint(time.perf_counter() - t)\n"
FLOOR = PATHS + "import time, importlib\nt = time.perf_counter()\nfor m in {modules!r}: importlib.import_module(m)\n"
FLOOR += "print(time.perf_counter() - t)\n"
FLOOR_PAUSED = FLOOR.replace("t = time.perf_counter()", "import gc; gc.disable(); t = time.perf_counter()")
LIBRARIES = PATHS + (
    "import json, function_app\n"
    "site = {package!r} + '/.python_packages/'\n"
    "names = [n for n, m in list(sys.modules.items()) if site in str(getattr(m, '__file__', '') or '')]\n"
    "print(json.dumps(names))\n"  # sys.modules keeps the order modules were loaded in
)


def _python(code: str, package: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, cwd=package, timeout=120, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"the package did not import: {done.stderr[-2000:]}")
    return done.stdout.strip()


def measure(package: Path, runs: int = 7) -> dict[str, Any]:
    """The medians of ``runs`` alternating fresh processes, and the floor's libraries."""
    modules = json.loads(_python(LIBRARIES.format(package=str(package)), package))
    libraries = sorted({".".join(m.split(".")[:2]) if m.startswith("azure.") else m.split(".")[0] for m in modules})
    ours, floor, paused = [], [], []
    for _ in range(runs):
        ours.append(float(_python(OURS.format(package=str(package)), package)))
        floor.append(float(_python(FLOOR.format(package=str(package), modules=modules), package)))
        paused.append(float(_python(FLOOR_PAUSED.format(package=str(package), modules=modules), package)))
    ours_s, floor_s, paused_s = statistics.median(ours), statistics.median(floor), statistics.median(paused)
    size = sum(p.stat().st_size for p in package.rglob("*") if p.is_file())
    return {
        "package_import_s": round(ours_s, 3),
        "package_floor_import_s": round(floor_s, 3),
        "ratio_package_import_vs_floor": round(ours_s / floor_s, 3),
        "package_floor_paused_import_s": round(paused_s, 3),
        "ratio_package_import_vs_floor_paused": round(ours_s / paused_s, 3),
        "package_cold_start_target": f"{'met' if ours_s / floor_s <= TARGET else 'MISSED'}: at most {TARGET}x",
        "package_floor_libraries": libraries,
        "package_floor_modules": len(modules),
        "package_unpacked_mb": round(size / 1e6),
        "package_runs": runs,
    }


def build_scoring_package(into: Path) -> Path:
    out = into / "scoring"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_package.py"), "scoring", "--out", str(out)])
    if done.returncode != 0:
        raise SystemExit("could not build the scoring package")
    print(f"built the scoring package in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, help="a built scoring package (default: build one in a temp dir)")
    parser.add_argument("--runs", type=int, default=7, help="fresh processes of each kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        package = args.package or build_scoring_package(Path(tmp))
        result = measure(package, args.runs)
    for key, value in result.items():
        print(f"{key:34} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
