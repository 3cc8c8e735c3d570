"""The end-to-end demo: generate, ETL, train, serve over real HTTP, score, stop."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from shared.adapters.storage import BlobStore
from shared.domain import layout
from shared.domain.settings import Settings

log = logging.getLogger(__name__)


DEMO_CUSTOMERS = 40


def demo_customer(i: int) -> str:
    """A customer id as a bank would send it: the demo's HTTP and stream traffic carry them, and none is stored."""
    return f"demo-customer-{i:04d}"


def _sample_transactions(path: Path, n_normal: int = 3, n_fraud: int = 2) -> list[dict[str, Any]]:
    """A few labelled rows from the latest part of the file (the time-split test part)."""
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(path)
    tail = table.slice(int(table.num_rows * 0.8)).to_pylist()
    frauds = [r for r in tail if r["Class"] == 1][:n_fraud]
    normals = [r for r in tail if r["Class"] == 0][:n_normal]
    picked = []
    for i, row in enumerate(normals + frauds):
        label = row.pop("Class")
        tid = f"demo-{i}-{'fraud' if label else 'normal'}"
        picked.append({"transaction_id": tid, "customer_id": demo_customer(i), **row})
    return picked


def run_demo(store: BlobStore, settings: Settings, *, rows: int, seed: int, workdir: Path) -> dict[str, Any]:
    import secrets

    from cli.server import running_server
    from shared.adapters.function_keys import function_app_client
    from shared.domain.results import as_dict
    from shared.etl.service import run_etl
    from training.generate import generate
    from training.pipeline import run_training

    workdir.mkdir(parents=True, exist_ok=True)
    csv_path = workdir / f"transactions-{rows}-{seed}.csv"
    gen = generate(rows, seed, csv_path)
    log.info("demo: generated %d transactions (%d frauds) in %s", gen.rows, gen.frauds, csv_path)
    name = f"demo/{csv_path.name}"
    with csv_path.open("rb") as f:
        store.upload_stream(layout.RAW, name, f, overwrite=True)
    etl = run_etl(store, settings.etl, name=name)
    log.info("demo: ETL %s, %d valid rows, version %s", etl.status, etl.rows_valid, etl.dataset_version)
    train = run_training(store, config=settings.training, storage=settings.storage, dataset_version=etl.dataset_version)
    log.info("demo: model %s auc=%.4f pr_auc=%.4f", train.model_version, train.auc, train.pr_auc)
    transactions = _sample_transactions(csv_path)
    key = secrets.token_urlsafe(24)
    with running_server(function_key=key) as url, function_app_client(url, function_key=key) as http:
        health = http.get("/api/health").json()
        response = http.post("/api/score", json={"transactions": transactions})
        response.raise_for_status()
        scored = response.json()
    log.info("demo: scored %d transactions over HTTP at %s", len(scored["results"]), url)
    stream = _replay_tail(csv_path, workdir, settings)
    from cli.simulate import simulate

    federated = simulate(banks=3, rounds=2, rows=30_000, seed=seed)
    log.info(
        "demo: federated, 3 banks, 2 rounds: AUC %.4f (centralised %.4f)",
        federated["federated_auc"],
        federated["centralized_auc"],
    )
    log.info(
        "demo: replayed %d events through score_stream: %d scored, %d alerts, %d dead-lettered",
        stream["sent"],
        stream["scored"],
        stream["alerts"],
        stream["deadlettered"],
    )
    monitoring = _labels_and_monitor(store, settings, workdir, csv_path, transactions)
    return {
        "rows": gen.rows,
        "frauds": gen.frauds,
        "etl": {
            k: as_dict(etl)[k]
            for k in (
                "status",
                "rows_in",
                "rows_valid",
                "rows_quarantined",
                "rows_duplicate",
                "parquet_bytes",
                "etl_seconds",
                "dataset_version",
            )
        },
        "model_version": train.model_version,
        "auc": round(train.auc, 4),
        "pr_auc": round(train.pr_auc, 4),
        "threshold": train.threshold,
        "promoted": train.promoted,
        "serving_version": health.get("model_version"),
        "scored_over_http": scored["results"],
        "stream_replay": {
            k: stream[k]
            for k in ("mode", "sent", "scored", "alerts", "deadlettered", "events_per_s")  # layout: not a blob
        },
        "federated": {k: federated[k] for k in ("banks", "rounds", "federated_auc", "centralized_auc")},
        "monitoring": monitoring,
    }


def _labels_and_monitor(
    store: BlobStore, settings: Settings, workdir: Path, csv_path: Path, http_rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """Weeks later, in a minute: labels for part of what was served (HTTP and stream), then the monitoring run."""
    from datetime import UTC, datetime

    import pyarrow.csv as pacsv

    from shared.bootstrap import close_recorders
    from shared.monitoring.feedback import land_labels
    from shared.monitoring.service import run_monitor

    close_recorders()  # the HTTP records still buffered are written now, as at a server's shutdown
    now = datetime.now(UTC)
    tail = pacsv.read_csv(workdir / "stream-tail.csv").column("Class").to_pylist()[:-1]  # not the broken row
    lines = ["transaction_id,label,labelled_at,source"]
    lines += [f"stream-tail-{i},{c},{now:%Y-%m-%dT%H:%M:%SZ},chargeback" for i, c in enumerate(tail) if i % 5 < 3]
    lines += [
        f"{r['transaction_id']},{int(r['transaction_id'].endswith('fraud'))},{now:%Y-%m-%dT%H:%M:%SZ},investigator"
        for r in http_rows
    ]
    labels = workdir / "labels.csv"
    labels.write_text("\n".join(lines) + "\n")
    name = f"{layout.RAW_LABELS_PREFIX}demo-{csv_path.stem}.csv"
    with labels.open("rb") as f:
        store.upload_stream(layout.RAW, name, f, overwrite=True)
    arrived = land_labels(store, settings.monitoring, name=name)
    landed = arrived.etl
    outcome = run_monitor(store, settings.monitoring, day=now.date())
    figures = outcome.headline()
    log.info(
        "demo: %d labels in; realised over %d labelled of %d served: precision %s, recall %s, %d caught, "
        "%d missed, %d false alarms, cost %s; monitoring %s (%s)",
        landed.rows_valid,
        figures["labelled"],
        figures["served"],
        figures["precision"],
        figures["recall"],
        figures["frauds_caught"],
        figures["frauds_missed"],
        figures["false_alarms"],
        figures["cost"],
        figures["level"],
        figures["report"],
    )
    return {
        "labels_in": landed.rows_valid,
        "labels_quarantined": landed.rows_quarantined,
        "curated_for_training": arrived.feedback.written if arrived.feedback else 0,
        **figures,
    }


def _replay_tail(path: Path, workdir: Path, settings: Settings, rows: int = 5000) -> dict[str, Any]:
    """The last ``rows`` transactions (plus one broken row, to show dead-lettering) through the stream function."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from cli.replay import replay

    table = pacsv.read_csv(path)
    tail = table.slice(max(table.num_rows - rows, 0))
    customers = pa.array([demo_customer(i % DEMO_CUSTOMERS) for i in range(tail.num_rows)], pa.string())
    tail = tail.append_column("customer_id", customers)  # as a card processor's messages carry them
    out = workdir / "stream-tail.csv"
    pacsv.write_csv(tail, out)
    with out.open("a") as f:  # negative Amount: dead-lettered (with its customer id pseudonymised)
        f.write(",".join(["0"] * (tail.num_columns - 3)) + f",-1,0,{demo_customer(0)}\n")
    return replay(out, settings, rate=None, batch=1000, local=True)
