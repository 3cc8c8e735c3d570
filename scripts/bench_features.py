"""Behavioural features offline (``make bench-features``): the point-in-time builder against pandas' own rolling
windows on the same rows, in one run, each in a fresh process (its wall time and peak memory).

The rows are ``card_transactions``' generated authorisations (``--rows``, 1,000,000 by default: the training
window one instance holds). Both compute, per card, the count, sum, mean, max and deviation of the amount
over 1 hour, 1 day and 7 days, and per terminal the count over 1 day and 7 days: the floor a data scientist
would write, ``groupby(...).rolling(window, on=time, closed="left")`` (its windows are ``[t - w, t)``, ours
move by whole steps, ``[floor(t / step) * step - w, t]`` without the row itself: the same work). The
builder also computes what pandas has no rolling
form for (distinct terminals per card, time since the card's previous payment, the known-fraud share of the
terminal, calendar features), reported separately. Writes ``bench-results/features.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WINDOWS = ("1h", "1d", "7d")
STATS = ["count", "sum", "mean", "max", "std"]


def _load(path: str) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    options = pacsv.ConvertOptions(
        include_columns=["tx_id", "ts", "card_id", "terminal_id", "amount", "is_fraud"],
        column_types={"ts": pa.string(), "card_id": pa.string(), "terminal_id": pa.string()},
    )
    table = pacsv.read_csv(path, convert_options=options)
    stamps = pc.strptime(table.column("ts"), format="%Y-%m-%dT%H:%M:%S%z", unit="us")
    return {
        "time": np.asarray(pc.cast(stamps, pa.int64()), np.float64) / 1e6,
        "ids": np.asarray(table.column("tx_id").to_pylist(), dtype=object),
        "card": np.asarray(table.column("card_id").to_pylist(), dtype=object),
        "terminal": np.asarray(table.column("terminal_id").to_pylist(), dtype=object),
        "amount": table.column("amount").to_numpy(),
        "fraud": table.column("is_fraud").to_numpy().astype(float),
    }


def run_ours(path: str, extra: bool) -> dict[str, Any]:
    from shared.domain.behaviour import Aggregates, Behaviour, Distinct, FraudShare, seconds_of
    from shared.domain.windows import History, point_in_time

    rows = _load(path)
    began = time.perf_counter()
    windows = tuple(seconds_of(w) for w in WINDOWS)
    spec = Behaviour(
        aggregates=(
            Aggregates("card", "card", "amount", windows, tuple(STATS)),
            Aggregates("terminal", "terminal", None, windows[1:], ("count",)),
        ),
        **(
            {
                "distinct": (Distinct("card", "card", "terminal", (seconds_of("1d"),)),),
                "since_previous": (("card", "card"),),
                "fraud_share": (FraudShare("terminal", "terminal", (seconds_of("7d"),)),),
                "calendar": ("hour", "weekday", "night", "weekend"),
            }
            if extra
            else {}
        ),
    )
    history = History(rows["time"], rows["ids"], {k: rows[k] for k in ("card", "terminal", "amount")}, rows["fraud"])
    out = point_in_time(history, spec, "Europe/Paris")
    return {"seconds": time.perf_counter() - began, "features": len(out), "rows": len(rows["time"])}


def run_pandas(path: str) -> dict[str, Any]:
    import pandas as pd

    rows = _load(path)
    began = time.perf_counter()
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(rows["time"], unit="s"),
            "card": rows["card"],
            "terminal": rows["terminal"],
            "amount": rows["amount"],
        }
    ).sort_values("ts", kind="stable")
    features = 0
    for w in WINDOWS:
        by_card = frame.groupby("card").rolling(w, on="ts", closed="left")["amount"].agg(STATS)
        features += by_card.shape[1]
    for w in WINDOWS[1:]:
        by_terminal = frame.groupby("terminal").rolling(w, on="ts", closed="left")["amount"].count()
        features += 1
        del by_terminal
    return {"seconds": time.perf_counter() - began, "features": features, "rows": len(frame)}


def _child(kind: str, path: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--data", path], capture_output=True, text=True, cwd=ROOT
    )
    if out.returncode:
        raise SystemExit(f"{kind} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--child", choices=["ours", "ours_all", "pandas"])
    p.add_argument("--data")
    p.add_argument("--workdir", default=str(ROOT / "bench-results"))
    args = p.parse_args()
    if args.child:
        result = {"ours": lambda: run_ours(args.data, False), "ours_all": lambda: run_ours(args.data, True)}.get(
            args.child, lambda: run_pandas(args.data)
        )()
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(json.dumps(result))
        return 0
    from cli.devtools.bench import report
    from training.generators import generate_dataset

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "cards.csv")
        generate_dataset("card_transactions", args.rows, 3, data, fraud_rate=0.01)
        ours = _child("ours", data)
        floor = _child("pandas", data)
        everything = _child("ours_all", data)
    result = {
        "rows": args.rows,
        "same_features": {"ours": ours["features"], "pandas": floor["features"]},
        "ours_seconds": round(ours["seconds"], 2),
        "pandas_seconds": round(floor["seconds"], 2),
        "ratio_time_to_pandas": round(ours["seconds"] / floor["seconds"], 3),
        "ours_peak_rss_mb": ours["peak_rss_mb"],
        "pandas_peak_rss_mb": floor["peak_rss_mb"],
        "ratio_memory_to_pandas": round(ours["peak_rss_mb"] / floor["peak_rss_mb"], 3),
        "all_kinds_features": everything["features"],
        "all_kinds_seconds": round(everything["seconds"], 2),
        "all_kinds_peak_rss_mb": everything["peak_rss_mb"],
    }
    return report(result, work / "features.json")


if __name__ == "__main__":
    sys.exit(main())
