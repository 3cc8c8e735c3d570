"""Scoring benchmark (``make bench-score``): ``fraudops serve`` beside its peer and its floors, in one run.

The peer is the Azure ML inference server (``azureml-inference-server-http``, what an Azure ML managed
online endpoint runs), from PyPI in a virtual environment of its own, serving the same ONNX file with the
same ONNX Runtime through a minimal scoring script (``scripts/peer/score.py``); ours is ``fraudops serve``
over a private Azurite, checking function keys as the host does. Both bind 127.0.0.1 on free ports, both
run one process with one ONNX Runtime thread, and both get the same request bodies from the same load
generators, in alternating rounds (ours first, then the peer first):

* single transactions, open loop (``cli.devtools.loadgen``: latency from each request's scheduled time),
  at 50/s and 400/s: p50 and p99;
* saturation: ``wrk`` with several keep-alive connections, one transaction a request: requests/s, p50, p99;
* batches of 1,000 transactions back to back on four connections (rows/s), and on one (p50 latency).

Floors measured in the same run: each server's health route at 50/s; a bare uvicorn app answering 200
(the HTTP stack and the load generator alone); bare ONNX Runtime (``session.run``) in-process at the served
thread count, on one row and on the same 1,000 rows. The cost of each of our layers, measured by switching
it off (or on) in the same run, beside the full server measured back to back: the function-key check, the
prediction recorder (``PREDICTIONS_RECORD``), the OpenTelemetry SDK recording (as with Application Insights),
and an explanation per transaction (``?explain=true``). Then cold start (``import function_app`` and the
first score), and the scoring app's built package imported alone against its libraries' floor
(``scripts/bench_cold_start.py``). Prints a table with the ratios and the targets of issue 36, and writes
``bench-results/score.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from shared.adapters.function_keys import ENV as KEY_ENV  # noqa: E402
from shared.adapters.function_keys import HEADER  # noqa: E402

FUNCTION_KEY = "bench-function-key"
FEATURES = [f"V{i}" for i in range(1, 29)] + ["Amount"]
PEER_VENV = ROOT / ".venv-bench-peer"

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

# azmlinfsrv as its own command line runs it, bound to loopback instead of 0.0.0.0 (the one change)
PEER_LAUNCH = """
import sys
import azureml_inference_server_http.constants as constants
constants.DEFAULT_HOST = "127.0.0.1"
from azureml_inference_server_http.amlserver import run
sys.argv = ["azmlinfsrv", "--entry_script", sys.argv[1], "--model_dir", sys.argv[2], "--port", sys.argv[3]]
run()
"""

# a bare ASGI app under uvicorn with the options fraudops serve uses: the HTTP stack's own floor
BARE_ASGI = """
import sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""

WRK_SCRIPT = """
wrk.method = "POST"
local f = io.open(os.getenv("WRK_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers[os.getenv("WRK_KEY_HEADER")] = os.getenv("WRK_KEY")
"""

TARGETS = (  # (figure, comparison, bound, what issue 36 asks)
    ("single_p50_vs_peer", "<=", 0.8, "single p50 at 50/s at most 0.8x the peer's"),
    ("single_p50_vs_health", "<=", 1.2, "single p50 at 50/s at most 1.2x our own health route"),
    ("p99_400_vs_peer", "<=", 0.5, "p99 at 400/s at most 0.5x the peer's"),
    ("saturation_vs_peer", ">=", 2.0, "saturation requests/s at least 2x the peer's"),
    ("batch_vs_peer", ">=", 2.0, "1,000-row batches: rows/s at least 2x the peer's"),
    ("batch_vs_bare_ort", ">=", 0.7, "1,000-row batches: rows/s at least 0.7x bare ONNX Runtime"),
)


