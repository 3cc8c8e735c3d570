"""Distributed retraining benchmark (``make bench-train-distributed``): the single-node path and the Dask path on
the same window, on this machine.

It generates ``--rows`` transactions, lands them as ``--parts`` bank files through the ETL into a private
Azurite, and runs ``fraudops train`` twice in child processes with the same settings: once on one
process (the peer, measured in the same run), once with ``DASK_SCHEDULER_ADDRESS`` pointing at a
``LocalCluster`` this script starts (two worker processes, one thread each, ``--worker-memory`` GiB
each: Dask's nanny kills a worker that reaches 95 % of it). For each: wall time, rows per second, the
training process's peak resident memory (VmHWM), and for the Dask run each worker's peak, against the
limit. The window is chosen larger than one worker's limit can hold on one process: the single-node
run's peak shows it, the workers' peaks show the Dask run staying under.

Prints the figures and writes ``bench-results/train-distributed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _vmhwm_mb() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return -1


def _land(store, settings, csv: Path, parts: int) -> tuple[int, str]:
    """``csv`` as ``parts`` bank files through the ETL; (rows landed, dataset version)."""
    from shared.domain import layout
    from shared.etl.service import run_etl

    lines = csv.read_bytes().splitlines(keepends=True)
    head, body = lines[0], lines[1:]
    size = -(-len(body) // parts)
    rows, version = 0, ""
    for i in range(parts):
        chunk = b"".join([head, *body[i * size : (i + 1) * size]])
        store.put_bytes(layout.RAW, f"bank-{i}.csv", chunk)
        outcome = run_etl(store, settings.etl, name=f"bank-{i}.csv")
        rows, version = rows + outcome.rows_valid, outcome.dataset_version
    return rows, version


def _train(env: dict[str, str]) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "-m", "cli.main", "train"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    if child.returncode != 0:
        sys.stderr.write(child.stderr[-4000:])
        raise SystemExit(f"fraudops train failed with status {child.returncode}")
    return json.loads(child.stdout.strip().splitlines()[-1]), wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_500_000)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--worker-memory", type=float, default=1.0, help="GiB per Dask worker")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from cli.devtools.azurite import private_azurite, storage_env
    from shared.adapters.storage import build_blob_store
    from shared.domain.settings import get_settings
    from training.generate import generate

    work = Path(tempfile.mkdtemp(prefix="bench-dist-"))
    csv = work / "window.csv"
    generate(args.rows, args.seed, csv, fraud_rate=0.005)
    common = {
        "TRAIN_WINDOW_ROWS": str(args.rows * 2),
        "TRAIN_SEARCH_TRIALS": "5",
        "TRAIN_SEARCH_SECONDS": "120",
        "TRAIN_TIME_BUDGET_SECONDS": "2400",
        "TRAIN_COMPARE_FAMILIES": "false",
        "TRAIN_SEARCH_ROWS": "250000",
    }
    with private_azurite() as connection, tempfile.TemporaryDirectory(prefix="bench-mlflow-") as mlflow:
        env = {**os.environ, **storage_env(connection), **common, "MLFLOW_TRACKING_URI": f"sqlite:///{mlflow}/m.db"}
        os.environ.update(env)
        get_settings.cache_clear()
        settings = get_settings()
        store = build_blob_store(settings.storage)
        rows, version = _land(store, settings, csv, args.parts)
        csv.unlink()
        matrix_mb = rows * 29 * 4 / 2**20
        print(f"window: {rows:,} rows in {args.parts} parts of {version} ({matrix_mb:.0f} MB as float32)", flush=True)

        single, single_wall = _train({**env, "TRAIN_DISTRIBUTED_ROWS": str(rows * 10)})
        print(
            f"single node: {single_wall:.0f} s, {rows / single_wall:,.0f} rows/s, peak RSS {single['peak_rss_mb']} MB, "
            f"AUC {single['auc']:.4f} PR-AUC {single['pr_auc']:.4f}",
            flush=True,
        )
        limit = int(args.worker_memory * 2**30)
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, memory_limit=limit, host="127.0.0.1", dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            pids_before = client.run(os.getpid)
            dist, dist_wall = _train({**env, "DASK_SCHEDULER_ADDRESS": cluster.scheduler_address})
            workers = client.run(_vmhwm_mb)
            restarted = client.run(os.getpid) != pids_before
        limit_mb = limit // 2**20
        print(
            f"dask, 2 workers of {limit_mb} MB: {dist_wall:.0f} s, {rows / dist_wall:,.0f} rows/s, driver peak RSS "
            f"{dist['peak_rss_mb']} MB, workers' peaks {sorted(workers.values())} MB"
            f"{' (a worker was restarted)' if restarted else ''}, AUC {dist['auc']:.4f} PR-AUC {dist['pr_auc']:.4f}",
            flush=True,
        )
        result = {
            "rows": rows,
            "parts": args.parts,
            "matrix_mb": round(matrix_mb, 1),
            "worker_memory_limit_mb": limit_mb,
            "single_node": {
                "seconds": round(single_wall, 1),
                "rows_per_second": round(rows / single_wall),
                "peak_rss_mb": single["peak_rss_mb"],
                "over_one_worker_limit": single["peak_rss_mb"] > limit_mb,
                "auc": round(single["auc"], 4),
                "pr_auc": round(single["pr_auc"], 4),
            },
            "dask": {
                "seconds": round(dist_wall, 1),
                "rows_per_second": round(rows / dist_wall),
                "driver_peak_rss_mb": dist["peak_rss_mb"],
                "worker_peak_rss_mb": sorted(workers.values()),
                "every_worker_under_limit": all(v < limit_mb for v in workers.values()) and not restarted,
                "auc": round(dist["auc"], 4),
                "pr_auc": round(dist["pr_auc"], 4),
                "search_sample_rows": 250_000,
            },
            "ratio_seconds_dask_to_single": round(dist_wall / single_wall, 2),
            "ratio_peak_worker_to_single": round(max(workers.values()) / single["peak_rss_mb"], 2),
        }
    out = ROOT / "bench-results" / "train-distributed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
