"""The two deployables as they are built and run (issue 41): each package holds its lock and nothing more, the
scoring package answers a score and a stream batch with only what it carries, and imports no training module.

The packages are built once per session by ``scripts/build_package.py`` (what ``infra/deploy.sh`` and azd run),
from the working tree. The probe runs each in a fresh ``python -I -S`` process: no site-packages, no PYTHONPATH,
so a module missing from a package fails here as it would in Azure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli.devtools.models import publish_synthetic_model
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

BUILD = ROOT / "scripts" / "build_package.py"
PROBE = Path(__file__).with_name("probe.py")
# What the scoring app must never carry nor load: training, plotting, MLflow, Dask, and the federated protocol's
# libraries (its source, fraudops_bank, is the tree's bottom layer: it ships, and its heavy parts stay unloaded).
NOT_IN_SCORING = {
    "training": "training",
    "cli": "cli",
    "mlflow": "mlflow-skinny",
    "dask": "dask",
    "distributed": "distributed",
    "optuna": "optuna",
    "matplotlib": "matplotlib",
    "sklearn": "scikit-learn",
    "pandas": "pandas",
    "skl2onnx": "skl2onnx",
    "onnxmltools": "onnxmltools",
    "sqlalchemy": "sqlalchemy",
    "alembic": "alembic",
    "psycopg2": "psycopg2-binary",
    "adlfs": "adlfs",
    "dp_accounting": "dp-accounting",
    "safetensors": "safetensors",
}
FUNCTIONS = {
    "scoring": ["http_app_func", "score_stream"],
    "pipeline": ["etl_raw_blob", "http_app_func", "monitor_daily", "retrain_model"],
}


def _pins(lock: Path) -> dict[str, str]:
    return {
        name.lower().replace("_", "-"): version
        for name, version in re.findall(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(\S+)", lock.read_text(), re.M)
    }


@pytest.fixture(scope="session")
def packages(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("packages")
    built = {}
    for app in ("scoring", "pipeline"):
        done = subprocess.run(
            [sys.executable, str(BUILD), app, "--out", str(out / app)], capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-3000:]
        built[app] = out / app
    return built


def _site(package: Path) -> Path:
    return package / ".python_packages" / "lib" / "site-packages"


def _distributions(package: Path) -> set[str]:
    return {
        p.name.removesuffix(".dist-info").rpartition("-")[0].lower().replace("_", "-")
        for p in _site(package).glob("*.dist-info")
    }


def _probe(package: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(PROBE), str(package), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env or {"PATH": os.environ["PATH"]},
        cwd=package,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_deployed_pin_is_the_version_the_tests_ran():
    tested = _pins(ROOT / "requirements-dev.lock")
    for app in FUNCTIONS:
        deployed = _pins(ROOT / "deploy" / app / "requirements.lock")
        assert deployed, app
        assert {n: (v, tested.get(n)) for n, v in deployed.items() if tested.get(n) != v} == {}, app
        assert "--hash=sha256:" in (ROOT / "deploy" / app / "requirements.lock").read_text()


def test_the_scoring_set_leaves_out_what_only_training_needs():
    scoring = _pins(ROOT / "deploy" / "scoring" / "requirements.lock")
    pipeline = _pins(ROOT / "deploy" / "pipeline" / "requirements.lock")
    assert set(scoring) < set(pipeline)
    assert set(scoring) & set(NOT_IN_SCORING.values()) == set()
    assert {"onnxruntime", "fastapi", "azure-functions", "azure-eventhub"} <= set(scoring)


def test_each_package_installs_exactly_its_lock(packages):
    for app, package in packages.items():
        manifest = json.loads((package / "fraudops-package.json").read_text())
        lock = _pins(ROOT / "deploy" / app / "requirements.lock")
        assert manifest["packages"] == dict(sorted(lock.items())), app
        assert _distributions(package) == set(lock), app
        assert (package / "host.json").read_bytes() == (ROOT / "host.json").read_bytes()
        assert not list(package.rglob("__pycache__")), app


def test_the_scoring_package_holds_no_training_code_or_library(packages):
    scoring = packages["scoring"]
    top = {p.name for p in scoring.iterdir()}
    assert top == {
        "api",
        "contracts",
        "fraudops_bank",
        "function_app.py",
        "functions",
        "shared",
        "host.json",
        "requirements.lock",
        "fraudops-package.json",
        ".python_packages",
    }
    assert _distributions(scoring) & set(NOT_IN_SCORING.values()) == set()
    assert not [p for p in _site(scoring).iterdir() if p.name.split(".")[0] in NOT_IN_SCORING]


def test_the_pipeline_package_holds_training_and_the_federated_protocol(packages):
    pipeline = packages["pipeline"]
    assert {"training", "fraudops_bank", "shared", "api", "functions", "contracts"} <= {
        p.name for p in pipeline.iterdir()
    }
    assert not (pipeline / "cli").exists() and not (pipeline / "tests").exists()
    assert {"lightgbm", "mlflow-skinny", "optuna", "dask", "onnxmltools"} <= _distributions(pipeline)


def test_the_pipeline_package_registers_its_functions_alone(packages):
    outcome = _probe(packages["pipeline"])
    assert outcome["functions"] == FUNCTIONS["pipeline"]
    assert "training" not in outcome["loaded_at_import"]  # training loads inside the retrain function only
    assert all(path.startswith(str(packages["pipeline"])) for path in outcome["paths"]), outcome["paths"]


def test_the_scoring_package_scores_and_streams_with_only_what_it_carries(packages, store, settings, tmp_path):
    publish_synthetic_model(store, settings.model_name, version="v1", trees=40, seed=1, threshold=0.5)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["DEADLETTER_SPOOL_DIR"] = str(tmp_path / "spool")
    outcome = _probe(packages["scoring"], "score", env=env)
    assert outcome["functions"] == FUNCTIONS["scoring"]
    assert outcome["status"] == 200 and outcome["health"] == 200, outcome["answer"]
    [scored] = outcome["answer"]["results"]
    assert scored["model_version"] == "v1" and scored["explanation"]["contributions"], scored
    assert store.list_names("scored", "date=2026-12-07"), "the stream batch was not archived"
    loaded = set(outcome["loaded"])
    assert loaded & set(NOT_IN_SCORING) == set(), sorted(loaded & set(NOT_IN_SCORING))
    assert all(path.startswith(str(packages["scoring"])) for path in outcome["paths"]), outcome["paths"]
