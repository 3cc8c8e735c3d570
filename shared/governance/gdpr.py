"""The right of access: every record about one customer, wherever the system keeps it.

The request names the customer by the id the bank knows; ``shared.domain.pseudonym`` turns it into the
pseudonym every stored record carries (the clear id is never stored, so it is never searched for). Then:

* Parquet (``curated/`` training parts, ``predictions/`` HTTP records, ``scored/`` stream records): the
  rows whose ``customer_id`` is the pseudonym, all their columns;
* line files (``alerts/`` JSON lines, ``deadletter/`` dead letters, ``quarantine/`` refused rows): the
  lines holding the pseudonym;
* labels (``curated/labels/``): the verdicts about the transactions found above (a label carries the
  transaction id, not the customer).

The answer is returned to whoever asked (JSON, and a readable HTML page), never stored: it is a copy of
personal data. The request itself is a line of the audit chain with the pseudonym (not the clear id), how
many records were found and how long the search took. It reads every blob of those containers: what it
costs grows with the data kept (see the retention table); an index by pseudonym is the next step.
"""

from __future__ import annotations

import html
import io
import json
import time
from dataclasses import dataclass, field
from typing import Any

from shared.adapters.audit import AuditLog
from shared.adapters.storage import BlobStore
from shared.domain.audit import Act
from shared.domain.contract import CUSTOMER_ID
from shared.domain.pseudonym import Pseudonymiser

PARQUET_CONTAINERS = ("curated", "predictions", "scored")
LINE_CONTAINERS = ("alerts", "deadletter", "quarantine")
LABELS_PREFIX = "labels/"


@dataclass
class AccessAnswer:
    """Every record found, by where it is kept."""

    pseudonym: str
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # "container/blob" -> records
    seconds: float = 0.0

    @property
    def count(self) -> int:
        return sum(len(r) for r in self.records.values())

    def summary(self) -> dict[str, Any]:
        return {
            "customer_pseudonym": self.pseudonym,
            "records": self.count,
            "where": {name: len(rows) for name, rows in sorted(self.records.items())},
            "seconds": round(self.seconds, 3),
        }

    def as_json(self) -> dict[str, Any]:
        return {**self.summary(), "found": self.records}

    def as_html(self) -> str:
        from shared.domain.pages import STYLE

        esc = html.escape
        parts = [
            f"<h1>Records about customer {esc(self.pseudonym)}</h1>",
            f"<p>{self.count} records in {len(self.records)} places (the customer id is stored only as this "
            "pseudonym).</p>",
        ]
        for name, rows in sorted(self.records.items()):
            columns = sorted({k for r in rows for k in r})
            head = "".join(f"<th>{esc(c)}</th>" for c in columns)
            body = "".join(
                "<tr>" + "".join(f"<td>{esc(str(r.get(c, '')))}</td>" for c in columns) + "</tr>" for r in rows
            )
            parts.append(f"<h2>{esc(name)}</h2><table><tr>{head}</tr>{body}</table>")
        head = f'<meta charset="utf-8"><title>Right of access: {esc(self.pseudonym)}</title>{STYLE}'
        return f"<!doctype html><html><head>{head}</head><body>{''.join(parts)}</body></html>"


def access(store: BlobStore, pseudonymise: Pseudonymiser, customer_id: str, *, actor: str) -> AccessAnswer:
    """Every record about ``customer_id`` (as the bank knows it); the request is audited."""
    started = time.perf_counter()
    pseudonym = pseudonymise(customer_id)
    if not pseudonym:
        raise ValueError("a customer id is needed")
    answer = AccessAnswer(pseudonym)
    transactions: set[str] = set()
    for container in PARQUET_CONTAINERS:
        for name in store.list_names(container):
            if not name.endswith(".parquet") or (container == "curated" and name.startswith(LABELS_PREFIX)):
                continue
            rows = _parquet_rows(store, container, name, pseudonym)
            if rows:
                answer.records[f"{container}/{name}"] = rows
                transactions.update(str(r["transaction_id"]) for r in rows if r.get("transaction_id"))
    for container in LINE_CONTAINERS:
        for name in store.list_names(container):
            data = store.get_bytes(container, name)[0]
            if pseudonym.encode() not in data:
                continue
            lines = [line for line in data.decode("utf-8", "replace").splitlines() if pseudonym in line]
            answer.records[f"{container}/{name}"] = [_line_record(line) for line in lines]
            for record in answer.records[f"{container}/{name}"]:
                if record.get("transaction_id"):
                    transactions.add(str(record["transaction_id"]))
    if transactions:
        for name in store.list_names("curated", LABELS_PREFIX):
            rows = _parquet_rows(store, "curated", name, None, transactions)
            if rows:
                answer.records[f"curated/{name}"] = rows
    answer.seconds = time.perf_counter() - started
    AuditLog(store).record(
        Act(
            "access_request",
            actor,
            "right of access (GDPR article 15)",
            {
                "customer": pseudonym,
                "records": answer.count,
                "places": len(answer.records),
                "seconds": round(answer.seconds, 3),
            },
        )
    )
    return answer


def _parquet_rows(
    store: BlobStore, container: str, name: str, pseudonym: str | None, transactions: set[str] | None = None
) -> list[dict[str, Any]]:
    """The rows of one Parquet blob about the customer (by pseudonym, or by transaction id for labels)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    data = store.get_bytes(container, name)[0]
    source = pq.ParquetFile(io.BytesIO(data))
    columns = source.schema_arrow.names
    key = CUSTOMER_ID if pseudonym is not None else "transaction_id"
    if key not in columns:
        return []
    table = source.read()
    if pseudonym is not None:
        keep = pc.equal(table.column(key), pseudonym)
    else:
        keep = pc.is_in(
            table.column(key).cast("string"), value_set=__import__("pyarrow").array(sorted(transactions or ()))
        )
    found = table.filter(pc.fill_null(keep, False))
    return [{k: _plain(v) for k, v in row.items()} for row in found.to_pylist()]


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _line_record(line: str) -> dict[str, Any]:
    try:
        doc = json.loads(line)
    except ValueError:
        return {"line": line}
    return doc if isinstance(doc, dict) else {"line": line}
