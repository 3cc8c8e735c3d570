"""The online store's cost (part of ``make bench-score`` and ``make bench-stream``): what reading and updating each
entity's state adds to a score, on a private loopback Redis, against its floors measured in the same run.

* **Single transaction** (what an HTTP score of one row adds): the p50 and p99 of ``OnlineFeatures.serve`` for
  one payment (one pipelined read, the features, one compare-and-set write), against the floor of two bare
  Redis round trips (``PING`` twice), and against the same work on the in-process store (the computing
  alone).
* **Batches** (a 1,000-row request, a stream batch): events per second placed with state updates, and the
  round trips per batch (two, whatever its size), against the in-process store.

The payments are ``card_transactions``-shaped: thousands of cards and terminals with a few payments each a
day, under the behaviour section of ``card_behaviour`` (``BEHAVIOUR_SECTION`` of the generator: per card and
per terminal windows up to 30 days, the one the quality benchmark uses). Writes
``bench-results/online.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _events(n: int, seed: int) -> list[Any]:
    from shared.domain.entity_state import Event

    rng = np.random.default_rng(seed)
    t = 1_790_000_000.0 + np.cumsum(rng.exponential(12.0, n))
    cards = rng.integers(0, 6_000, n)
    terminals = rng.integers(0, 2_000, n)
    amounts = np.round(np.exp(rng.normal(3.4, 1.1, n)), 2)
    return [
        Event(
            float(t[i]),
            f"tx-{i}",
            {"card_id": f"K{cards[i]}", "terminal_id": f"T{terminals[i]}"},
            {"amount": float(amounts[i])},
            {"terminal_id": f"T{terminals[i]}"},
        )
        for i in range(n)
    ]


def _behaviour() -> Any:
    """The behaviour section the quality benchmark and the tests use (``card_behaviour``)."""
    from shared.domain.contract_file import parse_contract
    from training.generators.card_transactions import with_behaviour

    text = with_behaviour((ROOT / "contracts" / "card_transactions.yaml").read_text())
    return parse_contract(text, "card_behaviour.yaml").behaviour


def _percentiles(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples) * 1000.0
    return {"p50_ms": round(float(np.percentile(a, 50)), 4), "p99_ms": round(float(np.percentile(a, 99)), 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=60_000, help="payments placed first (a few days of history)")
    parser.add_argument("--singles", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()

    from cli.devtools.redis import private_redis
    from shared.adapters.online_store import MemoryEntityStore, RedisEntityStore, connect
    from shared.domain.entity_state import Online
    from shared.scoring.online import OnlineFeatures

    behaviour = _behaviour()
    events = _events(args.warm + args.singles + args.batch * args.batches, 7)
    warm, rest = events[: args.warm], events[args.warm :]
    singles, batched = rest[: args.singles], rest[args.singles :]
    out: dict[str, Any] = {"features": len(behaviour.names()), "warm": args.warm}
    with private_redis() as server:
        client = connect(server.url(), password=server.password, timeout=2.0)
        stores = {"redis": RedisEntityStore(client), "in_process": MemoryEntityStore()}
        for name, store in stores.items():
            features = OnlineFeatures(store, Online(behaviour, "Europe/Paris"), "bench")
            for start in range(0, len(warm), 2_000):
                features.serve(warm[start : start + 2_000])
            took = []
            for e in singles:
                t = time.perf_counter()
                features.serve([e])
                took.append(time.perf_counter() - t)
            out[f"single_{name}"] = _percentiles(took)
            t = time.perf_counter()
            for b in range(args.batches):
                features.serve(batched[b * args.batch : (b + 1) * args.batch])
            seconds = time.perf_counter() - t
            out[f"batch_{name}"] = {
                "events_per_s": round(args.batch * args.batches / seconds),
                "ms_per_batch": round(1000 * seconds / args.batches, 2),
            }
            if name == "redis":
                out["store"] = {"entities": store.size().entities, "bytes": store.size().bytes}
        pings = []
        for _ in range(args.singles):
            t = time.perf_counter()
            client.ping()
            client.ping()
            pings.append(time.perf_counter() - t)
        out["floor_two_round_trips"] = _percentiles(pings)
        client.close()
    added = out["single_redis"]["p50_ms"]
    out["single_added_p50_ms"] = added
    out["single_vs_floor"] = round(added / max(out["floor_two_round_trips"]["p50_ms"], 1e-9), 2)
    out["batch_vs_in_process"] = round(
        out["batch_in_process"]["events_per_s"] / max(out["batch_redis"]["events_per_s"], 1), 2
    )
    print(json.dumps(out, indent=1))
    print(
        f"\nonline store, one payment: +{added:.3f} ms p50 (floor, two bare round trips: "
        f"{out['floor_two_round_trips']['p50_ms']:.3f} ms; {out['single_vs_floor']}x); in-process "
        f"{out['single_in_process']['p50_ms']:.3f} ms"
    )
    print(
        f"batches of {args.batch}: {out['batch_redis']['events_per_s']} events/s with state updates on Redis, "
        f"{out['batch_in_process']['events_per_s']} in process (target 20,000 events/s)"
    )
    results = ROOT / "bench-results"
    results.mkdir(exist_ok=True)
    (results / "online.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
