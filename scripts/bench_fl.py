"""Federated benchmark (``make bench-fl``): quality against the centralised model, robustness, aggregation cost.

* IID, 3 banks, 10 rounds: the federated AUC beside the centralised baseline; non-IID: the gap.
* 5 banks, 1 poisoned (sign-flipped, scaled x10): AUC with fedavg, median and trimmed_mean beside the
  clean run.
* Hostile banks (issue 18), each beside its clean run: 3 banks, 1 poisoned, with the default trimmed
  mean (which now trims one of three); 5 banks, 1 claiming a billion examples (honest, then also
  poisoned); 3 banks, 1 sending round-0 statistics of distorted rows, with fedavg and with median.
* 100 updates of 1 million parameters: seconds per aggregator and the extra memory (tracemalloc
  peak) as a share of the updates' own size.
* Secure rounds (issue 40) for 3, 10 and 50 banks, with the model's 30 parameters and with 100,000: the
  server's and the banks' seconds per round, the server's longest single request (the close: one
  function invocation), and the bytes each bank sends, beside plain FedAvg of the same updates in the
  same run (in one process on the in-memory store, so the HTTP stack is not in either figure).
The quality cases run over the real HTTP protocol against a private Azurite. Prints a table, writes
``bench-results/fl.json``. ``--only secure`` runs the secure rounds' cost alone.
"""

from __future__ import annotations

import os
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def secure_cost(banks: int, dims: int, dropped: int = 0) -> dict[str, float]:
    """One secure round and one plain FedAvg round of ``banks`` banks over ``dims`` parameters, timed; ``dropped``
    banks go silent after sending their shares (the server then removes their pairwise masks itself)."""
    import hashlib

    import numpy as np

    from cli.devtools.secure_rounds import Direct, run_round
    from fraudops_bank.roster import Roster, identity_public, new_identity_key
    from fraudops_bank.secure import SecureParticipant
    from shared.adapters.memory_store import MemoryBlobStore
    from shared.federated.params import to_wire
    from shared.federated.rounds import RoundConfig, Rounds

    initial = {"coef": np.zeros(dims - 1, np.float32), "intercept": np.zeros(1, np.float32)}
    rng = np.random.default_rng(banks)
    ids = {f"bank-{i:03d}": new_identity_key() for i in range(banks)}
    roster = Roster({b: identity_public(k) for b, k in ids.items()})
    digest = hashlib.sha256(b"served").hexdigest()
    store = MemoryBlobStore()
    store.ensure_containers()
    clock = [1_000.0]
    rounds = Rounds(
        store, "bench", RoundConfig(min_clients=banks, mode="secure", clip_bound=1.0), clock=lambda: clock[0]
    )
    rounds.start(initial)
    server = {"total": 0.0, "longest": 0.0}

    class Timed(Direct):
        def _timed(self, call, *args):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            try:
                return call(*args)
            finally:
                spent = time.perf_counter() - started
                server["total"] += spent
                server["longest"] = max(server["longest"], spent)

        def post_signed(self, path: str, body: bytes) -> dict[str, object]:
            return self._timed(super().post_signed, path, body)  # type: ignore[no-any-return]

        def get_json(self, path: str) -> dict[str, object]:
            return self._timed(super().get_json, path)  # type: ignore[no-any-return]

    transports = {b: Timed(rounds, b, digest) for b in ids}
    parts = [
        SecureParticipant(
            transport=transports[b],
            bank=b,
            experiment="bench",
            round=1,
            kind="model",
            vector=np.concatenate([rng.normal(0, 0.1, dims), [1.0, 0.5, 0.4, 0.0]]),
            model_sha256=digest,
            identity_key=ids[b],
            roster=roster,
            clip_bound=1.0,
            noise_multiplier=None,
        )
        for b in ids
    ]
    started = time.perf_counter()
    silent = {p.bank for p in parts[:dropped]}

    def tick() -> None:
        clock[0] += 700.0  # past a phase's deadline, so the round goes on without the silent banks

    run_round(rounds, parts, silent=silent, silent_after="shares sent", tick=tick if dropped else None, limit=10)
    wall = time.perf_counter() - started
    # plain FedAvg of updates of the same size, in the same run
    plain_store = MemoryBlobStore()
    plain_store.ensure_containers()
    plain = Rounds(plain_store, "plain", RoundConfig(min_clients=banks, aggregator="fedavg"))
    plain.start(initial)
    bodies = [
        to_wire({"coef": rng.normal(0, 0.1, dims - 1).astype(np.float32), "intercept": np.zeros(1, np.float32)})
        for _ in ids
    ]
    started, longest = time.perf_counter(), 0.0
    for bank, body in zip(ids, bodies, strict=True):
        t0 = time.perf_counter()
        plain.submit(1, bank, body, 1000, {})
        longest = max(longest, time.perf_counter() - t0)
    plain_s = time.perf_counter() - started
    return {
        "server_s": round(server["total"], 3),
        "banks_s_each": round((wall - server["total"]) / banks, 4),
        "server_longest_request_s": round(server["longest"], 3),
        "bytes_per_bank": round(sum(t.bytes_sent for t in transports.values()) / banks),
        "plain_server_s": round(plain_s, 3),
        "plain_longest_request_s": round(longest, 3),
        "plain_bytes_per_bank": round(sum(len(b) for b in bodies) / banks),
    }


