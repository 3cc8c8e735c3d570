"""Quality on behaviour (part of ``make bench-features``): what behavioural features buy on frauds only history
reveals, measured on the served path.

For each behavioural mechanism of the ``card_transactions`` generator (``--behaviour``: compromised terminals,
compromised cards, card-testing bursts, account takeover) and each seed, it generates rows in time order,
ingests the first ``--train-share`` of them through the ETL into a private Azurite and trains with the default
settings (the time-ordered search decides; no mechanism-specific setting exists) twice:

* (a) ``card_transactions`` as shipped: the transaction's own columns only;
* (b) the same columns under a contract with one generic ``behaviour`` section (the generator's
  ``BEHAVIOUR_SECTION``: per card and per terminal windows, distinct terminals, time since the previous
  payment, the amount against the card's mean, the terminal's known-fraud share, calendar), the same for
  every mechanism.

The rows that follow, which no model saw, are then scored in time order as production scores them: (a) from
the transaction alone, (b) with the online store (filled from the curated history by ``materialise``, then
placed one payment after the other, while the verdicts on earlier payments land ``label_delay`` after each, as
the daily labels file brings them). The same model also scores them from the offline builder's rows (the
skew cost: served against offline). Reported per mechanism, over the seeds: ROC-AUC, average precision and
card precision at ``k`` (per day, the share of truly compromised cards among the ``k`` highest-scored cards,
cards already caught on earlier days left out). Targets: (b) served within 0.005 average precision of (b)
offline, and (b) at least 3x the average precision of (a) on the terminal and card mechanisms. Writes
``bench-results/behaviour.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MECHANISMS = ("terminal", "card", "testing", "takeover")
AP_SKEW_TARGET, AP_RATIO_TARGET = 0.005, 3.0


def _contracts(folder: Path) -> None:
    """The shipped contract (CONTRACTS_DIR replaces the shipped folder) and the one with behaviour beside it."""
    from training.generators.card_transactions import with_behaviour

    text = (ROOT / "contracts" / "card_transactions.yaml").read_text()
    (folder / "card_transactions.yaml").write_text(text)
    (folder / "card_behaviour.yaml").write_text(with_behaviour(text))


def _rows(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    texts = ("tx_id", "ts", "customer_id", "card_id", "terminal_id", "mcc", "channel", "country")
    options = pacsv.ConvertOptions(column_types=dict.fromkeys(texts, pa.string()), strings_can_be_null=True)
    return pacsv.read_csv(path, convert_options=options).to_pylist()


def _card_precision(days: np.ndarray, cards: np.ndarray, y: np.ndarray, p: np.ndarray, k: int) -> float:
    """Per day, the share of truly compromised cards among the ``k`` highest-scored cards (a card's score is its
    day's highest), cards already caught on earlier days left out; the mean over days."""
    caught: set[str] = set()
    shares = []
    for day in sorted(set(days)):
        on = days == day
        best: dict[str, float] = {}
        fraud: set[str] = set()
        for c, s, f in zip(cards[on], p[on], y[on], strict=True):
            if c in caught:
                continue
            best[c] = max(best.get(c, 0.0), float(s))
            if f:
                fraud.add(c)
        top = sorted(best, key=lambda c: -best[c])[:k]
        if top:
            shares.append(sum(c in fraud for c in top) / k)
            caught |= {c for c in top if c in fraud}
    return float(np.mean(shares)) if shares else float("nan")


def _scores(y: np.ndarray, p: np.ndarray, days: np.ndarray, cards: np.ndarray, k: int) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {
        "roc_auc": round(float(roc_auc_score(y, p)), 4),
        "ap": round(float(average_precision_score(y, p)), 4),
        "card_precision_at_k": round(_card_precision(days, cards, y, p, k), 4),
    }


def _one(mechanism: str, seed: int, rows: int, train_share: float, k: int, work: Path) -> dict[str, Any]:
    from cli.devtools.azurite import private_azurite, storage_env
    from training.generators.card_transactions import generate

    full = work / f"{mechanism}-{seed}.csv"
    generate(rows, seed, full, fraud_rate=0.002, mechanisms=(mechanism,))
    everything = _rows(full)
    cut = int(len(everything) * train_share)
    lines = full.read_text().splitlines()
    (work / "train.csv").write_text("\n".join(lines[: cut + 1]) + "\n")
    holdout = everything[cut:]
    out: dict[str, Any] = {"mechanism": mechanism, "seed": seed, "rows": len(everything), "holdout": len(holdout)}
    with private_azurite() as connection, tempfile.TemporaryDirectory(prefix="bench-mlflow-") as mlflow_dir:
        os.environ.update(storage_env(connection))
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{mlflow_dir}/mlflow.db"
        os.environ["CONTRACTS_DIR"] = str(work)
        for variant in ("card_transactions", "card_behaviour"):
            started = time.perf_counter()
            out[variant] = _variant(variant, work / "train.csv", holdout, k)
            out[variant]["seconds"] = round(time.perf_counter() - started, 1)
    return out


def _variant(dataset: str, train: Path, holdout: list[dict[str, Any]], k: int) -> dict[str, Any]:
    from shared.adapters.model_store import ModelStore
    from shared.adapters.online_store import MemoryEntityStore
    from shared.bootstrap import bootstrap, reset
    from shared.domain.contracts import forget_contracts, get_contract
    from shared.domain.entity_state import Online
    from shared.domain.history import history_of
    from shared.domain.settings import get_settings
    from shared.domain.typed_rows import typed_rows
    from shared.domain.windows import point_in_time
    from shared.etl.service import run_etl
    from shared.scoring.online import OnlineFeatures, events_of
    from shared.scoring.scorer import load_model
    from training.materialise import materialise
    from training.pipeline import run_training

    os.environ["DATASET_NAME"] = dataset
    os.environ["MODEL_NAME"] = f"fraud-{dataset}"  # each its own champion
    get_settings.cache_clear()
    forget_contracts()
    reset()
    services = bootstrap()
    settings, store = services.settings, services.blob_store
    contract = get_contract(dataset)
    store.put_bytes("raw", f"{dataset}.csv", train.read_bytes(), overwrite=True)
    run_etl(store, settings.etl, name=f"{dataset}.csv")
    trained = run_training(store, config=settings.training, storage=settings.storage)
    model = load_model(
        ModelStore(store, settings.model_name),
        trained.model_version,
        expected_features=contract.model_features,
        threads=2,
    )
    label = contract.label.name if contract.label else "is_fraud"
    y = np.array([r[label] for r in holdout], dtype=np.int8)
    body = [{c: v for c, v in r.items() if c != label} for r in holdout]
    typed = typed_rows(body, contract)
    x = model.encode(typed.x, typed.categories)
    times = typed.columns[contract.time_column.name] if contract.time_column else np.zeros(len(body))
    days = np.array([datetime.fromtimestamp(t, UTC).date().isoformat() for t in times])
    cards = np.array([r["card_id"] for r in holdout], dtype=object)
    result: dict[str, Any] = {
        "model_version": trained.model_version,
        "test_ap_backtest": round(float(trained.pr_auc), 4),
    }
    if contract.behaviour.empty:
        result["served"] = _scores(y, model.predict_proba(np.ascontiguousarray(x)), days, cards, k)
        return result
    online = OnlineFeatures(MemoryEntityStore(), Online(contract.behaviour, contract.time_zone), contract.name)
    materialise(store, contract, online)
    ids = [r[contract.transaction_id or "tx_id"] for r in holdout]
    events = events_of(contract, typed.columns, ids, times, services.pseudonymise)
    served = _served(online, events, y, contract.behaviour.label_delay)
    x_served = np.ascontiguousarray(np.column_stack([x, served]).astype(np.float32))  # own, then behaviour
    # the offline builder's rows for the same payments: the curated history, then these in order
    history = materialise_history(store, contract)
    keys = [*history["ids"], *ids]
    columns = {
        n: [*history["columns"][n], *[e.keys.get(n, e.values.get(n)) for e in events]] for n in history["columns"]
    }
    for n in history["numbers"]:
        columns[n] = [*history["numbers"][n], *[e.numbers.get(n, np.nan) for e in events]]
    h = history_of(
        contract,
        np.concatenate([history["time"], times]),
        keys,
        columns,
        np.concatenate([history["label"], y.astype(np.float64)]),  # known label_delay after each payment
    )
    built = point_in_time(h, contract.behaviour, contract.time_zone)
    offline = np.column_stack([built[n][len(history["ids"]) :] for n in contract.behaviour.names()])
    x_offline = np.ascontiguousarray(np.column_stack([x, offline]).astype(np.float32))
    result["served"] = _scores(y, model.predict_proba(x_served), days, cards, k)
    result["offline"] = _scores(y, model.predict_proba(x_offline), days, cards, k)
    return result


def _served(online: Any, events: list[Any], y: np.ndarray, delay: float) -> np.ndarray:
    """The behavioural features of ``events`` served one after the other, as production serves them, while
    the verdicts on the earlier ones land as they become known (``delay`` after each payment, as curated
    history without ``labelled_at`` counts them): each fraud is placed before the first payment that comes
    after it is known."""
    from shared.scoring.online import Label

    frauds = sorted(((e.time + delay, e) for e, fraud in zip(events, y, strict=True) if fraud), key=lambda f: f[0])
    landed, out = 0, []
    for e in events:
        due = []
        while landed < len(frauds) and frauds[landed][0] <= e.time:
            known, f = frauds[landed]
            due.append(Label(f.id, f.time, f.keys, True, known))
            landed += 1
        if due:
            online.labels(due)
        out.append(online.serve([e]).vectors)
    return np.vstack(out)


def materialise_history(store: Any, contract: Any) -> dict[str, Any]:
    """The curated rows the store was filled from, in (time, id) order: ids, times, labels, history columns."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from shared.domain.history import history_columns, read_columns
    from shared.etl.arrays import floats, seconds
    from shared.etl.manifest import files_of_version

    _, files = files_of_version(store, contract.name)
    table = pa.concat_tables(
        [pq.read_table(io.BytesIO(store.get_bytes("curated", f)[0]), columns=history_columns(contract)) for f in files]
    )
    t = seconds(table.column(contract.time_column.name))
    ids = table.column(contract.transaction_id).to_pylist()
    order = np.lexsort((np.asarray(ids, dtype=str), t))
    keys, numbers, values = read_columns(contract.behaviour)
    return {
        "ids": [ids[i] for i in order],
        "time": t[order],
        "label": floats(table.column(contract.label.name))[order],
        "columns": {n: [listed[i] for i in order] for n in keys + values for listed in [table.column(n).to_pylist()]},
        "numbers": {n: floats(table.column(n))[order].tolist() for n in numbers},
    }


def _table(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mechanism in MECHANISMS:
        mine = [r for r in runs if r["mechanism"] == mechanism]
        if not mine:
            continue

        def mean(path: tuple[str, ...], runs: list[dict[str, Any]] = mine) -> float:
            values = []
            for r in runs:
                v: Any = r
                for p in path:
                    v = v[p]
                values.append(v)
            return round(statistics.fmean(values), 4)

        row = {
            "transaction_only": {
                m: mean(("card_transactions", "served", m)) for m in ("roc_auc", "ap", "card_precision_at_k")
            },
            "behaviour_served": {
                m: mean(("card_behaviour", "served", m)) for m in ("roc_auc", "ap", "card_precision_at_k")
            },
            "behaviour_offline": {
                m: mean(("card_behaviour", "offline", m)) for m in ("roc_auc", "ap", "card_precision_at_k")
            },
            "seeds": len(mine),
        }
        row["ap_ratio"] = round(row["behaviour_served"]["ap"] / max(row["transaction_only"]["ap"], 1e-9), 2)
        row["ap_skew"] = round(abs(row["behaviour_served"]["ap"] - row["behaviour_offline"]["ap"]), 4)
        out[mechanism] = row
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=120_000)
    parser.add_argument("--train-share", type=float, default=0.7)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--mechanisms", nargs="+", default=list(MECHANISMS), choices=MECHANISMS)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument(
        "--resume",
        type=Path,
        help="the output of an earlier run: its finished runs (one JSON line each) are kept, not measured again",
    )
    args = parser.parse_args()
    runs = []
    if args.resume:
        for line in args.resume.read_text().splitlines():
            if line.startswith('{"mechanism"'):
                run = json.loads(line)
                if run["rows"] and run["mechanism"] in args.mechanisms and run["seed"] in args.seeds:
                    runs.append(run)
    done = {(r["mechanism"], r["seed"]) for r in runs}
    with tempfile.TemporaryDirectory(prefix="bench-behaviour-") as tmp:
        work = Path(tmp)
        _contracts(work)
        for mechanism in args.mechanisms:
            for seed in args.seeds:
                if (mechanism, seed) in done:
                    continue
                run = _one(mechanism, seed, args.rows, args.train_share, args.k, work)
                print(json.dumps(run), flush=True)
                runs.append(run)
    table = _table(runs)
    print("\nmechanism   transaction-only AP   behaviour served AP   offline AP   ratio   skew   card P@k (a -> b)")
    for mechanism, row in table.items():
        print(
            f"{mechanism:10s}  {row['transaction_only']['ap']:>18.4f}  {row['behaviour_served']['ap']:>20.4f}  "
            f"{row['behaviour_offline']['ap']:>10.4f}  {row['ap_ratio']:>5.2f}x  {row['ap_skew']:.4f}  "
            f"{row['transaction_only']['card_precision_at_k']:.3f} -> "
            f"{row['behaviour_served']['card_precision_at_k']:.3f}"
        )
    results = ROOT / "bench-results"
    results.mkdir(exist_ok=True)
    targets = {"ap_skew_max": AP_SKEW_TARGET, "ap_ratio_min_terminal_card": AP_RATIO_TARGET}
    (results / "behaviour.json").write_text(json.dumps({"runs": runs, "table": table, "targets": targets}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
