"""The governance commands: the model registry (list, show, promote, roll back, deprecate), the data subjects'
rights (access, erasure) and the audit chain (verify, monthly report); every change and access is audited."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cli.commands.command import CommandFailed, Summary, UsageError, services
from shared.domain import progress

if TYPE_CHECKING:
    from cli.commands.command import SubParsers
    from shared.governance.registry import Registry


def _registry() -> Registry:
    from shared.adapters.audit import AuditLog
    from shared.governance.registry import Registry

    root = services()
    return Registry(root.model_store, AuditLog(root.blob_store))


def cmd_models(args: argparse.Namespace) -> Summary:
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
        return {"deprecated": record.version, "by": record.actor, "at": record.at}
    from shared.governance.registry import moved

    return moved(line)


def cmd_gdpr(args: argparse.Namespace) -> Summary:
    """The rights of access (every record about one customer, as JSON at ``--out`` and HTML beside it) and
    erasure (every record removed, and kept out from now on; ``--dry-run`` says what would be)."""
    from shared.adapters.audit import service_actor
    from shared.domain.pseudonym import for_settings
    from shared.governance.gdpr import access, erase, preview_erasure, resume_erasures

    if args.gdpr_command == "resume":
        root = services()
        store, settings = root.blob_store, root.settings
        outcomes = resume_erasures(
            store,
            for_settings(settings),
            actor=service_actor("cli"),
            dataset=settings.dataset_name,
            online=root.behaviour,
        )
        from shared.adapters.erasures import requested

        return {"finished": [o.summary() for o in outcomes], "still_pending": requested(store)}
    customers = _customer_ids(args)  # read (and refused) before storage is touched
    root = services()
    store, settings = root.blob_store, root.settings
    if args.gdpr_command == "erase":
        results = []
        for done, customer in enumerate(customers):
            progress.report("erasures", done, len(customers))
            if args.dry_run:
                results.append(preview_erasure(store, for_settings(settings), customer, dataset=settings.dataset_name))
                continue
            outcome = erase(
                store,
                for_settings(settings),
                customer,
                actor=service_actor("cli"),
                dataset=settings.dataset_name,
                online=root.behaviour,
            )
            results.append(outcome.summary())
        progress.report("erasures", len(customers), len(customers))
        return results[0] if len(results) == 1 else {"customers": len(results), "erasures": results}
    if len(customers) != 1:
        raise UsageError(f"access answers one customer at a time; {len(customers)} ids were given")
    answer = access(
        store, for_settings(settings), customers[0], actor=service_actor("cli"), dataset=settings.dataset_name
    )
    out = Path(args.out)
    html = out.with_suffix(".html")
    _write_private(out, json.dumps(answer.as_json(), indent=1, default=str))
    _write_private(html, answer.as_html())
    return {**answer.summary(), "json": str(out), "html": str(html)}


def _customer_ids(args: argparse.Namespace) -> list[str]:
    """The customer ids of a gdpr command: ``--customer``, or one a line from ``--customers-file`` (``-``: stdin;
    blank lines and ``#`` comments skipped, repeats once)."""
    if args.customer is not None:
        ids = [args.customer.strip()]
        source = "--customer"
    else:
        source = "stdin" if args.customers_file == "-" else args.customers_file
        try:
            text = sys.stdin.read() if args.customers_file == "-" else Path(args.customers_file).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--customers-file {source}: {getattr(exc, 'strerror', None) or exc}") from None
        ids = [line.strip() for line in text.splitlines()]
    ids = list(dict.fromkeys(i for i in ids if i and not i.startswith("#")))
    if not ids:
        raise UsageError(f"no customer id in {source}")
    return ids


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (mode 0600, also when the file was there before)."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def cmd_audit(args: argparse.Namespace) -> Summary:
    """Verify the audit chain (every line's hash and link; the first broken link is named, exit 1), or write the
    month's audit report."""
    import dataclasses

    from shared.adapters.audit import AuditLog

    root = services()
    store, settings = root.blob_store, root.settings
    if args.audit_command == "reconcile":
        line = root.model_store.reconcile_audit()
        return {"recorded": None if line is None else {"act": line.act, "seq": line.seq, **line.details}}
    if args.audit_command == "report":
        from shared.domain import layout
        from shared.governance.report import audit_report, month_bounds

        try:
            month_bounds(args.month)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        monthly = audit_report(store, settings.governance, args.month)
        return {
            "month": args.month,
            "predictions": monthly.predictions["total"],
            "model_changes": len(monthly.model_changes),
            "data_subject_requests": len(monthly.data_subject_requests),
            "key_changes": len(monthly.key_changes),
            "audit_chain_intact": monthly.audit_chain["intact"],
            "report": layout.display(layout.REPORTS, layout.audit_report(args.month, "html")),
        }
    report = AuditLog(store).verify()
    summary = {
        "intact": report.intact,
        "signed_lines_checked": report.signed,
        "lines": report.lines,
        "head_seq": report.head_seq,
        "head_hash": report.head_hash,
        "broken": dataclasses.asdict(report.broken) if report.broken else None,
        "breaks": [dataclasses.asdict(b) for b in report.breaks],
    }
    if report.broken is not None:
        b = report.broken
        raise CommandFailed(
            f"the audit chain is broken at {b.part} line {b.line} (seq {b.seq}): {b.reason}", summary=summary
        )
    return summary


def add_models(sub: SubParsers) -> None:
    md = sub.add_parser("models", help="the model registry: list, show, promote, rollback, deprecate (audited)")
    md_sub = md.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    md_sub.add_parser("list", help="every version, newest first, with the champion and the deprecated marked")
    ms = md_sub.add_parser("show", help="one version: metrics, deprecation, promotion history")
    ms.add_argument("version", help="the model version, as 'models list' names it")
    mp = md_sub.add_parser("promote", help="make a published version the champion")
    mp.add_argument("version", help="the published version to serve")
    mr = md_sub.add_parser("rollback", help="move the champion back to an earlier version (default: the previous)")
    mr.add_argument("--to", help="the earlier version (default: the champion before the current one)")
    mdp = md_sub.add_parser("deprecate", help="a version that may no longer be promoted or pinned")
    mdp.add_argument("version", help="the version to retire (not the champion)")
    for command in (mp, mr, mdp):
        command.add_argument("--reason", required=True, help="why, in words: it goes into the audit chain")
    md.set_defaults(func=cmd_models)


CUSTOMER_HELP = (
    "the customer id as the bank knows it (never stored). It lands in the shell's history and in the process "
    "list: prefer --customers-file"
)
CUSTOMERS_FILE_HELP = "a file of customer ids, one a line ('-': read them from stdin); blank and # lines skipped"


def _customer_source(parser: argparse.ArgumentParser, *, many: bool) -> None:
    ids = parser.add_mutually_exclusive_group(required=True)
    ids.add_argument("--customer", help=CUSTOMER_HELP)
    ids.add_argument(
        "--customers-file",
        metavar="PATH",
        help=CUSTOMERS_FILE_HELP + ("; each id is erased in turn" if many else "; exactly one id"),
    )


def add_gdpr(sub: SubParsers) -> None:
    gd = sub.add_parser("gdpr", help="data-subject rights: access to, and erasure of, a customer's records")
    gd_sub = gd.add_subparsers(dest="gdpr_command", required=True, metavar="ACTION")
    ga = gd_sub.add_parser("access", help="every record about a customer, as JSON and HTML (audited)")
    _customer_source(ga, many=False)
    ga.add_argument(
        "--out",
        default="gdpr-access.json",
        help="where the JSON answer goes, created readable by you only (mode 0600); the HTML beside it, "
        "default: gdpr-access.json",
    )
    ge = gd_sub.add_parser(
        "erase", help="remove every record about a customer and keep them out (audited); --dry-run changes nothing"
    )
    _customer_source(ge, many=True)
    ge.add_argument(
        "--dry-run",
        action="store_true",
        help="say what would be erased (records, places, landed files) and change nothing: no request, no audit line",
    )
    gd_sub.add_parser(
        "resume", help="finish every erasure asked for and not done (the daily monitor does this too; audited)"
    )
    gd.set_defaults(func=cmd_gdpr)


def add_audit(sub: SubParsers) -> None:
    au = sub.add_parser("audit", help="the audit chain: verify it, reconcile it, or write the month's report")
    au_sub = au.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    au_sub.add_parser("verify", help="check every line's hash and link; name the first broken one (exit 1)")
    au_sub.add_parser(
        "reconcile",
        help="write the champion move's audit line if the chain could not take it then (the monitor does too)",
    )
    ar = au_sub.add_parser("report", help="the month's audit report (reports/audit/<YYYY-MM>.json and .html)")
    ar.add_argument("--month", required=True, help="the month, YYYY-MM (exit 2 when it is not one)")
    au.set_defaults(func=cmd_audit)
