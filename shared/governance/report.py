"""The monthly audit report (``fraudops audit report --month YYYY-MM``): what the system did in a month, for a
bank's compliance people, from the records it already keeps.

* predictions per day and model version (the HTTP records and the stream's archive, each transaction once);
* promotions, rollbacks and deprecations, with who and why (the audit chain);
* access and erasure requests, with how many records and how long each took (the audit chain);
* bank key changes (the audit chain);
* retrain outcomes and federated round transitions, counted (the audit chain);
* realised performance per model version where labels have arrived (the monitoring join);
* whether the audit chain is intact, and its head;
* how many erasures were asked for and are not finished (``fraudops gdpr resume`` finishes them).

Written to ``reports/audit/<YYYY-MM>.json`` and ``.html``; it holds no customer id, clear or pseudonymised.
"""

from __future__ import annotations

import calendar
import html
from collections import Counter
from dataclasses import asdict
from datetime import date
from typing import Any

from shared.adapters import documents
from shared.adapters.audit import AuditLog
from shared.adapters.storage import BlobStore
from shared.domain import layout
from shared.domain.config import GovernanceConfig
from shared.domain.documents.governance import AuditLine, AuditReport

MOVES = ("promotion", "rollback", "deprecation")
REQUESTS = ("access_request", "erasure_request")
KEYS = ("key_added", "key_revoked")


def month_bounds(month: str) -> tuple[date, date]:
    """First and last day of ``YYYY-MM``; ``ValueError`` with the reason otherwise."""
    try:
        year, number = (int(p) for p in month.split("-"))
        first = date(year, number, 1)
    except ValueError:
        raise ValueError(f"month {month!r} is not YYYY-MM") from None
    return first, date(year, number, calendar.monthrange(year, number)[1])


def audit_report(store: BlobStore, config: GovernanceConfig, month: str) -> AuditReport:
    """Build the month's report, write it as JSON and HTML under ``reports/audit/``, return it."""
    from shared.adapters.erasures import requested
    from shared.monitoring.realised import realised
    from shared.monitoring.served import join_labels, load_labels, load_served

    first, last = month_bounds(month)
    log = AuditLog(store)
    entries = [e for e in log.entries() if e.at[:7] == month]
    served = load_served(store, first, last)
    days = [str(v)[:10] for v in served.column("scored_at").to_pylist()]
    versions = served.column("model_version").to_pylist()
    per_day = Counter(zip(days, versions, strict=True))
    figures = realised(served, join_labels(served, load_labels(store)), cost_fn=config.cost_fn, cost_fp=config.cost_fp)
    chain = log.verify()
    outcomes = Counter(e.details.get("outcome") for e in entries if e.act == "retrain_outcome")
    report = AuditReport(
        month=month,
        predictions={
            "total": served.num_rows,
            "per_day_and_version": [
                {"day": d, "model_version": v, "predictions": n} for (d, v), n in sorted(per_day.items())
            ],
        },
        model_changes=[_act(e) for e in entries if e.act in MOVES],
        data_subject_requests=[
            {**_act(e), "records": e.details.get("records"), "seconds": e.details.get("seconds")}
            for e in entries
            if e.act in REQUESTS
        ],
        key_changes=[{**_act(e), "bank": e.details.get("bank")} for e in entries if e.act in KEYS],
        retrains={"null" if k is None else str(k): n for k, n in outcomes.items()},  # as json.dumps wrote None
        round_transitions=sum(e.act == "round_transition" for e in entries),
        realised=[asdict(r) for r in figures if r.labelled],  # per model version and day, then the total
        audit_chain={
            "intact": chain.intact,
            "lines": chain.lines,
            "head_seq": chain.head_seq,
            "head_hash": chain.head_hash,
            "broken": asdict(chain.broken) if chain.broken else None,
        },
        erasures_pending=len(requested(store)),
    )
    documents.write(store, layout.REPORTS, layout.audit_report(month), report)
    store.put_bytes(
        layout.REPORTS,
        layout.audit_report(month, "html"),
        _html(report).encode(),
        content_type="text/html; charset=utf-8",
    )
    return report


def _act(entry: AuditLine) -> dict[str, Any]:
    details = entry.details or {}
    return {
        "at": entry.at,
        "act": entry.act,
        "actor": entry.who,
        "reason": entry.reason,
        **{k: details[k] for k in ("model", "version", "previous") if k in details},
    }


def _html(report: AuditReport) -> str:
    from shared.domain.pages import STYLE

    esc = html.escape

    def table(rows: list[dict[str, Any]]) -> str:
        if not rows:
            return "<p>None.</p>"
        columns = list(dict.fromkeys(k for r in rows for k in r))
        head = "".join(f"<th>{esc(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{esc(str(r.get(c, '')))}</td>" for c in columns) + "</tr>" for r in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    chain = report.audit_chain
    verdict = "intact" if chain["intact"] else f"BROKEN: {chain['broken']}"
    sections = [
        f"<h1>Audit report {esc(report.month)}</h1>",
        f"<p>Audit chain: {esc(verdict)} ({chain['lines']} lines, head {esc(str(chain['head_seq']))} "
        f"{esc(chain['head_hash'][:16])}...).</p>",
        f"<h2>Predictions ({report.predictions['total']})</h2>",
        table(report.predictions["per_day_and_version"]),
        "<h2>Promotions, rollbacks and deprecations</h2>",
        table(report.model_changes),
        "<h2>Access and erasure requests</h2>",
        table(report.data_subject_requests),
        f"<p>{report.erasures_pending} erasures asked for and not finished when this report was written"
        f"{' (fraudops gdpr resume finishes them)' if report.erasures_pending else ''}.</p>",
        "<h2>Bank key changes</h2>",
        table(report.key_changes),
        "<h2>Retrains and federated rounds</h2>",
        table([{"outcome": k, "runs": v} for k, v in report.retrains.items()]),
        f"<p>{report.round_transitions} federated round transitions.</p>",
        "<h2>Realised performance (labelled predictions)</h2>",
        table(report.realised),
    ]
    head = f'<meta charset="utf-8"><title>Audit report {esc(report.month)}</title>{STYLE}'
    return f"<!doctype html><html><head>{head}</head><body>{''.join(sections)}</body></html>"
