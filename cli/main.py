"""``fraudops``: the system without the Functions host.

Every command prints a one-line JSON summary as its last line of stdout, exits 0 on success,
and on failure prints one line with the reason to stderr and exits non-zero (2 for input
that can never succeed, such as a rejected file; 1 for anything else).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.governance.registry import Registry

log = logging.getLogger("fraudops")

EXIT_REJECTED = 2


class CommandError(Exception):
    """A failure the user can act on; ``code`` is the exit status."""

    def __init__(self, reason: str, code: int = 1) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


def _emit(summary: dict[str, Any]) -> None:
    print(json.dumps(summary, default=str, separators=(",", ":")), flush=True)


def _store_and_settings() -> tuple[Any, Any]:
    """The settings and the blob store (no I/O yet; an unreachable store is reported by ``main``)."""
    from shared.adapters.storage import get_blob_store
    from shared.domain.settings import get_settings

    settings = get_settings()
    return get_blob_store(settings), settings


def cmd_init(_args: argparse.Namespace) -> dict[str, Any]:
    """Create every container of the layout (idempotent); Bicep does this in Azure."""
    from shared.domain.layout import CONTAINERS

    store, _ = _store_and_settings()
    store.ensure_containers()
    return {"containers": list(CONTAINERS)}


def cmd_generate(args: argparse.Namespace) -> dict[str, Any]:
    from training.generate import generate

    s = generate(
        args.rows, args.seed, args.out, fraud_rate=args.fraud_rate, truth=args.truth, mechanics_name=args.mechanics
    )
    return {
        "rows": s.rows,
        "frauds": s.frauds,
        "mechanics": s.mechanics,
        "out": s.path,
        "truth": s.truth,
        "bytes": s.bytes,
    }


def cmd_etl(args: argparse.Namespace) -> dict[str, Any]:
    from shared.domain.results import as_dict
    from shared.etl.service import run_etl

    path = Path(args.path)
    if not path.is_file():
        raise CommandError(f"{path} is not a file")
    store, settings = _store_and_settings()
    name = args.name or path.name
    started = time.perf_counter()
    with path.open("rb") as f:
        store.upload_stream("raw", name, f, overwrite=True)
    upload_seconds = round(time.perf_counter() - started, 3)
    outcome = run_etl(store, settings, name=name)
    summary = {**as_dict(outcome, drop=("columns", "schema")), "upload_seconds": upload_seconds}
    if outcome.rejected:
        _emit(summary)
        raise CommandError(f"rejected: {outcome.reason}", EXIT_REJECTED)
    return summary


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    from shared.domain.results import as_dict
    from training.pipeline import run_training

    store, settings = _store_and_settings()
    run = run_training(store, settings, dataset_version=args.dataset_version)
    summary = as_dict(run, drop=("cost_curve", "curves"))  # those are in the JSON and HTML reports
    summary["search"] = {k: v for k, v in run.search.items() if k != "history"}
    summary["drift"] = as_dict(run.drift, drop=("features",))
    return summary


def cmd_drift(args: argparse.Namespace) -> dict[str, Any]:
    from training.monitoring import check_drift

    store, settings = _store_and_settings()
    files = None
    if args.dataset_version:
        from shared.etl.manifest import files_of_version

        files = files_of_version(store, settings.dataset_name, args.dataset_version)[1]
    from shared.domain.results import as_dict

    return as_dict(check_drift(store, settings, files=files), drop=("features",))


def cmd_monitor(args: argparse.Namespace) -> dict[str, Any]:
    """The daily monitoring run, for ``--day`` (default: today, UTC, so far)."""
    from datetime import UTC, date, datetime

    from shared.monitoring.service import run_monitor

    try:
        day = date.fromisoformat(args.day) if args.day else datetime.now(UTC).date()
    except ValueError:
        raise CommandError(f"--day {args.day!r} is not a date like 2026-12-04", EXIT_REJECTED) from None
    store, settings = _store_and_settings()
    return run_monitor(store, settings, day=day).headline()


def cmd_labels(args: argparse.Namespace) -> dict[str, Any]:
    """Upload a labels file to raw/labels/ and run the labels ETL on it (what the blob trigger does)."""
    from shared.domain.contract import LABELS_PREFIX
    from shared.monitoring.feedback import land_labels

    path = Path(args.path)
    if not path.is_file():
        raise CommandError(f"{path} does not exist", EXIT_REJECTED)
    store, settings = _store_and_settings()
    name = f"{LABELS_PREFIX}{path.name}"
    with path.open("rb") as f:
        store.upload_stream("raw", name, f, overwrite=True)
    landed = land_labels(store, settings, name=name)
    if landed.etl.status == "rejected":
        raise CommandError(f"raw/{name} was rejected: {landed.etl.reason}", EXIT_REJECTED)
    from shared.domain.results import as_dict

    summary = as_dict(landed.etl, drop=("columns", "schema"))
    summary["training_rows"] = as_dict(landed.feedback) if landed.feedback else None
    return summary


def cmd_replay(args: argparse.Namespace) -> dict[str, Any]:
    from cli.replay import replay

    if args.batch < 1:
        raise CommandError("--batch must be at least 1")
    _, settings = _store_and_settings()
    return replay(Path(args.path), settings, rate=args.rate, batch=args.batch, local=True if args.local else None)


def cmd_federated_simulate(args: argparse.Namespace) -> dict[str, Any]:
    from cli.simulate import simulate

    _store_and_settings()
    try:
        return simulate(
            banks=args.banks,
            rounds=args.rounds,
            data=Path(args.data) if args.data else None,
            non_iid=args.non_iid,
            poison=args.poison,
            lie=args.lie,
            poison_statistics=args.poison_statistics,
            aggregator=args.aggregator,
            seed=args.seed,
        )
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_REJECTED) from None


def cmd_federated_client(args: argparse.Namespace) -> dict[str, Any]:
    import os

    from fraudops_bank.errors import TableRefusedError
    from fraudops_bank.run import run_client

    try:
        return run_client(args, os.environ)  # the same as `fraudops-bank client`, which banks install on their own
    except TableRefusedError as exc:
        raise CommandError(exc.reason, EXIT_REJECTED) from None


def cmd_federated_keys(args: argparse.Namespace) -> dict[str, Any]:
    from shared.adapters.audit import service_actor
    from shared.domain.settings import get_settings
    from shared.federated.auth import add_bank_key, revoke_bank_key

    change = add_bank_key if args.keys_command == "add" else revoke_bank_key
    return change(get_settings(), args.bank, actor=service_actor("cli"))


def _registry() -> Registry:
    from shared.adapters.audit import AuditLog
    from shared.adapters.model_store import ModelStore
    from shared.governance.registry import Registry

    store, settings = _store_and_settings()
    return Registry(ModelStore(store, settings.model_name), AuditLog(store))


def cmd_models(args: argparse.Namespace) -> dict[str, Any]:
    """The registry: list and show versions; promote, roll back and deprecate them (each audited)."""
    from shared.adapters.audit import service_actor

    registry = _registry()
    actor = service_actor("cli")
    if args.models_command == "list":
        rows = registry.versions()
        return {"champion": next((r["version"] for r in rows if r["champion"]), None), "versions": rows}
    if args.models_command == "show":
        return registry.show(args.version)
    if args.models_command == "promote":
        line = registry.promote(args.version, actor=actor, reason=args.reason)
    elif args.models_command == "rollback":
        line = registry.rollback(to=args.to, actor=actor, reason=args.reason)
    else:
        record = registry.deprecate(args.version, actor=actor, reason=args.reason)
        return {"deprecated": record["version"], "by": record["actor"], "at": record["at"]}
    from shared.governance.registry import moved

    return moved(line)


def cmd_gdpr(args: argparse.Namespace) -> dict[str, Any]:
    """The rights of access (every record about one customer, as JSON at ``--out`` and HTML beside it) and
    erasure (every record removed, and kept out from now on)."""
    from shared.adapters.audit import service_actor
    from shared.domain.pseudonym import for_settings
    from shared.governance.gdpr import access, erase

    store, settings = _store_and_settings()
    if args.gdpr_command == "erase":
        outcome = erase(
            store, for_settings(settings), args.customer, actor=service_actor("cli"), dataset=settings.dataset_name
        )
        return outcome.summary()
    answer = access(store, for_settings(settings), args.customer, actor=service_actor("cli"))
    out = Path(args.out)
    out.write_text(json.dumps(answer.as_json(), indent=1, default=str))
    out.with_suffix(".html").write_text(answer.as_html())
    return {**answer.summary(), "json": str(out), "html": str(out.with_suffix(".html"))}


def cmd_audit(args: argparse.Namespace) -> dict[str, Any]:
    """Verify the audit chain (every line's hash and link; the first broken link is named, exit 1), or write the
    month's audit report."""
    import dataclasses

    from shared.adapters.audit import AuditLog

    store, settings = _store_and_settings()
    if args.audit_command == "report":
        from shared.governance.report import audit_report, month_bounds

        try:
            month_bounds(args.month)
        except ValueError as exc:
            raise CommandError(str(exc), code=2) from None
        monthly = audit_report(store, settings, args.month)
        return {
            "month": args.month,
            "predictions": monthly["predictions"]["total"],
            "model_changes": len(monthly["model_changes"]),
            "data_subject_requests": len(monthly["data_subject_requests"]),
            "key_changes": len(monthly["key_changes"]),
            "audit_chain_intact": monthly["audit_chain"]["intact"],
            "report": f"reports/audit/{args.month}.html",
        }
    report = AuditLog(store).verify()
    summary = {
        "intact": report.intact,
        "lines": report.lines,
        "head_seq": report.head_seq,
        "head_hash": report.head_hash,
        "broken": dataclasses.asdict(report.broken) if report.broken else None,
    }
    if report.broken is not None:
        _emit(summary)
        b = report.broken
        raise CommandError(f"the audit chain is broken at {b.part} line {b.line} (seq {b.seq}): {b.reason}")
    return summary


def cmd_serve(args: argparse.Namespace) -> dict[str, Any]:
    import os
    import secrets

    import uvicorn

    from api.app import create_app
    from shared.adapters.function_keys import ENV, HEADER, FunctionKeyCheck

    keys = list(args.function_key or []) or [k for k in [os.environ.get(ENV)] if k]
    if not keys:
        keys = [secrets.token_urlsafe(24)]
        print(
            f"fraudops serve: no function key given ({ENV} or --function-key); this run accepts {keys[0]} "
            f"(send it in the {HEADER} header, as every request to the deployed app must)",
            file=sys.stderr,
            flush=True,
        )
    started = time.perf_counter()
    uvicorn.run(
        FunctionKeyCheck(create_app(), keys), host=args.host, port=args.port, log_level="warning", access_log=False
    )
    return {
        "served_seconds": round(time.perf_counter() - started, 1),
        "host": args.host,
        "port": args.port,
        "function_keys": len(keys),
    }


def cmd_score(args: argparse.Namespace) -> dict[str, Any]:
    from shared.domain.contract import get_contract
    from shared.domain.results import as_dict
    from shared.scoring.batch import score_file
    from shared.scoring.scorer import get_scorer

    store, settings = _store_and_settings()
    del store
    return as_dict(
        score_file(Path(args.path), Path(args.out), get_scorer(settings), get_contract(settings.dataset_name))
    )


def cmd_demo(args: argparse.Namespace) -> dict[str, Any]:
    from cli.demo import run_demo

    store, settings = _store_and_settings()
    return run_demo(store, settings, rows=args.rows, seed=args.seed, workdir=Path(args.workdir))


def build_parser() -> argparse.ArgumentParser:
    from fraudops_bank.run import add_client_arguments  # argparse only
    from training.mechanics import NAMES  # NumPy only

    p = argparse.ArgumentParser(prog="fraudops", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("init", help="create the storage containers (local Azurite; Bicep does it in Azure)").set_defaults(
        func=cmd_init
    )

    g = sub.add_parser("generate", help="synthetic transactions in the Kaggle creditcard.csv format")
    g.add_argument("--rows", type=int, required=True)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", required=True)
    g.add_argument("--fraud-rate", type=float, default=0.00172)
    g.add_argument("--truth", help="also write each row's true fraud probability here")
    g.add_argument(
        "--mechanics",
        default="mixture",
        choices=NAMES,
        help="how fraud depends on the features (training/mechanics.py); mixture by default",
    )
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("etl", help="upload a file to raw/ and run the blob-trigger ETL on it")
    e.add_argument("path")
    e.add_argument("--name", help="blob name in raw/ (default: the file name)")
    e.set_defaults(func=cmd_etl)

    t = sub.add_parser("train", help="run the retraining pipeline the timer runs")
    t.add_argument("--dataset-version", help="a curated dataset version (default: latest)")
    t.set_defaults(func=cmd_train)

    r = sub.add_parser("drift", help="PSI of the newest curated file against the champion's training data")
    r.add_argument("--dataset-version", help="take the newest file of this dataset version (default: latest)")
    r.set_defaults(func=cmd_drift)

    mo = sub.add_parser("monitor", help="realised performance, live drift and alert verdicts for one day")
    mo.add_argument("--day", help="UTC day to judge, YYYY-MM-DD (default: today so far)")
    mo.set_defaults(func=cmd_monitor)
    lb = sub.add_parser("labels", help="upload a labels file (chargebacks, verdicts) and run the labels ETL")
    lb.add_argument("path", help="CSV with transaction_id,label,labelled_at[,source]")
    lb.set_defaults(func=cmd_labels)

    rp = sub.add_parser(
        "replay",
        help="send a CSV/Parquet file as stream events (Event Hubs, or locally through the streaming function)",
    )
    rp.add_argument("path")
    rp.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    rp.add_argument("--batch", type=int, default=500, help="events per batch")
    rp.add_argument(
        "--local",
        action="store_true",
        help="feed the function in-process (the default when no Event Hubs connection is set)",
    )
    rp.set_defaults(func=cmd_replay)

    fl = sub.add_parser("federated", help="federated learning: simulate banks, or run one bank's client")
    fl_sub = fl.add_subparsers(dest="federated_command", required=True)
    sim = fl_sub.add_parser("simulate", help="banks run the real HTTP protocol against the local API")
    sim.add_argument("--banks", type=int, default=3)
    sim.add_argument("--rounds", type=int, default=5)
    sim.add_argument("--data", help="CSV/Parquet in the creditcard contract (default: generated)")
    sim.add_argument("--non-iid", action="store_true", help="split by Amount instead of at random")
    sim.add_argument("--poison", type=int, default=0, help="banks that send sign-flipped, scaled updates")
    sim.add_argument("--lie", type=int, default=0, help="banks that claim the largest example count accepted")
    sim.add_argument(
        "--poison-statistics", type=int, default=0, help="banks that send round-0 statistics of distorted rows"
    )
    sim.add_argument("--aggregator", choices=["fedavg", "median", "trimmed_mean"], default="fedavg")
    sim.add_argument("--seed", type=int, default=0)
    sim.set_defaults(func=cmd_federated_simulate)
    cl = fl_sub.add_parser(
        "client",
        help="one bank: pull, train locally (NumPy or Spark), sign and post (keys in FL_BANK_KEY and "
        "FRAUDOPS_FUNCTION_KEY, or in the bank's Key Vault); the same as fraudops-bank client",
    )
    add_client_arguments(cl)  # fraudops_bank's flags: --engine numpy|spark, --data or --table...
    cl.set_defaults(func=cmd_federated_client)
    ks = fl_sub.add_parser("keys", help="bank keys")
    ks_sub = ks.add_subparsers(dest="keys_command", required=True)
    ka = ks_sub.add_parser("add", help="create a bank's signing key (in Key Vault when KEY_VAULT_URL is set)")
    ka.add_argument("bank")
    ka.set_defaults(func=cmd_federated_keys)
    kr = ks_sub.add_parser("revoke", help="delete a bank's signing key from Key Vault (audited)")
    kr.add_argument("bank")
    kr.set_defaults(func=cmd_federated_keys)

    md = sub.add_parser("models", help="the model registry: list, show, promote, rollback, deprecate (audited)")
    md_sub = md.add_subparsers(dest="models_command", required=True)
    md_sub.add_parser("list", help="every version, newest first, with the champion and the deprecated marked")
    ms = md_sub.add_parser("show", help="one version: metrics, deprecation, promotion history")
    ms.add_argument("version")
    mp = md_sub.add_parser("promote", help="make a published version the champion")
    mp.add_argument("version")
    mr = md_sub.add_parser("rollback", help="move the champion back to an earlier version (default: the previous)")
    mr.add_argument("--to", help="the earlier version (default: the champion before the current one)")
    mdp = md_sub.add_parser("deprecate", help="a version that may no longer be promoted or pinned")
    mdp.add_argument("version")
    for command in (mp, mr, mdp):
        command.add_argument("--reason", required=True, help="why, in words: it goes into the audit chain")
    md.set_defaults(func=cmd_models)
    gd = sub.add_parser("gdpr", help="data-subject rights: access to, and erasure of, one customer's records")
    gd_sub = gd.add_subparsers(dest="gdpr_command", required=True)
    ga = gd_sub.add_parser("access", help="every record about a customer, as JSON and HTML (audited)")
    ga.add_argument("--customer", required=True, help="the customer id as the bank knows it (never stored)")
    ga.add_argument("--out", default="gdpr-access.json", help="where the JSON goes (the HTML beside it)")
    ge = gd_sub.add_parser("erase", help="remove every record about a customer and keep them out (audited)")
    ge.add_argument("--customer", required=True, help="the customer id as the bank knows it (never stored)")
    gd.set_defaults(func=cmd_gdpr)
    au = sub.add_parser("audit", help="the audit chain")
    au_sub = au.add_subparsers(dest="audit_command", required=True)
    au_sub.add_parser("verify", help="check every line's hash and link; name the first broken one")
    ar = au_sub.add_parser("report", help="the month's audit report (reports/audit/<YYYY-MM>.json and .html)")
    ar.add_argument("--month", required=True, help="YYYY-MM")
    au.set_defaults(func=cmd_audit)

    s = sub.add_parser("serve", help="serve the HTTP API under uvicorn, checking function keys like the host")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=7071)
    s.add_argument(
        "--function-key",
        action="append",
        help="a key requests must carry in x-functions-key or ?code=, as the Functions host demands "
        "(repeatable; default: FRAUDOPS_FUNCTION_KEY, else a random key printed on stderr)",
    )
    s.set_defaults(func=cmd_serve)

    c = sub.add_parser("score", help="batch-score a CSV or Parquet file with the champion")
    c.add_argument("path")
    c.add_argument("--out", required=True)
    c.set_defaults(func=cmd_score)

    d = sub.add_parser("demo", help="generate, ETL, train, serve and score over HTTP, end to end")
    d.add_argument("--rows", type=int, default=300_000)
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--workdir", default=".demo")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    from azure.core.exceptions import ServiceRequestError

    from fraudops_bank.errors import BankError
    from shared.domain.errors import FraudOpsError

    try:
        _emit(args.func(args))
    except CommandError as exc:
        print(f"fraudops {args.command}: {exc.reason}", file=sys.stderr)
        return exc.code
    except (FraudOpsError, BankError) as exc:
        print(f"fraudops {args.command}: {exc.reason}", file=sys.stderr)
        return 1
    except ServiceRequestError as exc:
        print(
            f"fraudops {args.command}: storage is not reachable ({type(exc).__name__}); start Azurite with "
            "'make azurite' or set AzureWebJobsStorage",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
