"""The monitoring report opened in a real browser: headless Chromium renders every panel, with no error."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, date, datetime

import numpy as np
import pytest

from shared.monitoring.report import PANELS
from shared.monitoring.service import run_monitor
from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _render(path) -> dict:
    node = shutil.which("node")
    assert node, "node is needed (the project's toolchain installs Azurite with it)"
    done = subprocess.run(
        [node, str(ROOT / "tests/browser/render.mjs"), str(path), CHROMIUM],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def chromium() -> str:
    if not shutil.which("chromium") and not shutil.which("/usr/bin/chromium"):
        pytest.fail("Chromium is missing: `make setup` installs Debian's chromium package")
    return CHROMIUM


def test_every_panel_renders_with_no_script_error(store, settings, tmp_path, chromium):
    """With traffic, labels, a champion and a federated round, then with nothing at all: nine plots each."""
    from cli.devtools.models import publish_synthetic_model
    from shared.etl.labels import ingest_labels
    from shared.scoring.recorder import PredictionRecorder
    from shared.scoring.records import Scored
    from training.generate import sample_features

    publish_synthetic_model(store, settings.model_name, version="v1", trees=20, seed=1)
    x, _ = sample_features(500, 4, fraud_rate=0.05)
    day = date(2026, 12, 3)
    recorder = PredictionRecorder(store, [f"V{i}" for i in range(1, 29)] + ["Amount"])
    recorder.record(
        Scored(
            x=x.astype(np.float32),
            probabilities=np.linspace(0, 1, 500),
            transaction_ids=[f"t{i}" for i in range(500)],
            customer_ids=None,
            times=None,
            model_version="v1",
            threshold=0.5,
            request_id="r",
            latency_ms=3.0,
            scored_at=datetime(2026, 12, 3, 9, tzinfo=UTC),
        )
    )
    recorder.close()
    labels = "transaction_id,label,labelled_at\n" + "".join(
        f"t{i},{int(i > 400)},2026-12-04T00:00:00Z\n" for i in range(0, 500, 7)
    )
    store.put_bytes("raw", "labels/l.csv", labels.encode())
    ingest_labels(store, name="labels/l.csv")
    for name, when in (("full", day), ("empty", date(2026, 1, 1))):
        outcome = run_monitor(store, settings.monitoring, day=when, now=datetime(2026, 12, 4, tzinfo=UTC))
        assert outcome.served_today == (500 if name == "full" else 0)
        page = tmp_path / f"{name}.html"
        page.write_bytes(store.get_bytes("reports", f"monitoring/{when.isoformat()}.html")[0])
        seen = _render(page)
        assert seen["console_errors"] == [] and seen["page_errors"] == [], seen
        assert seen["requests"] == []  # self-contained: nothing fetched from anywhere
        assert [p["id"] for p in seen["panels"]] == [f"panel-{p}" for p in PANELS]
        for panel in seen["panels"]:
            assert panel["width"] > 100 and panel["height"] > 100 and panel["shapes"] > 5, panel
        assert seen["title"] == f"Monitoring {when.isoformat()}"
