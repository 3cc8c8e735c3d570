"""The end-to-end demo: generate, ETL, train, serve over real HTTP, score, stop."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from shared.adapters.storage import BlobStore
from shared.domain import layout
from shared.domain.contract import ColumnType, DatasetContract
from shared.domain.settings import Settings

log = logging.getLogger(__name__)


DEMO_CUSTOMERS = 40


def demo_customer(i: int) -> str:
    """A customer id as a bank would send it: the demo's HTTP and stream traffic carry them, and none is stored."""
    return f"demo-customer-{i:04d}"


def _read(path: Path, contract: DatasetContract) -> Any:
    """The generated file as the contract reads it: text columns as text (a code is not a number), empty as null."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    texts = {c.name: pa.string() for c in contract.columns if c.dtype in ("string", "timestamp")}
    options = pacsv.ConvertOptions(column_types=texts, strings_can_be_null=True)
    return pacsv.read_csv(path, convert_options=options)


def _json_value(contract: DatasetContract, name: str, value: Any) -> Any:
    """A CSV value as a JSON body sends it: a whole number of an integer column as an integer."""
    if value is not None and contract.column(name).type is ColumnType.INTEGER:
        return int(value)
    return value


def _sample_transactions(
    path: Path, contract: DatasetContract, n_normal: int = 3, n_fraud: int = 2
) -> list[dict[str, Any]]:
    """A few labelled rows from the latest part of the file (the time-split test part), as JSON transactions."""
    assert contract.label is not None
    label_name = contract.label.name
    table = _read(path, contract)
    tail = table.slice(int(table.num_rows * 0.8)).to_pylist()
    frauds = [r for r in tail if r[label_name] == 1][:n_fraud]
    normals = [r for r in tail if r[label_name] == 0][:n_normal]
    picked = []
    for i, row in enumerate(normals + frauds):
        label = row.pop(label_name)
        doc = {k: _json_value(contract, k, v) for k, v in row.items() if v is not None}
        if contract.transaction_id:
            doc[contract.transaction_id] = f"demo-{i}-{'fraud' if label else 'normal'}"
        if contract.customer:
            doc[contract.customer] = demo_customer(i)
        picked.append(doc)
    return picked


def run_demo(store: BlobStore, settings: Settings, *, rows: int, seed: int, workdir: Path) -> dict[str, Any]:
    import secrets

    from cli.server import running_server
    from shared.adapters.function_keys import function_app_client
    from shared.domain.contracts import get_contract
    from shared.domain.results import as_dict
    from shared.domain.typed_rows import is_plain
    from shared.etl.service import run_etl
    from training.generators import generate_dataset
    from training.pipeline import run_training

    contract = get_contract(settings.dataset_name)
    workdir.mkdir(parents=True, exist_ok=True)
    csv_path = workdir / f"{contract.name}-{rows}-{seed}.csv"
    gen = generate_dataset(contract.name, rows, seed, csv_path)
    log.info("demo: generated %d transactions (%d frauds) in %s", gen.rows, gen.frauds, csv_path)
    name = f"demo/{csv_path.name}"
    with csv_path.open("rb") as f:
        store.upload_stream(layout.RAW, name, f, overwrite=True)
    etl = run_etl(store, settings.etl, name=name)
    log.info("demo: ETL %s, %d valid rows, version %s", etl.status, etl.rows_valid, etl.dataset_version)
    train = run_training(store, config=settings.training, storage=settings.storage, dataset_version=etl.dataset_version)
    log.info("demo: model %s auc=%.4f pr_auc=%.4f", train.model_version, train.auc, train.pr_auc)
    transactions = _sample_transactions(csv_path, contract)
    key = secrets.token_urlsafe(24)
    with running_server(function_key=key) as url, function_app_client(url, function_key=key) as http:
        health = http.get("/api/health").json()
        response = http.post("/api/score", json={"transactions": transactions})
        response.raise_for_status()
        scored = response.json()
    log.info("demo: scored %d transactions over HTTP at %s", len(scored["results"]), url)
    stream = _replay_tail(csv_path, workdir, settings, contract)
    from cli.simulate import simulate

    federated: dict[str, Any] = {"banks": 0, "rounds": 0, "federated_auc": None, "centralized_auc": None}
    if is_plain(contract):  # the banks' engines read plain numeric features (fraudops_bank)
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
    monitoring = _labels_and_monitor(store, settings, workdir, csv_path, transactions, contract)
    return {
        "dataset": contract.name,
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
    store: BlobStore,
    settings: Settings,
    workdir: Path,
    csv_path: Path,
    http_rows: list[dict[str, Any]],
    contract: DatasetContract,
) -> dict[str, Any]:
    """Weeks later, in a minute: labels for part of what was served (HTTP and stream), then the monitoring run."""
    from datetime import UTC, datetime

    from shared.bootstrap import bootstrap, close_recorders
    from shared.monitoring.feedback import land_labels
    from shared.monitoring.service import run_monitor

    assert contract.label is not None and contract.transaction_id is not None
    close_recorders()  # the HTTP records still buffered are written now, as at a server's shutdown
    now = datetime.now(UTC)
    replayed = _read(workdir / "stream-tail.csv", contract)
    tail = replayed.column(contract.label.name).to_pylist()[:-1]  # not the broken row
    tid = contract.transaction_id
    ids = replayed.column(tid).to_pylist() if tid in replayed.column_names else None
    ids = [ids[i] if ids else f"stream-tail-{i}" for i in range(len(tail))]
    lines = ["transaction_id,label,labelled_at,source"]
    lines += [f"{ids[i]},{c},{now:%Y-%m-%dT%H:%M:%SZ},chargeback" for i, c in enumerate(tail) if i % 5 < 3]
    lines += [f"{r[tid]},{int(r[tid].endswith('fraud'))},{now:%Y-%m-%dT%H:%M:%SZ},investigator" for r in http_rows]
    labels = workdir / "labels.csv"
    labels.write_text("\n".join(lines) + "\n")
    name = f"{layout.RAW_LABELS_PREFIX}demo-{csv_path.stem}.csv"
    with labels.open("rb") as f:
        store.upload_stream(layout.RAW, name, f, overwrite=True)
    arrived = land_labels(store, settings.monitoring, name=name, online=bootstrap().behaviour)
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


def _replay_tail(
    path: Path, workdir: Path, settings: Settings, contract: DatasetContract, rows: int = 5000
) -> dict[str, Any]:
    """The last ``rows`` transactions (plus one broken row, to show dead-lettering) through the stream function."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from cli.replay import replay

    table = _read(path, contract)
    tail = table.slice(max(table.num_rows - rows, 0))
    if contract.customer:  # as a card processor's messages carry them
        customers = pa.array([demo_customer(i % DEMO_CUSTOMERS) for i in range(tail.num_rows)], pa.string())
        if contract.customer in tail.column_names:
            tail = tail.drop_columns([contract.customer])
        tail = tail.append_column(contract.customer, customers)
    broken = tail.slice(0, 1).to_pylist()[0]  # a feature out of its contract: dead-lettered, its ids pseudonymised
    feature = contract.column(contract.feature_names[0])
    broken[feature.name] = -1.0 if feature.minimum == 0 else None
    if contract.amount and contract.column(contract.amount).minimum == 0:
        broken[contract.amount] = -1.0
    if contract.transaction_id:
        broken[contract.transaction_id] = "stream-tail-broken"
    tail = pa.concat_tables([tail, pa.Table.from_pylist([broken], schema=tail.schema)])
    out = workdir / "stream-tail.csv"
    pacsv.write_csv(tail, out)
    return replay(out, settings, rate=None, batch=1000, local=True)
