"""Three banks run `fraudops federated client --rounds 3` at once against `fraudops serve` with its key check on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cli.devtools.azurite import storage_env
from cli.server import free_port
from shared.adapters.function_keys import HEADER
from shared.federated.rounds import RoundConfig, Rounds
from tests.conftest import ROOT

KEY = "fn-key-for-this-test"
BANKS = {"bank-a": "sign-a", "bank-b": "sign-b", "bank-c": "sign-c"}


def _federation(directory) -> tuple[dict[str, str], str]:
    """Each bank's identity key file, and the server's signing key; the roster pinning them all is written to
    ``directory / "roster.json"``."""
    from fraudops_bank.roster import Roster, b64, identity_from_secret, identity_public, new_identity_key

    keys = {bank: new_identity_key() for bank in BANKS}
    server = "a-server-signing-secret-for-this-test-only"
    for bank, key in keys.items():
        (directory / f"{bank}.identity").write_text(b64(key))
    roster = Roster({b: identity_public(k) for b, k in keys.items()}, identity_public(identity_from_secret(server)))
    (directory / "roster.json").write_text(roster.to_json())
    return {b: str(directory / f"{b}.identity") for b in BANKS}, server


@pytest.fixture
def served(store, azurite, tmp_path):
    experiment = f"cli-{os.getpid()}-{time.monotonic_ns()}"
    identities, server_key = _federation(tmp_path)
    env = {
        **os.environ,
        **storage_env(azurite),
        "FL_BANK_KEYS": json.dumps(BANKS),
        "FL_MIN_CLIENTS": "3",
        "FL_EXPERIMENT": experiment,
        "FL_ADMIN_KEY": "admin-key-for-this-test",
        "FRAUDOPS_FUNCTION_KEY": KEY,
        "FL_SERVER_SIGNING_KEY": server_key,
        "FL_PHASE_SECONDS": "600",
        "ROSTER": str(tmp_path / "roster.json"),
        **{f"IDENTITY_{b}": path for b, path in identities.items()},
    }
    Rounds(store, experiment, RoundConfig(min_clients=3, mode="secure")).start_with_statistics(29)
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/api/health", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"fraudops serve did not start: {(tmp_path / 'serve.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield base, env
    finally:
        server.terminate()
        server.wait(timeout=20)


def _client(base, env, bank, data, *, rounds=3, key=KEY, source=("--data",), command=None, wait=120):
    """``fraudops federated client`` (or ``command``, e.g. the standalone ``fraudops-bank client``) as a process."""
    cmd = [
        *(command or [sys.executable, "-m", "cli.main", "federated", "client"]),
        "--bank",
        bank,
        *source,
        str(data),
        "--url",
        base,
        "--allow-http",  # the local test server
        "--rounds",
        str(rounds),
        "--wait-seconds",
        str(wait),
        "--roster",
        env["ROSTER"],
        "--identity-key",
        env.get(f"IDENTITY_{bank}", env["ROSTER"]),
        "--privacy-ledger",
        str(Path(env["ROSTER"]).parent / f"{bank}.ledger.json"),
        "--min-rows",
        "500",
        "--min-frauds",
        "5",
    ]
    client_env = {**env, "FL_BANK_KEY": BANKS.get(bank, "x"), "FRAUDOPS_FUNCTION_KEY": key}
    return subprocess.Popen(cmd, cwd=ROOT, env=client_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_three_banks_take_three_rounds_each_waiting_for_the_others(served, tmp_path):
    from training.generate import generate

    base, env = served
    assert httpx.get(f"{base}/api/federated/model").status_code == 401  # the server checks keys like the host
    files = []
    for i, bank in enumerate(BANKS):
        files.append(tmp_path / f"{bank}.csv")
        generate(4000, 20 + i, files[-1], fraud_rate=0.02)
    procs = {bank: _client(base, env, bank, data) for bank, data in zip(BANKS, files, strict=True)}
    results = {}
    for bank, proc in procs.items():
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, f"{bank}: {err[-3000:]}"
        results[bank] = json.loads(out.strip().splitlines()[-1])
        assert "waiting for it to close" in err or results[bank]["rounds"][0]["status"] == "closed"
    for bank, summary in results.items():
        assert [r["round"] for r in summary["rounds"]] == [0, 1, 2], (bank, summary)
        assert all(r["status"] == "closed" and r["secure"] == "summed" for r in summary["rounds"]), summary
    status = httpx.get(f"{base}/api/federated/rounds/2", headers={HEADER: KEY}).json()
    assert status["status"] == "closed" and status["mode"] == "secure" and status["summed"] == sorted(BANKS)
    assert status["participants"] == []  # the server holds no bank's own figures, only the totals
    totals = status["aggregate_metrics"]
    assert totals["examples"] + totals["holdout_examples"] == 12_000 and 0 < totals["local_loss"] < 1
    # each bank judged the served model and a model of its own rows alone on its most recent rows; the server
    # has only the totals of those losses, each bank its own figures (AUC included) in its summary
    assert 0 < totals["served_holdout_loss"] < 1 and 0 < totals["alone_holdout_loss"] < 1
    for summary in results.values():
        judged = summary["rounds"][-1]["evaluation"]
        assert judged["holdout_rows"] > 0 and 0.5 < judged["served_holdout_auc"] <= 1 and "alone_holdout_auc" in judged
    model = httpx.get(f"{base}/api/federated/model", headers={HEADER: KEY, "X-FL-Wire": "2"})
    assert model.headers["x-fl-round"] == "3" and "signature" in json.loads(model.headers["x-fl-metadata"])
    ledger = json.loads((Path(env["ROSTER"]).parent / "bank-a.ledger.json").read_text())
    assert next(iter(ledger.values())) == {"1": None, "2": None}  # the bank's own record: two rounds without noise


def test_a_client_with_the_wrong_function_key_stops_with_the_hosts_reason(served, tmp_path):
    from training.generate import generate

    base, env = served
    generate(500, 1, tmp_path / "d.csv")
    proc = _client(base, env, "bank-a", tmp_path / "d.csv", rounds=1, key="not-the-key")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "function key is not valid" in err, err[-2000:]


def _parquet_parts(directory, rows, seed, files=3):
    """Generated rows as a directory of Parquet files, as a bank's table would be stored."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shared.domain.contracts import get_contract
    from training.generate import sample_features

    contract = get_contract("creditcard")
    FEATURES, LABEL = contract.feature_names, contract.roles.label

    x, y = sample_features(rows, seed, fraud_rate=0.02)
    directory.mkdir()
    for i, part in enumerate(np.array_split(np.arange(rows), files)):
        columns = {f: x[part, j].astype(np.float64) for j, f in enumerate(FEATURES)}
        pq.write_table(pa.table({**columns, LABEL: y[part].astype(np.int64)}), directory / f"part-{i}.parquet")
    return directory