class Server:
    """A child process serving HTTP on a free loopback port; healthy on entry, stopped (bounded) on exit."""

    def __init__(
        self, name: str, cmd: list[str], env: dict[str, str], port: int, health: str, log: Path, cwd: Path = ROOT
    ) -> None:
        self.name, self.cmd, self.env, self.port, self.health_path, self.log_path = name, cmd, env, port, health, log
        self.base, self.cwd = f"http://127.0.0.1:{port}", cwd

    def __enter__(self) -> Server:
        import httpx

        self.log = self.log_path.open("wb")  # a file, not a pipe nobody reads (it would fill and block)
        self.process = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 90
        while True:
            try:
                url = self.base + self.health_path
                if httpx.get(url, timeout=2, headers={HEADER: FUNCTION_KEY}).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.__exit__()
                raise SystemExit(f"{self.name} did not become healthy; its log: {self.log_path}")
            time.sleep(0.2)

    def __exit__(self, *_: object) -> None:
        self.process.terminate()  # SIGTERM: a graceful stop (our recorder flushes what it holds)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.log.close()


def _headers() -> list[str]:
    return ["--header", f"{HEADER}: {FUNCTION_KEY}"]


def _run_json(cmd: list[str]) -> dict[str, Any]:
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def open_loop(url: str, rate: float, seconds: float, body: Path | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "cli.devtools.loadgen", "--url", url, "--rate", str(rate), "--seconds", str(seconds)]
    cmd += _headers()
    if body:
        cmd += ["--method", "POST", "--body-file", str(body)]
    return _run_json(cmd)


BATCH_CONNECTIONS = 4  # a batch client sends in parallel; the peer's one synchronous worker takes them in turn


def batches(url: str, body: Path, requests: int, connections: int = BATCH_CONNECTIONS) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "cli.devtools.loadgen", "--url", url, "--closed", str(requests)]
    cmd += ["--connections", str(connections), "--body-file", str(body), *_headers()]
    return _run_json(cmd)


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, body: Path, seconds: float, connections: int, script: Path) -> dict[str, Any]:
    """``wrk`` (one thread, ``connections`` keep-alive connections), POSTing ``body``: requests/s, p50, p99."""
    env = {**os.environ, "WRK_BODY": str(body), "WRK_KEY_HEADER": HEADER, "WRK_KEY": FUNCTION_KEY}
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script), url]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout

    def latency(pct: str) -> float:
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not m:
            raise SystemExit(f"wrk printed no {pct}% latency:\n{text}")
        return round(float(m.group(1)) * _UNIT[m.group(2)], 3)

    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "per_s": round(float(rate.group(1)) if rate else 0.0, 1),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "errors": (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0),
    }


