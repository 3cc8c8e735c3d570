"""Training benchmark (``make bench-train``): quality against the Bayes optimum, time, memory.

On a generated full-size file (284,807 rows, the real fraud rate) with known true fraud
probabilities, ingested by the ETL into a private Azurite, this runs ``fraudops train`` in a
child process with the default search budget and reports, side by side:

* the test part's ROC-AUC and PR-AUC against the Bayes-optimal ones (the true probabilities
  scored on the same rows), and the logistic-regression baseline; the published ONNX model
  rescores the test part to give the gap's paired-bootstrap standard deviation, the noise of
  the measurement itself (a test part of a full-size file holds only about a hundred frauds);
* the pipeline's wall time against its floor, one bare LightGBM fit of the default
  configuration on the same train part (measured in this run; the machine is shared and noisy);
* the child's peak resident memory (VmHWM) and the ONNX parity.

Prints a table and writes ``bench-results/train.json``.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _bare_fit_seconds(store, dataset_version: str) -> float:
    """The floor: one LightGBM fit of the default configuration on the train part, nothing else."""
    import lightgbm as lgb

    from shared.domain.contract import get_contract
    from shared.domain.settings import get_settings
    from training.data import load_dataset, matrix, time_split
    from training.search import DEFAULTS, EARLY_STOPPING_ROUNDS, FIXED

    contract = get_contract("creditcard")
    _, _, frame = load_dataset(store, contract, dataset_version)
    train, valid, _, _ = time_split(frame, "Time")
    features = contract.feature_names
    x_train, x_valid = matrix(train, features), matrix(valid, features)
    started = time.perf_counter()
    data = lgb.Dataset(x_train, train["Class"].to_numpy(), feature_name=features)
    rounds = get_settings().train_num_boost_round
    booster = lgb.train(
        {**FIXED, **DEFAULTS, "seed": 42},
        data,
        num_boost_round=rounds,
        valid_sets=[lgb.Dataset(x_valid, valid["Class"].to_numpy(), reference=data)],
        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )
    booster.predict(x_valid)
    return time.perf_counter() - started


def _gap_and_noise(store, summary: dict[str, Any], csv_path: Path, truth_path: Path) -> tuple[float, float]:
    """The trained model's ONNX scores on the test part against the true probabilities: the ROC-AUC gap
    and its paired-bootstrap standard deviation (how much of the gap is the test part's own noise)."""
    import numpy as np
    import pyarrow.csv as pacsv

    from shared.adapters.model_store import ModelStore
    from shared.domain.contract import get_contract
    from shared.domain.settings import get_settings
    from shared.scoring.scorer import Scorer
    from training.evaluation import paired_auc_gap

    features = get_contract("creditcard").feature_names
    last = summary["split"]["test"][2]
    table = pacsv.read_csv(csv_path, convert_options=pacsv.ConvertOptions(include_columns=[*features, "Class"]))
    x = np.column_stack([np.asarray(table.column(f))[-last:] for f in features]).astype(np.float32)
    y = np.asarray(table.column("Class"))[-last:].astype(int)
    truth = np.asarray(pacsv.read_csv(truth_path).column("fraud_probability"))[-last:]
    scorer = Scorer(ModelStore(store, get_settings().model_name), feature_names=features, refresh_seconds=30, threads=2)
    scores = scorer.pinned(summary["model_version"]).predict_proba(x)
    return paired_auc_gap(y, truth, scores)


def _one_seed(seed: int, rows: int, work: Path) -> dict[str, Any]:
    """Generate (once), ingest into a fresh private Azurite, train in a child process, compare with the truth."""
    from cli.devtools.azurite import private_azurite, storage_env
    from shared.adapters.storage import get_blob_store
    from shared.domain.settings import get_settings
    from shared.etl.service import run_etl
    from training.generate import bayes_reference, generate

    csv_path = work / f"train-{rows}-{seed}.csv"
    truth_path = csv_path.with_suffix(".truth.csv")
    if not (csv_path.exists() and truth_path.exists()):
        generate(rows, seed, csv_path, truth=truth_path)
    get_settings.cache_clear()  # each seed has its own Azurite
    with private_azurite() as connection, tempfile.TemporaryDirectory(prefix="bench-mlflow-") as mlflow_dir:
        env = {
            **os.environ,
            **storage_env(connection),
            "MLFLOW_TRACKING_URI": f"sqlite:///{mlflow_dir}/mlflow.db",
        }
        os.environ.update(env)
        store = get_blob_store(get_settings())
        with csv_path.open("rb") as f:
            store.upload_stream("raw", csv_path.name, f, overwrite=True)
        etl = run_etl(store, get_settings(), name=csv_path.name)
        floor = _bare_fit_seconds(store, etl.dataset_version)
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, "-m", "cli.main", "train"], env=env, cwd=ROOT, capture_output=True, text=True
        )
        wall = time.perf_counter() - started
        if child.returncode != 0:
            sys.stderr.write(child.stderr[-4000:])
            raise SystemExit(f"fraudops train failed with status {child.returncode}")
        summary = json.loads(child.stdout.strip().splitlines()[-1])
        gap, gap_sd = _gap_and_noise(store, summary, csv_path, truth_path)
    bayes = bayes_reference(csv_path, truth_path, summary["split"]["test"][2])
    return {
        "seed": seed,
        "rows": etl["rows_valid"],
        "test_rows": bayes["rows"],
        "test_frauds": bayes["frauds"],
        "auc": round(summary["auc"], 4),
        "bayes_auc": round(bayes["auc"], 4),
        "auc_gap": round(bayes["auc"] - summary["auc"], 4),
        "auc_gap_rescored": round(gap, 4),
        "auc_gap_bootstrap_sd": round(gap_sd, 4),
        "pr_auc": round(summary["pr_auc"], 4),
        "bayes_pr_auc": round(bayes["pr_auc"], 4),
        "pr_auc_gap": round(bayes["pr_auc"] - summary["pr_auc"], 4),
        "baseline_auc": round(summary["baseline_metrics"]["auc"], 4),
        "baseline_pr_auc": round(summary["baseline_metrics"]["pr_auc"], 4),
        "threshold": summary["threshold"],
        "cost": summary["cost"],
        "baseline_cost": summary["baseline_metrics"]["cost"],
        "trials": summary["search"]["trials"],
        "pruned": summary["search"]["pruned"],
        "search_seconds": summary["search"]["seconds"],
        "stopped_by": summary["search"]["stopped_by"],
        "pipeline_seconds": summary["train_seconds"],
        "process_seconds": round(wall, 1),
        "floor_one_fit_seconds": round(floor, 2),
        "ratio_to_one_fit": round(summary["train_seconds"] / floor, 1),
        "peak_rss_mb": summary["peak_rss_mb"],
        "parity_max_abs_diff": summary["parity_max_abs_diff"],
        "mlflow_version": summary["mlflow"].get("registered_version"),
    }