SPARK_ENV = {
    "PYSPARK_SUBMIT_ARGS": "--master local[2] --conf spark.ui.enabled=false --conf spark.driver.host=127.0.0.1 "
    "--conf spark.driver.bindAddress=127.0.0.1 --conf spark.sql.shuffle.partitions=2 pyspark-shell",
    "SPARK_LOCAL_IP": "127.0.0.1",
    "PYSPARK_PYTHON": sys.executable,
}


@pytest.mark.slow
def test_a_bank_on_spark_takes_part_in_real_rounds_beside_numpy_banks(served, tmp_path):
    """`--engine spark --table` over Parquet parts: round 0 and a model round, accepted and aggregated by the server."""
    pytest.importorskip("pyspark")
    from training.generate import generate

    base, env = served
    table = _parquet_parts(tmp_path / "bank-a-table", 3000, 30)
    procs = {
        "bank-a": _client(
            base, {**env, **SPARK_ENV}, "bank-a", table, rounds=2, wait=300, source=("--engine", "spark", "--table")
        )
    }
    for i, bank in enumerate(("bank-b", "bank-c")):
        generate(2000, 40 + i, tmp_path / f"{bank}.csv", fraud_rate=0.02)
        procs[bank] = _client(base, env, bank, tmp_path / f"{bank}.csv", rounds=2, wait=300)
    results = {}
    for bank, proc in procs.items():
        out, err = proc.communicate(timeout=400)
        assert proc.returncode == 0, f"{bank}: {err[-3000:]}"
        results[bank] = json.loads(out.strip().splitlines()[-1])
    assert results["bank-a"]["engine"] == "spark" and results["bank-a"]["rows_used_locally"] == 3000
    assert all([r["round"] for r in s["rounds"]] == [0, 1] for s in results.values()), results
    for n in (0, 1):
        state = httpx.get(f"{base}/api/federated/rounds/{n}", headers={HEADER: KEY}).json()
        assert state["status"] == "closed" and state["summed"] == sorted(BANKS), state
    totals = httpx.get(f"{base}/api/federated/rounds/1", headers={HEADER: KEY}).json()["aggregate_metrics"]
    # the Spark bank's 3,000 rows (no time column: none held out) inside the sum, beside the NumPy banks' rows
    assert totals["examples"] + totals["holdout_examples"] == 7000
    assert 0 < totals["local_loss"] < totals["served_loss"]  # the Spark engine's log loss is in the banks' total


