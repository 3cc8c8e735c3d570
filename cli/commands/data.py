"""The data commands: create the containers, generate transactions, land a file (the ETL), land labels,
replay a file as stream events."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cli.commands.command import (
    Summary,
    UsageError,
    existing_file,
    positive_float,
    positive_int,
    services,
)
from shared.domain.progress import report

if TYPE_CHECKING:
    from cli.commands.command import SubParsers
    from shared.adapters.storage import AzureBlobStore


def cmd_init(_args: argparse.Namespace) -> Summary:
    """Create every container of the layout (idempotent); Bicep does this in Azure."""
    from shared.domain.layout import CONTAINERS

    services().blob_store.ensure_containers()
    return {"containers": list(CONTAINERS)}


def cmd_generate(args: argparse.Namespace) -> Summary:
    from shared.domain.settings import get_settings
    from training.generators import generate_dataset

    dataset = get_settings().dataset_name
    try:
        s = generate_dataset(
            dataset,
            args.rows,
            args.seed,
            args.out,
            fraud_rate=args.fraud_rate,
            truth=args.truth,
            mechanics=args.mechanics,
            behaviour=tuple(m for m in (args.behaviour or "").split(",") if m),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return {
        "dataset": dataset,
        "rows": s.rows,
        "frauds": s.frauds,
        "mechanics": s.mechanics,
        "out": s.path,
        "truth": s.truth,
        "bytes": s.bytes,
    }


def cmd_etl(args: argparse.Namespace) -> Summary:
    from shared.domain import layout
    from shared.domain.results import as_dict
    from shared.etl.service import run_etl

    path: Path = args.path
    root = services()
    store, settings = root.blob_store, root.settings
    name = args.name or path.name
    started = time.perf_counter()
    _upload(store, path, layout.RAW, name)
    upload_seconds = round(time.perf_counter() - started, 3)
    outcome = run_etl(store, settings.etl, name=name)
    summary = {**as_dict(outcome, drop=("columns", "schema")), "upload_seconds": upload_seconds}
    if outcome.rejected:
        raise UsageError(f"rejected: {outcome.reason}", summary=summary)
    return summary


def _upload(store: AzureBlobStore, path: Path, container: str, name: str) -> None:
    """Upload ``path`` as ``container/name`` (replacing it), its bytes counted on the progress line."""
    size = path.stat().st_size
    with path.open("rb") as f:
        store.upload_stream(
            container,
            name,
            f,
            overwrite=True,
            length=size,
            progress=lambda done, total: report("upload", done, total or size),
        )


def cmd_labels(args: argparse.Namespace) -> Summary:
    """Upload a labels file to raw/labels/ and run the labels ETL on it (what the blob trigger does)."""
    from shared.domain import layout
    from shared.monitoring.feedback import land_labels

    path: Path = args.path
    root = services()
    store, settings = root.blob_store, root.settings
    name = f"{layout.RAW_LABELS_PREFIX}{path.name}"
    _upload(store, path, layout.RAW, name)
    landed = land_labels(store, settings.monitoring, name=name, online=root.behaviour)
    if landed.etl.status == "rejected":
        raise UsageError(f"{layout.display(layout.RAW, name)} was rejected: {landed.etl.reason}")
    from shared.domain.results import as_dict

    summary = as_dict(landed.etl, drop=("columns", "schema"))
    summary["training_rows"] = as_dict(landed.feedback) if landed.feedback else None
    return summary


def cmd_replay(args: argparse.Namespace) -> Summary:
    from cli.replay import replay

    settings = services().settings
    return replay(args.path, settings, rate=args.rate, batch=args.batch, local=True if args.local else None)


def add_init(sub: SubParsers) -> None:
    sub.add_parser("init", help="create the storage containers (local Azurite; Bicep does it in Azure)").set_defaults(
        func=cmd_init
    )


def add_generate(sub: SubParsers) -> None:
    from training.mechanics import NAMES  # NumPy only

    g = sub.add_parser("generate", help="synthetic transactions with known truth, in the dataset's format (--dataset)")
    g.add_argument("--rows", type=positive_int, required=True, help="how many transactions (at least 1)")
    g.add_argument("--seed", type=int, default=0, help="the random seed: the same seed gives the same file")
    g.add_argument("--out", required=True, help="the file to write (.csv, or .parquet)")
    g.add_argument("--fraud-rate", type=positive_float, help="share of frauds (default: the dataset generator's own)")
    g.add_argument("--truth", help="also write each row's true fraud probability to this file")
    g.add_argument(
        "--mechanics",
        default="mixture",
        choices=NAMES,
        help="how fraud depends on the features (training/mechanics.py)",
    )
    g.add_argument(
        "--behaviour",
        help="card_transactions: frauds only history reveals, comma-separated: terminal (compromised terminals), "
        "card (compromised cards), testing (card-testing bursts), takeover (account takeover); the truth file "
        "names each row's mechanism",
    )
    g.set_defaults(func=cmd_generate)


def add_etl(sub: SubParsers) -> None:
    e = sub.add_parser("etl", help="upload a file to raw/ and run the blob-trigger ETL on it")
    e.add_argument("path", type=existing_file, help="the CSV or Parquet file to land (exit 2 when missing)")
    e.add_argument("--name", help="blob name in raw/ (default: the file name)")
    e.set_defaults(func=cmd_etl)


def add_labels(sub: SubParsers) -> None:
    lb = sub.add_parser("labels", help="upload a labels file (chargebacks, verdicts) and run the labels ETL")
    lb.add_argument("path", type=existing_file, help="CSV with transaction_id,label,labelled_at[,source]")
    lb.set_defaults(func=cmd_labels)


def add_replay(sub: SubParsers) -> None:
    rp = sub.add_parser(
        "replay",
        help="send a CSV/Parquet file as stream events (Event Hubs, or locally through the streaming function)",
    )
    rp.add_argument("path", type=existing_file, help="the CSV or Parquet file of transactions to send")
    rp.add_argument("--rate", type=positive_float, help="events per second (default: as fast as possible)")
    rp.add_argument("--batch", type=positive_int, default=500, help="events per batch")
    rp.add_argument(
        "--local",
        action="store_true",
        help="feed the function in-process (the default when no Event Hubs connection is set)",
    )
    rp.set_defaults(func=cmd_replay)
