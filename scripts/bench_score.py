"""Scoring benchmark (``make bench-score``): latency, throughput and cold start, each beside its floor.

Against ``fraudops serve`` (a child process, uvicorn with uvloop and httptools) on a free
loopback port, serving a published ~300-tree LightGBM model from a private Azurite, with load
from a second process (``cli.devtools.loadgen``, open loop):

* single transactions at 50 requests/s: p50 beside the p50 of ``GET /api/health`` on the same
  server at the same rate (the HTTP stack's own cost), p99 against 10 ms, and the highest rate
  tried whose p99 stays under 10 ms;
* in-process: the scorer's time for one row beside a bare ``session.run`` on the same row;
* batches of 1,000 over HTTP (JSON and CSV), on one connection (latency-bound) and on two (throughput):
  rows/s beside bare ONNX Runtime on the same rows;
* cold start: ``import function_app`` in a fresh interpreter, and the first score after it;
* the cost of recording every prediction (``PREDICTIONS_RECORD``): two more servers in the same run,
  one recording and one not, alternated twice, each measured at 50/s and 800/s single transactions
  and on 1,000-row batches; the figures are p50/p99 with and without, and what was recorded.

Prints a table and writes ``bench-results/score.json``.
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from shared.adapters.function_keys import ENV as KEY_ENV  # noqa: E402
from shared.adapters.function_keys import HEADER  # noqa: E402

FUNCTION_KEY = "bench-function-key"
FEATURES = [f"V{i}" for i in range(1, 29)] + ["Amount"]

COLD = """
import time
t0 = time.perf_counter()
import function_app
t1 = time.perf_counter()
import numpy as np
from shared.bootstrap import bootstrap
p = bootstrap().scorer.current().predict_proba(np.zeros((1, 29), dtype=np.float32))
t2 = time.perf_counter()
print(round(t1 - t0, 3), round(t2 - t1, 3))
"""


def _loadgen(url: str, rate: float, seconds: float, body: Path | None = None) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "cli.devtools.loadgen",
        "--url",
        url,
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        "--header",
        f"{HEADER}: {FUNCTION_KEY}",
    ]
    if body:
        cmd += ["--method", "POST", "--body-file", str(body)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


class _Server:
    """``fraudops serve`` on a free loopback port with ``env``; stopped on exit."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        from cli.server import free_port

        self.env, self.log_path, self.port = env, log_path, free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> _Server:
        import httpx

        self.log = self.log_path.open("wb")  # a file, not a pipe nobody reads (it would fill and block)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.base}/api/health", timeout=2, headers={HEADER: FUNCTION_KEY}).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.__exit__()
                raise SystemExit("fraudops serve did not become healthy")
            time.sleep(0.2)

    def __exit__(self, *_: object) -> None:
        self.process.terminate()  # SIGTERM: uvicorn's shutdown, then the recorder's exit flush
        self.process.wait(timeout=30)
        self.log.close()


def _recording_cost(env: dict[str, str], store, work: Path, one: Path, batch: Path, seconds: float) -> dict:
    """Latency with and without the prediction recorder, alternated twice on fresh servers."""
    runs: dict[str, list[dict]] = {"on": [], "off": []}
    before = len(store.list_names("predictions"))
    for record in ("on", "off", "on", "off"):
        server_env = {**env, "PREDICTIONS_RECORD": "true" if record == "on" else "false"}
        with _Server(server_env, work / f"score-server-record-{record}.log") as server:
            url = f"{server.base}/api/score"
            _loadgen(url, 50, 2, one)  # warm-up
            low, high = _loadgen(url, 50, seconds, one), _loadgen(url, 800, seconds, one)
            cmd = [sys.executable, "-m", "cli.devtools.loadgen", "--url", url, "--closed", "40", "--connections", "1"]
            cmd += ["--body-file", str(batch), "--content-type", "application/json"]
            cmd += ["--header", f"{HEADER}: {FUNCTION_KEY}"]
            out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
            batched = json.loads(out.strip().splitlines()[-1])
            runs[record].append({"low": low, "high": high, "batch": batched})
    recorded_files = len(store.list_names("predictions")) - before

    def med(record: str, level: str, key: str) -> float:
        return round(statistics.median(r[level][key] for r in runs[record]), 3)

    figures = {
        f"record_{record}_{level}_{key}": med(record, level, key)
        for record in ("on", "off")
        for level in ("low", "high", "batch")
        for key in ("p50_ms", "p99_ms")
    }
    return {
        **figures,
        "record_single_p50_ratio": round(figures["record_on_low_p50_ms"] / figures["record_off_low_p50_ms"], 3),
        "record_800_p99_ratio": round(figures["record_on_high_p99_ms"] / figures["record_off_high_p99_ms"], 3),
        "record_batch_p50_ratio": round(figures["record_on_batch_p50_ms"] / figures["record_off_batch_p50_ms"], 3),
        "record_files_written": recorded_files,
        "record_errors": sum(r[level]["errors"] for rs in runs.values() for r in rs for level in ("low", "high")),
    }


