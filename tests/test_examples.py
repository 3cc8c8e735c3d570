"""examples/: a bank's first day (land a file, train, score, label, monitor) runs end to end with the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.devtools.azurite import storage_env
from tests.conftest import ROOT

FRAUDOPS = Path(sys.executable).parent / "fraudops"


@pytest.mark.slow
def test_first_day_runs_end_to_end(store, azurite, tmp_path):
    env = {
        **os.environ,
        **storage_env(azurite),
        "FRAUDOPS": str(FRAUDOPS),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
    }
    proc = subprocess.run(
        [str(ROOT / "examples" / "first_day.sh"), str(tmp_path / "day")],
        capture_output=True,
        text=True,
        env=env,
        timeout=280,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summaries = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    init, history, landed, trained, today, batch, stream, labels, monitor = summaries
    assert "raw" in init["containers"] and history["rows"] == landed["rows_valid"] == 10_000
    assert trained["promoted"] and trained["status"] == "trained"
    assert batch["scored"] == stream["scored"] == today["rows"] == 1000
    assert labels["rows_valid"] == 600 and labels["training_rows"]["matched"] == 600
    assert (monitor["served"], monitor["labelled"]) == (1000, 600)
    assert monitor["recall"] is not None and monitor["report"].startswith("reports/monitoring/")
    assert (tmp_path / "day" / "today-scores.csv").read_text().count("\n") == 1001
