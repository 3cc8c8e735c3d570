"""The model commands: retrain (what the timer runs), check drift, the daily monitoring run, batch scoring."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from cli.commands.command import Summary, UsageError, existing_file, services

if TYPE_CHECKING:
    from cli.commands.command import SubParsers


def cmd_train(args: argparse.Namespace) -> Summary:
    from shared.domain.results import as_dict
    from training.pipeline import run_training

    root = services()
    settings = root.settings
    run = run_training(
        root.blob_store, config=settings.training, storage=settings.storage, dataset_version=args.dataset_version
    )
    summary = as_dict(run, drop=("cost_curve", "curves"))  # those are in the JSON and HTML reports
    summary["search"] = {k: v for k, v in run.search.items() if k != "history"}
    summary["drift"] = as_dict(run.drift, drop=("features",))
    return summary


def cmd_drift(args: argparse.Namespace) -> Summary:
    from training.monitoring import check_drift

    root = services()
    store, settings = root.blob_store, root.settings
    files = None
    if args.dataset_version:
        from shared.etl.manifest import files_of_version

        files = files_of_version(store, settings.dataset_name, args.dataset_version)[1]
    from shared.domain.results import as_dict

    return as_dict(check_drift(store, config=settings.training, files=files), drop=("features",))


def cmd_monitor(args: argparse.Namespace) -> Summary:
    """The daily monitoring run, for ``--day`` (default: today, UTC, so far)."""
    from datetime import UTC, date, datetime

    from shared.monitoring.service import run_monitor

    try:
        day = date.fromisoformat(args.day) if args.day else datetime.now(UTC).date()
    except ValueError:
        raise UsageError(f"--day {args.day!r} is not a date like 2026-12-04") from None
    root = services()
    return run_monitor(root.blob_store, root.settings.monitoring, day=day, anchor=root.audit_anchor).headline()


def cmd_score(args: argparse.Namespace) -> Summary:
    from shared.domain.contracts import get_contract
    from shared.domain.results import as_dict
    from shared.scoring.batch import score_file

    root = services()
    contract = get_contract(root.settings.scoring.dataset_name)
    return as_dict(
        score_file(
            args.path,
            Path(args.out),
            root.scorer,
            contract,
            online=root.behaviour,
            pseudonymise=root.pseudonymise,
        )
    )


def add_train(sub: SubParsers) -> None:
    t = sub.add_parser("train", help="run the retraining pipeline the timer runs")
    t.add_argument("--dataset-version", help="a curated dataset version (default: latest)")
    t.set_defaults(func=cmd_train)


def add_drift(sub: SubParsers) -> None:
    r = sub.add_parser("drift", help="PSI of the newest curated file against the champion's training data")
    r.add_argument("--dataset-version", help="take the newest file of this dataset version (default: latest)")
    r.set_defaults(func=cmd_drift)


def add_monitor(sub: SubParsers) -> None:
    mo = sub.add_parser("monitor", help="realised performance, live drift and alert verdicts for one day")
    mo.add_argument("--day", help="UTC day to judge, YYYY-MM-DD (default: today so far)")
    mo.set_defaults(func=cmd_monitor)


def add_score(sub: SubParsers) -> None:
    c = sub.add_parser("score", help="batch-score a CSV or Parquet file with the champion")
    c.add_argument("path", type=existing_file, help="the CSV or Parquet file of transactions to score")
    c.add_argument(
        "--out", required=True, help="where the scores go (CSV: transaction_id, fraud_probability, is_fraud)"
    )
    c.set_defaults(func=cmd_score)