def _per_call(fn, loops: int = 2000, repeat: int = 7) -> float:
    """Median seconds per call over ``repeat`` runs of ``loops`` calls."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(loops):
            fn()
        runs.append((time.perf_counter() - started) / loops)
    return statistics.median(runs)


def _rows(n: int, seed: int) -> list[dict]:
    from training.generate import sample_features

    x, _ = sample_features(n, seed)
    return [{"transaction_id": f"t{i}", **dict(zip(FEATURES, map(float, row), strict=True))} for i, row in enumerate(x)]


def main() -> int:
    import httpx

    from cli.devtools.azurite import private_azurite, storage_env
    from cli.devtools.models import publish_synthetic_model
    from cli.server import free_port
    from shared.adapters.model_store import ModelStore
    from shared.bootstrap import bootstrap
    from shared.scoring.scorer import Scorer

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0, help="per load level")
    p.add_argument("--trees", type=int, default=300)
    p.add_argument("--rates", default="50,100,200,400,800,1200,1600,2400,3200", help="single-transaction rates to try")
    p.add_argument("--workdir", default=str(ROOT / "bench-results"))
    args = p.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, object] = {}
    with private_azurite() as connection, tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            **storage_env(connection),
            "MODEL_REFRESH_SECONDS": "30",
            KEY_ENV: FUNCTION_KEY,
        }  # the server checks function keys as the host does; every request sends one
        os.environ.update(env)
        store = bootstrap().blob_store  # the settings of the environment just set
        publish_synthetic_model(store, "fraud", version="bench", trees=args.trees, rows=50_000)
        port = free_port()
        server_log = (work / "score-server.log").open("wb")  # a file, not a pipe nobody reads (it would fill and block)
        server = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=server_log,
            stderr=server_log,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/api/health", timeout=2, headers={HEADER: FUNCTION_KEY}).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("fraudops serve did not become healthy")
                time.sleep(0.2)
            one = Path(tmp) / "one.json"
            one.write_bytes(json.dumps({"transactions": _rows(1, 1)}).encode())
            _loadgen(f"{base}/api/score", 50, 2, one)  # warm-up
            health = _loadgen(f"{base}/api/health", 50, args.seconds)
            single = _loadgen(f"{base}/api/score", 50, args.seconds, one)
            ladder = [single]
            for rate in [float(r) for r in args.rates.split(",") if float(r) > 50]:
                level = _loadgen(f"{base}/api/score", rate, args.seconds, one)
                ladder.append(level)
                if level["p99_ms"] >= 10 or level["errors"]:
                    break
            sustained = max((lv["rate"] for lv in ladder if lv["p99_ms"] < 10 and not lv["errors"]), default=0)
            result.update(
                {
                    "health_p50_ms": health["p50_ms"],
                    "health_p99_ms": health["p99_ms"],
                    "single_p50_ms": single["p50_ms"],
                    "single_p95_ms": single["p95_ms"],
                    "single_p99_ms": single["p99_ms"],
                    "single_errors": single["errors"],
                    "single_p50_ratio_to_health": round(single["p50_ms"] / health["p50_ms"], 2),
                    "max_rate_p99_under_10ms": sustained,
                    "ladder": [
                        {k: lv[k] for k in ("rate", "achieved_rate", "p50_ms", "p99_ms", "errors", "error_kinds")}
                        for lv in ladder
                    ],
                }
            )
            rows = _rows(1000, 2)
            json_body = json.dumps({"transactions": rows}).encode()
            csv_body = (
                "transaction_id,"
                + ",".join(FEATURES)
                + "\n"
                + "".join(r["transaction_id"] + "," + ",".join(repr(r[f]) for f in FEATURES) + "\n" for r in rows)
            ).encode()
            for kind, body, ctype in (("json", json_body, "application/json"), ("csv", csv_body, "text/csv")):
                path = Path(tmp) / f"batch.{kind}"
                path.write_bytes(body)
                for connections in (1, 2):  # 1: latency-bound; 2: decoding overlaps scoring (throughput)
                    cmd = [
                        sys.executable,
                        "-m",
                        "cli.devtools.loadgen",
                        "--url",
                        f"{base}/api/score",
                        "--closed",
                        "40",
                        "--connections",
                        str(connections),
                        "--body-file",
                        str(path),
                        "--content-type",
                        ctype,
                        "--header",
                        f"{HEADER}: {FUNCTION_KEY}",
                    ]
                    subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)  # warm-up
                    out = json.loads(
                        subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
                        .stdout.strip()
                        .splitlines()[-1]
                    )
                    if out["errors"]:
                        raise SystemExit(f"batch {kind} requests failed: {out}")
                    suffix = "" if connections == 1 else "_2conn"
                    result[f"batch_{kind}_ms{suffix}"] = out["p50_ms"]
                    result[f"batch_{kind}_rows_per_s{suffix}"] = round(1000 * out["per_s"])
        finally:
            server.terminate()
            server.wait(timeout=20)
            server_log.close()
        scorer = Scorer(ModelStore(store, "fraud"), feature_names=FEATURES, refresh_seconds=30, threads=1)
        model = scorer.current()
        x1 = np.asarray([[rows[0][f] for f in FEATURES]], dtype=np.float32)
        x1000 = np.asarray([[r[f] for f in FEATURES] for r in rows], dtype=np.float32)
        bare_one = _per_call(lambda: model.session.run(None, {model.input_name: x1}))
        scorer_one = _per_call(lambda: scorer.current().predict_proba(x1))
        bare_batch = _per_call(lambda: model.session.run(None, {model.input_name: x1000}), loops=50)
        result.update(
            {
                "inprocess_bare_one_us": round(bare_one * 1e6, 1),
                "inprocess_scorer_one_us": round(scorer_one * 1e6, 1),
                "inprocess_ratio": round(scorer_one / bare_one, 2),
                "bare_batch_ms": round(bare_batch * 1000, 2),
                "bare_rows_per_s": round(1000 / bare_batch),
                **{
                    f"batch_{kind}_ratio_to_bare{suffix}": round(
                        result[f"batch_{kind}_rows_per_s{suffix}"]  # type: ignore[operator]
                        / (1000 / bare_batch),
                        2,
                    )
                    for kind in ("json", "csv")
                    for suffix in ("", "_2conn")
                },
            }
        )
        colds = []
        for _ in range(3):
            out = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", COLD],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            colds.append([float(v) for v in out.stdout.split()])
        batch_body = Path(tmp) / "record-batch.json"
        batch_body.write_bytes(json.dumps({"transactions": _rows(1000, 3)}).encode())
        one_body = Path(tmp) / "record-one.json"
        one_body.write_bytes(json.dumps({"transactions": _rows(1, 1)}).encode())
        result.update(_recording_cost(env, store, work, one_body, batch_body, args.seconds))
        result["cold_import_s"] = statistics.median(c[0] for c in colds)
        result["cold_first_score_s"] = statistics.median(c[1] for c in colds)
        result["trees"] = args.trees
    from cli.devtools.bench import report

    return report(result, work / "score.json")


if __name__ == "__main__":
    sys.exit(main())