def _python311() -> str | None:
    found = subprocess.run(
        ["bash", str(ROOT / "scripts" / "find-python.sh"), "3.11"], capture_output=True, text=True, check=False
    )
    return found.stdout.strip() or None


@pytest.fixture(scope="module")
def bank_install(tmp_path_factory):
    """The bank package as a bank installs it: its wheel, in a fresh Python 3.11 venv, with the locked dependencies."""
    import shutil
    import zipfile

    python = _python311()
    if python is None:
        pytest.skip("no Python 3.11 on this machine (scripts/find-python.sh 3.11 found none)")
    work = tmp_path_factory.mktemp("bank-install")
    source = work / "src" / "fraudops_bank"
    shutil.copytree(ROOT / "fraudops_bank", source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    run = {"capture_output": True, "text": True, "timeout": 600, "cwd": work}
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(work / "dist"), str(source)], **run
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (work / "dist").glob("fraudops_bank-*.whl")
    venv = work / "venv"
    steps = [
        [python, "-m", "venv", str(venv)],
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "--require-hashes",
            "-r",
            str(ROOT / "fraudops_bank" / "requirements.lock"),
        ],
        [str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps", str(wheel)],
    ]
    for step in steps:
        done = subprocess.run(step, **run)
        assert done.returncode == 0, f"{step}: {done.stderr[-3000:]}"
    return zipfile.ZipFile(wheel).namelist(), venv


@pytest.mark.slow
def test_the_wheel_holds_the_bank_package_only(bank_install):
    names, _ = bank_install
    assert all(n.startswith(("fraudops_bank/", "fraudops_bank-0.2.0.dist-info/")) for n in names), names
    assert {"fraudops_bank/run.py", "fraudops_bank/engines/spark.py", "fraudops_bank/engines/numpy.py"} <= set(names)


@pytest.mark.slow
def test_a_bank_installs_the_client_alone_and_takes_part_from_python_3_11(served, bank_install, tmp_path):
    _, venv = bank_install
    python = str(venv / "bin" / "python")
    probe = (
        "import importlib.util as u, sys; import fraudops_bank.run, fraudops_bank.client, fraudops_bank.credentials, "
        "fraudops_bank.engines.numpy, fraudops_bank.engines.spark; print(sys.version_info[:2], "
        "[m for m in ('lightgbm', 'mlflow', 'azure.functions', 'pyspark', 'shared', 'training', 'api', 'cli', "
        "'functions', 'function_app') if u.find_spec(m) is not None])"
    )
    seen = subprocess.run([python, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert seen.returncode == 0, seen.stderr[-3000:]
    assert seen.stdout.strip() == "(3, 11) []"  # every module imports on 3.11; nothing of the server is there

    base, env = served
    bare = {k: v for k, v in env.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    table = _parquet_parts(tmp_path / "table", 1200, 50)
    command = [str(venv / "bin" / "fraudops-bank"), "client"]
    proc = _client(base, bare, "bank-a", table, rounds=1, command=command, source=("--engine", "numpy", "--table"))
    others = [_client(base, env, b, table, rounds=1, source=("--table",)) for b in ("bank-b", "bank-c")]
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert all(p.wait(timeout=120) == 0 for p in others)
    assert json.loads(out.strip().splitlines()[-1])["rounds"] == [{"round": 0, "status": "closed", "secure": "summed"}]
    state = httpx.get(f"{base}/api/federated/rounds/0", headers={HEADER: KEY}).json()
    assert state["summed"] == sorted(BANKS) and state["aggregate_metrics"]["examples"] == 3600

    spark = _client(base, bare, "bank-b", table, rounds=1, command=command, source=("--engine", "spark", "--table"))
    _, err = spark.communicate(timeout=120)
    assert spark.returncode == 1 and "pip install 'fraudops-bank[spark]'" in err, err[-2000:]
