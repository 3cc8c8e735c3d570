"""fraudops end to end: the demo with a small row count, and etl's exit code for a rejected file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cli.devtools.azurite import storage_env
from tests.conftest import ROOT

# A short search, as the ``settings`` fixture has it: these tests are about the commands, not model quality.
SHORT_TRAINING = {"TRAIN_SEARCH_TRIALS": "3", "TRAIN_MAX_BIN": "255", "TRAIN_COMPARE_FAMILIES": "false"}


def _fraudops(*args: str, env_conn: str, cwd, mlflow: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **storage_env(env_conn), **SHORT_TRAINING}
    if mlflow is not None:
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{mlflow}/mlflow.db"
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def _blobs_holding(store, needle: bytes) -> list[str]:
    """Every blob of every container whose bytes, or (Parquet) whose decoded string values, hold ``needle``."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from shared.adapters.storage import CONTAINERS

    found = []
    for container in CONTAINERS:
        for name in store.list_names(container):
            data = store.get_bytes(container, name)[0]
            if data[:4] == b"PAR1":  # compressed pages: look at the values
                table = pq.read_table(io.BytesIO(data))
                strings = [c for c in table.columns if pa.types.is_string(c.type) or pa.types.is_large_string(c.type)]
                data = "\n".join(str(v) for c in strings for v in c.to_pylist()).encode()
            if needle in data:
                found.append(f"{container}/{name}")
    return found


def test_etl_rejection_exits_2_with_the_reason(store, azurite, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    r = _fraudops("etl", str(bad), env_conn=azurite, cwd=ROOT)
    assert r.returncode == 2
    assert "rejected: the file is not a creditcard table" in r.stderr.strip().splitlines()[-1]
    assert json.loads(r.stdout.strip().splitlines()[-1])["status"] == "rejected"


def test_score_command_writes_scores(store, azurite, tmp_path, generated_csv):
    from cli.devtools.models import publish_synthetic_model

    # a champion to score with (training has its own tests): a quick model published as training does
    publish_synthetic_model(store, "fraud", version="20261101T000000Z-aaaaaaaa", trees=30)
    out = tmp_path / "scores.csv"
    r = _fraudops("score", str(generated_csv), "--out", str(out), env_conn=azurite, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-1000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["rows"] == summary["scored"] == 60000
    assert out.read_text().splitlines()[0].startswith('"transaction_id","fraud_probability","is_fraud"')


def test_init_creates_every_container_and_can_run_twice(tmp_path):
    from cli.devtools.azurite import private_azurite_bare
    from shared.adapters.storage import CONTAINERS

    with private_azurite_bare() as conn:
        for _ in range(2):
            r = _fraudops("init", env_conn=conn, cwd=ROOT)
            assert r.returncode == 0, r.stderr[-2000:]
            assert json.loads(r.stdout.strip().splitlines()[-1])["containers"] == list(CONTAINERS)
        from azure.storage.blob import BlobServiceClient

        names = {c.name for c in BlobServiceClient.from_connection_string(conn).list_containers()}
        assert names == set(CONTAINERS)


def test_unreachable_storage_is_one_line_with_what_to_do(tmp_path):
    src = tmp_path / "x.csv"
    src.write_text("Time\n1\n")
    dead = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    r = _fraudops("etl", str(src), env_conn=dead, cwd=ROOT)
    assert r.returncode == 1 and "is not reachable" in r.stderr and "Traceback" not in r.stderr
    assert "read from DataStorage" in r.stderr.strip().splitlines()[-1]  # storage_env sets both: DataStorage wins
