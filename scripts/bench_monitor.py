"""``make bench-monitor``: the daily monitoring run's peak memory over a month of recorded predictions, beside
its floor in the same run: reading the same record columns with pyarrow alone (``load_served``).

Each measurement runs in a fresh process (peak RSS cannot be reset), over the same generated records held in an
in-memory store: ``--predictions`` spread over 30 days (default 1,000,000). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

MEASURE = r"""
import gc, io, resource, sys
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shared.adapters.memory_store import MemoryBlobStore
from shared.domain import layout

n, mode = int(sys.argv[1]), sys.argv[2]
store = MemoryBlobStore()
store.ensure_containers()
day, rng, per_day = date(2026, 12, 1), np.random.default_rng(0), n // 30
for k in range(30):
    d = day - timedelta(days=k)
    at = datetime(d.year, d.month, d.day, 12, tzinfo=UTC)
    table = pa.table({
        "transaction_id": [f"t{k}-{i}" for i in range(per_day)],
        "customer_id": [f"cust_{i % 50000:032x}" for i in range(per_day)],
        "model_version": ["20261101T000000Z-aaaaaaaa"] * per_day,
        "fraud_probability": rng.random(per_day),
        "is_fraud": rng.random(per_day) > 0.99,
        "threshold": np.full(per_day, 0.5),
        "request_id": [f"r{i}" for i in range(per_day)],
        "latency_ms": rng.random(per_day),
        "scored_at": pa.array([at] * per_day, pa.timestamp("us", tz="UTC")),
        "source": ["http"] * per_day,
        "Time": rng.random(per_day),
    })
    out = io.BytesIO()
    pq.write_table(table, out)
    store.put_bytes(layout.PREDICTIONS, layout.prediction_records(d.isoformat(), "bench"), out.getvalue())
    del table, out
gc.collect()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if mode == "floor":
    from shared.monitoring.served import load_served

    load_served(store, day - timedelta(days=29), day, first_only=False)
else:
    from shared.domain.settings import Settings
    from shared.monitoring.service import run_monitor

    run_monitor(store, Settings.model_validate({}).monitoring, day=day)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
"""


def measure(predictions: int, mode: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(predictions), mode],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"the {mode} measurement failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--predictions", type=int, default=1_000_000)
    args = parser.parse_args()
    floor, monitor = measure(args.predictions, "floor"), measure(args.predictions, "monitor")
    figures = {
        "predictions": args.predictions,
        "floor_mb": round(floor),
        "monitor_mb": round(monitor),
        "ratio": round(monitor / max(floor, 1.0), 2),
    }
    print(f"{'predictions':>12} {'floor MB':>9} {'monitor MB':>11} {'ratio':>6}")
    print(f"{args.predictions:>12,} {floor:>9.0f} {monitor:>11.0f} {figures['ratio']:>6.2f}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
