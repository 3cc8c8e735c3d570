"""Federated benchmark (``make bench-fl``): quality against the centralised model, robustness, aggregation cost.

* IID, 3 banks, 10 rounds: the federated AUC beside the centralised baseline; non-IID: the gap.
* 5 banks, 1 poisoned (sign-flipped, scaled x10): AUC with fedavg, median and trimmed_mean beside the
  clean run.
* Hostile banks (issue 18), each beside its clean run: 3 banks, 1 poisoned, with the default trimmed
  mean (which now trims one of three); 5 banks, 1 claiming a billion examples (honest, then also
  poisoned); 3 banks, 1 sending round-0 statistics of distorted rows, with fedavg and with median.
* 100 updates of 1 million parameters: seconds per aggregator and the extra memory (tracemalloc
  peak) as a share of the updates' own size.
All over the real HTTP protocol against a private Azurite. Prints a table, writes
``bench-results/fl.json``.
"""

from __future__ import annotations

import os
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    import numpy as np

    from cli.devtools.azurite import private_azurite, storage_env
    from cli.devtools.bench import report
    from cli.simulate import simulate
    from shared.federated import aggregate

    result: dict[str, object] = {}
    with private_azurite() as connection:
        os.environ.update(storage_env(connection))
        iid = simulate(banks=3, rounds=10)
        non_iid = simulate(banks=3, rounds=10, non_iid=True)
        result.update(
            iid_federated_auc=iid["federated_auc"],
            iid_centralized_auc=iid["centralized_auc"],
            iid_gap=round(iid["centralized_auc"] - iid["federated_auc"], 5),
            non_iid_federated_auc=non_iid["federated_auc"],
            non_iid_gap=round(non_iid["centralized_auc"] - non_iid["federated_auc"], 5),
        )
        clean = simulate(banks=5, rounds=5)["federated_auc"]
        result["poison_clean_auc"] = clean
        for how in ("fedavg", "median", "trimmed_mean"):
            auc = simulate(banks=5, rounds=5, poison=1, aggregator=how)["federated_auc"]
            result[f"poison_{how}_auc"] = auc
            result[f"poison_{how}_drop"] = round(clean - auc, 5)
        clean3 = {how: simulate(banks=3, rounds=5, aggregator=how)["federated_auc"] for how in ("fedavg", "median")}
        clean3["trimmed_mean"] = simulate(banks=3, rounds=5, aggregator="trimmed_mean")["federated_auc"]
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
            auc = simulate(rounds=5, **options)["federated_auc"]
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
    work = ROOT / "bench-results"
    work.mkdir(exist_ok=True)
    return report(result, work / "fl.json")


if __name__ == "__main__":
    sys.exit(main())