def main() -> int:
    from cli.devtools.bench import report

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=284_807)
    p.add_argument("--seeds", default="3,5,7", help="generated datasets, one run each (comma-separated)")
    p.add_argument("--workdir", default=str(ROOT / "bench-results"))
    args = p.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        runs.append(_one_seed(seed, args.rows, work))
        print(" ".join(f"{k}={v}" for k, v in runs[-1].items()), flush=True)
    gaps = [r["auc_gap"] for r in runs]
    result = {
        "seeds": [r["seed"] for r in runs],
        "auc_gaps": gaps,
        "auc_gap_mean": round(statistics.mean(gaps), 4),
        "auc_gap_bootstrap_sds": [r["auc_gap_bootstrap_sd"] for r in runs],
        "auc_gap_max": max(gaps),
        "pr_auc_gaps": [r["pr_auc_gap"] for r in runs],
        "baseline_auc_gaps": [round(r["bayes_auc"] - r["baseline_auc"], 4) for r in runs],
        "test_frauds": [r["test_frauds"] for r in runs],
        "pipeline_seconds_max": max(r["pipeline_seconds"] for r in runs),
        "ratio_to_one_fit_max": max(r["ratio_to_one_fit"] for r in runs),
        "peak_rss_mb_max": max(r["peak_rss_mb"] for r in runs),
        "parity_max_abs_diff": max(r["parity_max_abs_diff"] for r in runs),
        "runs": runs,
    }
    return report(result, work / "train.json")


if __name__ == "__main__":
    sys.exit(main())
