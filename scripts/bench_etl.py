"""ETL benchmark (``make bench-etl``): ETL time against its floor, peak memory, Parquet size.

The floor is what an ETL cannot beat without pipelining: a bare chunked download of the same
blob from Azurite plus a bare ``pyarrow.csv.read_csv`` of the same file from local disk, both
measured in this run, interleaved with the ETL runs (medians of ``--repeat`` pairs, since this
machine is shared and noisy). The ETL runs in a child process so its peak RSS is its own.
Everything runs against a private Azurite started for the benchmark (a fresh store: Azurite
slows down as its data folder fills up) and stopped at the end.
Prints a table and writes ``bench-results/etl.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = """
import json, sys, logging, time
logging.disable(logging.INFO)
from shared.bootstrap import bootstrap
from shared.etl.service import run_etl
root = bootstrap()
store = root.blob_store
started = time.perf_counter()
summary = run_etl(store, root.settings.etl, name=sys.argv[1])
wall = time.perf_counter() - started  # blob in raw/ to committed outputs, the report included
out = {k: getattr(summary, k) for k in ("status", "rows_in", "rows_valid", "rows_quarantined",
       "rows_duplicate", "parquet_bytes", "parts", "read_mode", "timing")}
out["etl_seconds"] = round(wall, 3)
# VmHWM: this process's peak resident memory since exec (ru_maxrss would also count the
# parent's pages at fork time, and the parent holds the floor's whole read_csv table)
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
out["peak_rss_mb"] = int(hwm.split()[1]) / 1024
print(json.dumps(out))
"""


def _floor(store, name: str, path: Path) -> dict[str, float]:
    import pyarrow.csv as pacsv

    with tempfile.NamedTemporaryFile() as tmp:
        started = time.perf_counter()
        for chunk in store.download_chunks("raw", name):
            tmp.write(chunk)
        tmp.flush()
        download = time.perf_counter() - started
    started = time.perf_counter()
    table = pacsv.read_csv(path)
    parse = time.perf_counter() - started
    del table
    return {"download_seconds": download, "read_csv_seconds": parse}


def _etl_child(name: str) -> tuple[dict, float, float]:
    """Run the ETL in a fresh process; return its summary, wall time and its own peak RSS in MB."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen([sys.executable, "-c", CHILD, name], stdout=out, cwd=ROOT)
        status = child.wait()
        wall = time.perf_counter() - started
        if status != 0:
            raise SystemExit(f"the ETL child failed with status {status}")
        out.seek(0)
        summary = json.loads(out.read().decode().strip().splitlines()[-1])
    return summary, wall, summary["peak_rss_mb"]


def bench(path: Path, label: str, repeat: int) -> dict[str, object]:
    """Floor and ETL, interleaved ``repeat`` times so both see the same machine; medians reported."""
    from shared.bootstrap import bootstrap

    store = bootstrap().blob_store
    name = f"bench/{path.name}"
    with path.open("rb") as f:
        store.upload_stream("raw", name, f, overwrite=True)
    _floor(store, name, path)  # warm-up: page cache and Azurite's
    floors, runs = [], []
    for _ in range(repeat):
        floors.append(_floor(store, name, path))
        for blob in store.list_names("curated", "creditcard/"):
            store.delete("curated", blob)  # so the ETL does the full commit, not "already exists"
        runs.append(_etl_child(name))
    summary = runs[-1][0]
    size = path.stat().st_size
    download = statistics.median(f["download_seconds"] for f in floors)
    parse = statistics.median(f["read_csv_seconds"] for f in floors)
    floor_s = statistics.median(f["download_seconds"] + f["read_csv_seconds"] for f in floors)
    etl_s = statistics.median(r[0]["etl_seconds"] for r in runs)
    return {
        "file": label,
        "rows": summary["rows_in"],
        "csv_mb": round(size / 1e6, 1),
        "runs": repeat,
        "etl_seconds": etl_s,
        "etl_process_seconds": round(statistics.median(r[1] for r in runs), 2),
        **summary["timing"],
        "floor_download_seconds": round(download, 2),
        "floor_read_csv_seconds": round(parse, 2),
        "floor_seconds": round(floor_s, 2),
        "ratio_to_floor": round(etl_s / floor_s, 2),
        "ratio_per_run": [
            round(r[0]["etl_seconds"] / (f["download_seconds"] + f["read_csv_seconds"]), 2)
            for r, f in zip(runs, floors, strict=True)
        ],
        "rows_per_s": round(summary["rows_in"] / etl_s),
        "mb_per_s": round(size / 1e6 / etl_s, 1),
        "download_mb_per_s": round(size / 1e6 / download, 1),
        "read_csv_mb_per_s": round(size / 1e6 / parse, 1),
        "peak_rss_mb": round(max(r[2] for r in runs)),
        "parquet_to_csv": round(summary["parquet_bytes"] / size, 3),
        "parts": summary["parts"],
        "status": summary["status"],
    }


def main() -> int:
    from cli.devtools.azurite import private_azurite, storage_env
    from training.generate import generate

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=284_807)
    p.add_argument("--big-rows", type=int, default=0, help="also a large file (4,700,000 rows is about 2.5 GB)")
    p.add_argument("--repeat", type=int, default=3, help="floor/ETL pairs for the full-size file (medians)")
    p.add_argument("--workdir", default=str(ROOT / "bench-results"))
    args = p.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    results = []
    with private_azurite() as connection:
        os.environ.update(storage_env(connection))  # for this process and the ETL children
        for rows, label in ((args.rows, "full-size"), (args.big_rows, "large")):
            if rows <= 0:
                continue
            path = work / f"creditcard-{rows}.csv"
            if not path.exists():
                generate(rows, 1, path)
            results.append(bench(path, label, args.repeat if label == "full-size" else 1))
            print(" ".join(f"{k}={v}" for k, v in results[-1].items()), flush=True)
    (work / "etl.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