def main() -> int:
    import numpy as np

    if sys.argv[1:] == ["--only", "secure"]:
        return _secure_only()

    from cli.devtools.azurite import private_azurite, storage_env
    from cli.devtools.bench import report
    from cli.simulate import simulate
    from shared.federated import aggregate

    result: dict[str, object] = {}
    with private_azurite() as connection:
        os.environ.update(storage_env(connection))
        iid = simulate(banks=3, rounds=10)  # secure aggregation, the default
        non_iid = simulate(banks=3, rounds=10, non_iid=True)
        result.update(
            iid_federated_auc=iid["federated_auc"],
            iid_centralized_auc=iid["centralized_auc"],
            iid_gap=round(iid["centralized_auc"] - iid["federated_auc"], 5),
            non_iid_federated_auc=non_iid["federated_auc"],
            non_iid_gap=round(non_iid["centralized_auc"] - non_iid["federated_auc"], 5),
        )
        secure_clean = simulate(banks=5, rounds=5)["federated_auc"]
        secure_poisoned = simulate(banks=5, rounds=5, poison=1)["federated_auc"]
        result.update(
            secure5_clean_auc=secure_clean,
            secure5_poison_auc=secure_poisoned,
            secure5_poison_drop=round(secure_clean - secure_poisoned, 5),
        )
        clean = simulate(banks=5, rounds=5, mode="visible")["federated_auc"]
        result["poison_clean_auc"] = clean
        for how in ("fedavg", "median", "trimmed_mean"):
            auc = simulate(banks=5, rounds=5, poison=1, aggregator=how, mode="visible")["federated_auc"]
            result[f"poison_{how}_auc"] = auc
            result[f"poison_{how}_drop"] = round(clean - auc, 5)
        clean3 = {
            how: simulate(banks=3, rounds=5, aggregator=how, mode="visible")["federated_auc"]
            for how in ("fedavg", "median", "trimmed_mean")
        }
        result.update({f"clean3_{how}_auc": auc for how, auc in clean3.items()})
        cases = {
            "trimmed3_poison": ({"banks": 3, "poison": 1, "aggregator": "trimmed_mean"}, clean3["trimmed_mean"]),
            "fedavg3_poison": ({"banks": 3, "poison": 1, "aggregator": "fedavg"}, clean3["fedavg"]),
            "liar5_fedavg": ({"banks": 5, "lie": 1, "aggregator": "fedavg"}, clean),
            "liar5_poison_fedavg": ({"banks": 5, "lie": 1, "poison": 1, "aggregator": "fedavg"}, clean),
            "liar5_poison_median": ({"banks": 5, "lie": 1, "poison": 1, "aggregator": "median"}, clean),
            "stats3_poison_fedavg": ({"banks": 3, "poison_statistics": 1, "aggregator": "fedavg"}, clean3["fedavg"]),
            "stats3_poison_median": ({"banks": 3, "poison_statistics": 1, "aggregator": "median"}, clean3["median"]),
        }
        for name, (options, beside) in cases.items():
            auc = simulate(rounds=5, mode="visible", **options)["federated_auc"]
            result[f"{name}_auc"] = auc
            result[f"{name}_cost"] = round(beside - auc, 5)
    rng = np.random.default_rng(0)
    updates = [
        ([rng.normal(size=(1000, 999)).astype(np.float32), rng.normal(size=1000).astype(np.float32)], 100 + i)
        for i in range(100)
    ]
    size = sum(a.nbytes for a in updates[0][0]) * len(updates)
    for name, fn in (
        ("fedavg", aggregate.fedavg),
        ("median", aggregate.median),
        ("trimmed_mean", lambda r: aggregate.trimmed_mean(r, 0.1)),
    ):
        tracemalloc.start()
        started = time.perf_counter()
        fn(updates)
        result[f"aggregate_100x1M_{name}_s"] = round(time.perf_counter() - started, 3)
        result[f"aggregate_100x1M_{name}_extra_memory_share"] = round(tracemalloc.get_traced_memory()[1] / size, 3)
        tracemalloc.stop()
    result.update(_secure_costs())
    work = ROOT / "bench-results"
    work.mkdir(exist_ok=True)
    return report(result, work / "fl.json")


def _secure_costs() -> dict[str, object]:
    out: dict[str, object] = {}
    for dims in (30, 100_000):
        for banks in (3, 10, 50):
            for key, value in secure_cost(banks, dims).items():
                out[f"secure_{banks}banks_{dims}params_{key}"] = value
        for key, value in secure_cost(50, dims, dropped=5).items():
            out[f"secure_50banks_5dropped_{dims}params_{key}"] = value
    return out


def _secure_only() -> int:
    from cli.devtools.bench import report

    work = ROOT / "bench-results"
    work.mkdir(exist_ok=True)
    return report(_secure_costs(), work / "fl-secure.json")


if __name__ == "__main__":
    sys.exit(main())
