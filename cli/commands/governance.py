"""The governance commands: the model registry (list, show, promote, roll back, deprecate), the data subjects'
rights (access, erasure) and the audit chain (verify, monthly report); every change and access is audited."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from cli.commands.command import CommandError, Summary, emit, services

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
    erasure (every record removed, and kept out from now on)."""
    from shared.adapters.audit import service_actor
    from shared.domain.pseudonym import for_settings
    from shared.governance.gdpr import access, erase, resume_erasures

    root = services()
    store, settings = root.blob_store, root.settings
    if args.gdpr_command == "resume":
        outcomes = resume_erasures(
            store,
            for_settings(settings),
            actor=service_actor("cli"),
            dataset=settings.dataset_name,
            online=root.behaviour,
        )
        from shared.adapters.erasures import requested

        return {"finished": [o.summary() for o in outcomes], "still_pending": requested(store)}
    if args.gdpr_command == "erase":
        outcome = erase(
            store,
            for_settings(settings),
            args.customer,
            actor=service_actor("cli"),
            dataset=settings.dataset_name,
            online=root.behaviour,
        )
        return outcome.summary()
    answer = access(
        store, for_settings(settings), args.customer, actor=service_actor("cli"), dataset=settings.dataset_name
    )
    out = Path(args.out)
    out.write_text(json.dumps(answer.as_json(), indent=1, default=str))
    out.with_suffix(".html").write_text(answer.as_html())
    return {**answer.summary(), "json": str(out), "html": str(out.with_suffix(".html"))}


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
            raise CommandError(str(exc), code=2) from None
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
        emit(summary)
        b = report.broken
        raise CommandError(f"the audit chain is broken at {b.part} line {b.line} (seq {b.seq}): {b.reason}")
    return summary


def add_models(sub: SubParsers) -> None:
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


def add_gdpr(sub: SubParsers) -> None:
    gd = sub.add_parser("gdpr", help="data-subject rights: access to, and erasure of, one customer's records")
    gd_sub = gd.add_subparsers(dest="gdpr_command", required=True)
    ga = gd_sub.add_parser("access", help="every record about a customer, as JSON and HTML (audited)")
    ga.add_argument("--customer", required=True, help="the customer id as the bank knows it (never stored)")
    ga.add_argument("--out", default="gdpr-access.json", help="where the JSON goes (the HTML beside it)")
    ge = gd_sub.add_parser("erase", help="remove every record about a customer and keep them out (audited)")
    ge.add_argument("--customer", required=True, help="the customer id as the bank knows it (never stored)")
    gd_sub.add_parser(
        "resume", help="finish every erasure asked for and not done (the daily monitor does this too; audited)"
    )
    gd.set_defaults(func=cmd_gdpr)


def add_audit(sub: SubParsers) -> None:
    au = sub.add_parser("audit", help="the audit chain")
    au_sub = au.add_subparsers(dest="audit_command", required=True)
    au_sub.add_parser("verify", help="check every line's hash and link; name the first broken one")
    au_sub.add_parser(
        "reconcile",
        help="write the champion move's audit line if the chain could not take it then (the monitor does too)",
    )
    ar = au_sub.add_parser("report", help="the month's audit report (reports/audit/<YYYY-MM>.json and .html)")
    ar.add_argument("--month", required=True, help="YYYY-MM")
    au.set_defaults(func=cmd_audit)
