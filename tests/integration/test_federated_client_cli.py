"""Three banks run `fraudops federated client --rounds 3` at once against `fraudops serve` with its key check on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from cli.devtools.azurite import storage_env
from cli.server import free_port
from shared.adapters.function_keys import HEADER
from shared.federated.rounds import RoundConfig, Rounds
from tests.conftest import ROOT

KEY = "fn-key-for-this-test"
BANKS = {"bank-a": "sign-a", "bank-b": "sign-b", "bank-c": "sign-c"}


@pytest.fixture
def served(store, azurite, tmp_path):
    experiment = f"cli-{os.getpid()}-{time.monotonic_ns()}"
    env = {
        **os.environ,
        **storage_env(azurite),
        "FL_BANK_KEYS": json.dumps(BANKS),
        "FL_MIN_CLIENTS": "3",
        "FL_EXPERIMENT": experiment,
        "FL_ADMIN_KEY": "admin-key-for-this-test",
        "FRAUDOPS_FUNCTION_KEY": KEY,
    }
    Rounds(store, experiment, RoundConfig(min_clients=3)).start_with_statistics(29)
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


def _client(base, env, bank, data, *, rounds=3, key=KEY):
    cmd = [
        sys.executable,
        "-m",
        "cli.main",
        "federated",
        "client",
        "--bank",
        bank,
        "--data",
        str(data),
        "--url",
        base,
        "--rounds",
        str(rounds),
        "--wait-seconds",
        "120",
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
    closers = [bank for bank, s in results.items() for r in s["rounds"] if r["status"] == "closed"]
    assert len(closers) == 3  # each round was closed by exactly one bank's update
    status = httpx.get(f"{base}/api/federated/rounds/2", headers={HEADER: KEY}).json()
    assert status["status"] == "closed" and sorted(status["participants"]) == sorted(BANKS)
    assert httpx.get(f"{base}/api/federated/model", headers={HEADER: KEY}).headers["x-fl-round"] == "3"


def test_a_client_with_the_wrong_function_key_stops_with_the_hosts_reason(served, tmp_path):
    from training.generate import generate

    base, env = served
    generate(500, 1, tmp_path / "d.csv")
    proc = _client(base, env, "bank-a", tmp_path / "d.csv", rounds=1, key="not-the-key")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "function key is not valid" in err, err[-2000:]