def _per_call(fn: Callable[[], object], loops: int, repeat: int = 7) -> float:
    """Median seconds per call over ``repeat`` runs of ``loops`` calls."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(loops):
            fn()
        runs.append((time.perf_counter() - started) / loops)
    return statistics.median(runs)


def _rows(n: int, seed: int) -> list[dict[str, Any]]:
    from training.generate import sample_features

    x, _ = sample_features(n, seed)
    return [{"transaction_id": f"t{i}", **dict(zip(FEATURES, map(float, row), strict=True))} for i, row in enumerate(x)]


@contextmanager
def _servers(
    env: dict[str, str], work: Path, model_dir: Path, peer_python: Path, threshold: float, threads: int
) -> Iterator[dict[str, Server]]:
    from cli.server import free_port

    ours_port, peer_port, bare_port = free_port(), free_port(), free_port()
    peer_env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
        "PEER_THREADS": str(threads),
        "PEER_THRESHOLD": repr(threshold),
    }
    specs = {
        "ours": Server(
            "fraudops serve",
            [sys.executable, "-m", "cli.main", "serve", "--port", str(ours_port)],
            env,
            ours_port,
            "/api/health",
            work / "score-ours.log",
        ),
        "peer": Server(
            "azmlinfsrv",
            [str(peer_python), "-c", PEER_LAUNCH, str(ROOT / "scripts/peer/score.py"), str(model_dir), str(peer_port)],
            peer_env,
            peer_port,
            "/",
            work / "score-peer.log",
        ),
        "bare": Server(
            "bare uvicorn",
            [sys.executable, "-c", BARE_ASGI, str(bare_port)],
            env,
            bare_port,
            "/",
            work / "score-bare.log",
        ),
    }
    with specs["ours"], specs["peer"], specs["bare"]:
        yield specs


def _round(server: Server, which: str, one: Path, batch: Path, seconds: float, conns: int, script: Path) -> dict:
    score = f"{server.base}/api/score" if which == "ours" else f"{server.base}/score"
    health = f"{server.base}/api/health" if which == "ours" else f"{server.base}/"
    open_loop(score, 50, 2, one)  # warm-up
    batches(score, batch, 4)
    return {
        "health_50": open_loop(health, 50, seconds),
        "single_50": open_loop(score, 50, seconds, one),
        "single_400": open_loop(score, 400, seconds, one),
        "saturation": wrk(score, one, seconds, conns, script),
        "batch": batches(score, batch, 40),
        "batch_one_connection": batches(score, batch, 20, connections=1),
    }


def _median(rounds: list[dict], level: str, key: str) -> float:
    return round(statistics.median(r[level][key] for r in rounds), 3)


def _layers(
    env: dict[str, str], work: Path, ours: Server, one: Path, batch: Path, seconds: float, conns: int, script: Path
) -> dict[str, Any]:
    """Each layer against the full server, back to back: p50 at 50/s, saturation requests/s, batch rows/s."""
    from cli.server import free_port

    def measure(url: str) -> dict[str, float]:
        open_loop(url, 50, 1, one)
        low = open_loop(url, 50, seconds / 2, one)
        sat = wrk(url, one, seconds / 2, conns, script)
        bat = batches(url, batch, 20)
        return {"p50_ms": low["p50_ms"], "sat_per_s": sat["per_s"], "batch_rows_per_s": round(1000 * bat["per_s"])}

    variants: dict[str, tuple[list[str], dict[str, str], str]] = {
        "no_key_check": (["--no-key-check"], {}, ""),
        "no_recording": ([], {"PREDICTIONS_RECORD": "false"}, ""),
        "telemetry_sdk": (["--telemetry-sdk"], {}, ""),
        "explain": ([], {}, "?explain=true"),
    }
    out: dict[str, Any] = {}
    for name, (flags, extra_env, query) in variants.items():
        full = measure(f"{ours.base}/api/score")
        if query:
            changed = measure(f"{ours.base}/api/score{query}")
        else:
            port = free_port()
            cmd = [sys.executable, "-m", "cli.devtools.bench_server", "--port", str(port)]
            cmd += ["--function-key", FUNCTION_KEY, *flags]
            with Server(name, cmd, {**env, **extra_env}, port, "/api/health", work / f"score-{name}.log") as s:
                changed = measure(f"{s.base}/api/score")
        for key in full:
            out[f"layer_{name}_{key}"] = changed[key]
            out[f"layer_{name}_{key}_full"] = full[key]
            out[f"layer_{name}_{key}_ratio"] = round(changed[key] / full[key], 3)
    return out


def main() -> int:
    from cli.devtools.azurite import private_azurite, storage_env
    from cli.devtools.models import publish_synthetic_model
    from shared.adapters.model_store import ModelStore
    from shared.bootstrap import bootstrap
    from shared.scoring.scorer import Scorer

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=8.0, help="per load level and round")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds (ours first, then the peer first)")
    p.add_argument("--connections", type=int, default=8, help="wrk's keep-alive connections at saturation")
    p.add_argument("--trees", type=int, default=300)
    p.add_argument("--peer-python", default=str(PEER_VENV / "bin/python"), help="the peer's virtual environment")
    p.add_argument("--no-layers", action="store_true", help="skip the per-layer servers (a quicker run)")
    p.add_argument("--workdir", default=str(ROOT / "bench-results"))
    args = p.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `make bench-score` installs it (apt-get install wrk)")
    if not Path(args.peer_python).exists():
        raise SystemExit(f"the peer's Python is missing ({args.peer_python}): `make bench-score` builds its venv")
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"trees": args.trees, "rounds": args.rounds, "seconds": args.seconds}
    with private_azurite() as connection, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, **storage_env(connection), "MODEL_REFRESH_SECONDS": "30", KEY_ENV: FUNCTION_KEY}
        os.environ.update(env)
        store = bootstrap().blob_store  # the settings of the environment just set
        threads = bootstrap().scoring.ort_intra_op_threads
        manifest = publish_synthetic_model(store, "fraud", version="bench", trees=args.trees, rows=50_000)
        models = ModelStore(store, "fraud")
        model_dir = tmp / "model"  # what the peer's deployment would mount: the same ONNX bytes
        model_dir.mkdir()
        (model_dir / "model.onnx").write_bytes(models.file("bench", "model.onnx"))
        (model_dir / "manifest.json").write_bytes(manifest.to_json())
        one, batch, script = tmp / "one.json", tmp / "batch.json", tmp / "post.lua"
        one.write_bytes(json.dumps({"transactions": _rows(1, 1)}).encode())
        rows = _rows(1000, 2)
        batch.write_bytes(json.dumps({"transactions": rows}).encode())
        script.write_text(WRK_SCRIPT)
        threshold = manifest.decision_threshold()
        rounds: dict[str, list[dict]] = {"ours": [], "peer": []}
        scorer = Scorer(models, feature_names=FEATURES, refresh_seconds=30, threads=threads)
        model = scorer.current()
        x1 = np.asarray([[rows[0][f] for f in FEATURES]], dtype=np.float32)
        x1000 = np.asarray([[r[f] for f in FEATURES] for r in rows], dtype=np.float32)
        bare_batches: list[float] = []  # measured in every round, beside the servers, as the machine is now
        with _servers(env, work, model_dir, Path(args.peer_python), threshold, threads) as servers:
            for i in range(args.rounds):
                order = ("ours", "peer") if i % 2 == 0 else ("peer", "ours")
                for which in order:
                    print(f"round {i + 1}: {which}", file=sys.stderr, flush=True)
                    rounds[which].append(
                        _round(servers[which], which, one, batch, args.seconds, args.connections, script)
                    )
                bare_batches.append(_per_call(lambda: model.session.run(None, {model.input_name: x1000}), loops=30))
            bare = servers["bare"]
            open_loop(f"{bare.base}/", 50, 2)
            bare_http = open_loop(f"{bare.base}/", 50, args.seconds)
            bare_sat = wrk(f"{bare.base}/", one, args.seconds, args.connections, script)
            if not args.no_layers:
                result.update(_layers(env, work, servers["ours"], one, batch, args.seconds, args.connections, script))
        for which in ("ours", "peer"):
            for level in ("health_50", "single_50", "single_400", "saturation"):
                for key in ("p50_ms", "p99_ms"):
                    result[f"{which}_{level}_{key}"] = _median(rounds[which], level, key)
            result[f"{which}_saturation_per_s"] = _median(rounds[which], "saturation", "per_s")
            result[f"{which}_batch_rows_per_s"] = round(1000 * _median(rounds[which], "batch", "per_s"))
            result[f"{which}_batch_one_connection_p50_ms"] = _median(rounds[which], "batch_one_connection", "p50_ms")
            result[f"{which}_errors"] = sum(r[lv]["errors"] for r in rounds[which] for lv in rounds[which][0])
        result["bare_http_p50_ms"] = bare_http["p50_ms"]
        result["bare_http_saturation_per_s"] = bare_sat["per_s"]

        bare_one = _per_call(lambda: model.session.run(None, {model.input_name: x1}), loops=2000)
        bare_batch = statistics.median(bare_batches)
        result["bare_ort_one_us"] = round(bare_one * 1e6, 1)
        result["bare_ort_rows_per_s"] = round(1000 / bare_batch)
        result["ort_threads"] = threads

        colds = []
        for _ in range(3):
            cold = subprocess.run([sys.executable, "-c", COLD], cwd=ROOT, env=env, capture_output=True, text=True)
            if cold.returncode:
                raise SystemExit(f"cold start failed: {cold.stderr[-2000:]}")
            colds.append([float(v) for v in cold.stdout.split()])
        result["cold_import_s"] = statistics.median(c[0] for c in colds)
        result["cold_first_score_s"] = statistics.median(c[1] for c in colds)

        # the scoring app's package as Azure runs it (issue 41): its import against its libraries' floor
        from bench_cold_start import build_scoring_package, measure

        result.update(measure(build_scoring_package(work / "package")))

    r = result
    ratios = {
        "single_p50_vs_peer": r["ours_single_50_p50_ms"] / r["peer_single_50_p50_ms"],
        "single_p50_vs_health": r["ours_single_50_p50_ms"] / r["ours_health_50_p50_ms"],
        "p99_50_vs_peer": r["ours_single_50_p99_ms"] / r["peer_single_50_p99_ms"],
        "p99_400_vs_peer": r["ours_single_400_p99_ms"] / r["peer_single_400_p99_ms"],
        "p50_400_vs_peer": r["ours_single_400_p50_ms"] / r["peer_single_400_p50_ms"],
        "saturation_vs_peer": r["ours_saturation_per_s"] / r["peer_saturation_per_s"],
        "saturation_p99_vs_peer": r["ours_saturation_p99_ms"] / r["peer_saturation_p99_ms"],
        "batch_vs_peer": r["ours_batch_rows_per_s"] / r["peer_batch_rows_per_s"],
        "batch_vs_bare_ort": r["ours_batch_rows_per_s"] / r["bare_ort_rows_per_s"],
        "health_vs_peer_health": r["ours_health_50_p50_ms"] / r["peer_health_50_p50_ms"],
        "health_vs_bare_http": r["ours_health_50_p50_ms"] / r["bare_http_p50_ms"],
        "saturation_vs_bare_http": r["ours_saturation_per_s"] / r["bare_http_saturation_per_s"],
    }
    result.update({f"ratio_{k}": round(v, 3) for k, v in ratios.items()})
    met = []
    for figure, op, bound, words in TARGETS:
        ok = ratios[figure] <= bound if op == "<=" else ratios[figure] >= bound
        met.append(ok)
        result[f"target_{figure}"] = f"{'met' if ok else 'MISSED'}: {ratios[figure]:.2f} ({words})"
    result["targets_met"] = f"{sum(met)} of {len(met)}"
    _print_side_by_side(result)
    from cli.devtools.bench import report

    return report(result, work / "score.json")


def _print_side_by_side(r: dict[str, Any]) -> None:
    """The comparison as a table a person reads: ours, the peer, the ratio."""
    rows = [
        ("health route p50 at 50/s (ms)", "health_50_p50_ms"),
        ("single p50 at 50/s (ms)", "single_50_p50_ms"),
        ("single p99 at 50/s (ms)", "single_50_p99_ms"),
        ("single p50 at 400/s (ms)", "single_400_p50_ms"),
        ("single p99 at 400/s (ms)", "single_400_p99_ms"),
        ("saturation requests/s", "saturation_per_s"),
        ("saturation p50 (ms)", "saturation_p50_ms"),
        ("saturation p99 (ms)", "saturation_p99_ms"),
        ("1,000-row batches, rows/s", "batch_rows_per_s"),
        ("1,000-row batch p50, 1 connection (ms)", "batch_one_connection_p50_ms"),
    ]
    print(f"\n{'':34} {'ours':>10} {'peer':>10} {'ours/peer':>10}")
    for words, key in rows:
        ours, peer = r[f"ours_{key}"], r[f"peer_{key}"]
        print(f"{words:34} {ours:>10} {peer:>10} {ours / peer:>10.2f}")
    print()


if __name__ == "__main__":
    sys.exit(main())
