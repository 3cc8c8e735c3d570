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
from typing import TYPE_CHECKING, Any

from shared.adapters.audit import AuditLog
from shared.adapters.storage import BlobStore
from shared.domain import layout
from shared.domain.audit import Act
from shared.domain.contract import DatasetContract
from shared.domain.contracts import get_contract
from shared.domain.documents.governance import ErasureDone, ErasurePlan
from shared.domain.errors import NoCustomerColumnError
from shared.domain.pseudonym import Pseudonymiser

if TYPE_CHECKING:
    from shared.scoring.online import OnlineFeatures

PARQUET_CONTAINERS = (layout.CURATED, layout.PREDICTIONS, layout.SCORED)
LINE_CONTAINERS = (layout.ALERTS, layout.DEADLETTER, layout.QUARANTINE)
LABELS_PREFIX = layout.LABELS_PREFIX


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


@dataclass(frozen=True)
class Keys:
    """The columns naming the customer and the transaction: the records' own names, then the dataset's."""

    customer: tuple[str, ...]
    transaction: tuple[str, ...]

    @classmethod
    def of(cls, contract: DatasetContract) -> Keys:
        """The keys of ``contract``'s records; ``NoCustomerColumnError`` when it names no customer to look for."""
        if not contract.customer:
            raise NoCustomerColumnError(
                f"dataset {contract.name} declares no customer column (roles.entities.customer in its contract), "
                "so none of its records is kept by customer id: there is nothing to find or erase by one. A bank "
                "whose export carries the customer's or applicant's id declares it as a personal string column and "
                "as the customer entity; access and erasure then find it"
            )
        return cls(
            customer=tuple(dict.fromkeys(["customer_id", *([contract.customer] if contract.customer else [])])),
            transaction=tuple(
                dict.fromkeys(["transaction_id", *([contract.transaction_id] if contract.transaction_id else [])])
            ),
        )

    @staticmethod
    def pick(names: tuple[str, ...], columns: list[str]) -> str | None:
        return next((n for n in names if n in columns), None)


def access(
    store: BlobStore, pseudonymise: Pseudonymiser, customer_id: str, *, actor: str, dataset: str
) -> AccessAnswer:
    """Every record about ``customer_id`` (as the bank knows it) in ``dataset``'s deployment; audited."""
    started = time.perf_counter()
    pseudonym = pseudonymise(customer_id)
    if not pseudonym:
        raise ValueError("a customer id is needed")
    answer = AccessAnswer(pseudonym, _find(store, pseudonym, Keys.of(get_contract(dataset)))[0])
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


def _find(store: BlobStore, pseudonym: str, keys: Keys) -> tuple[dict[str, list[dict[str, Any]]], set[str]]:
    """Every record about the customer by blob (``container/name``), and the customer's transaction ids."""
    records: dict[str, list[dict[str, Any]]] = {}
    for container in PARQUET_CONTAINERS:
        for name in store.list_names(container):
            if not name.endswith(".parquet") or (container == layout.CURATED and name.startswith(LABELS_PREFIX)):
                continue
            rows = _parquet_rows(store, container, name, keys, pseudonym)
            if rows:
                records[layout.display(container, name)] = rows
    for container in LINE_CONTAINERS:
        for name in store.list_names(container):
            data = store.get_bytes(container, name)[0]
            if pseudonym.encode() in data:
                lines = data.decode("utf-8", "replace").splitlines()
                records[layout.display(container, name)] = [_line_record(line) for line in lines if pseudonym in line]
    transactions = {str(r[k]) for rows in records.values() for r in rows for k in keys.transaction if r.get(k)}
    if transactions:
        for name in store.list_names(layout.CURATED, LABELS_PREFIX):
            rows = _parquet_rows(store, layout.CURATED, name, keys, None, transactions)
            if rows:
                records[layout.display(layout.CURATED, name)] = rows
    return records, transactions


def _parquet_rows(
    store: BlobStore,
    container: str,
    name: str,
    keys: Keys,
    pseudonym: str | None,
    transactions: set[str] | None = None,
) -> list[dict[str, Any]]:
    """The rows of one Parquet blob about the customer (by pseudonym, or by transaction id for labels)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    data = store.get_bytes(container, name)[0]
    source = pq.ParquetFile(io.BytesIO(data))
    columns = source.schema_arrow.names
    key = Keys.pick(keys.customer if pseudonym is not None else keys.transaction, columns)
    if key is None:
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


# ---- the right to erasure ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasureOutcome:
    pseudonym: str
    records_removed: int
    places: int
    dataset_version: str | None
    seconds: float
    resumed: bool
    raw_deleted: int = 0
    raw_pending: list[str] = field(default_factory=list)
    online_states_removed: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "customer_pseudonym": self.pseudonym,
            "records": self.records_removed,
            "places": self.places,
            "dataset_version": self.dataset_version,
            "seconds": round(self.seconds, 3),
            "resumed": self.resumed,
            "raw_deleted": self.raw_deleted,
            "raw_pending": self.raw_pending,
            "online_states_removed": self.online_states_removed,
        }


def erase(
    store: BlobStore,
    pseudonymise: Pseudonymiser,
    customer_id: str,
    *,
    actor: str,
    dataset: str,
    online: OnlineFeatures | None = None,
) -> ErasureOutcome:
    """Remove every record about ``customer_id`` wherever it is stored, and keep it out from now on.

    1. The plan (every blob holding the customer, and the new name each is rewritten under; the
       customer's transactions, whose labels go too) is written to the customer's marker first, so a run
       that crashed resumes the same plan (``resumed``).
    2. Each blob is rewritten without the customer's rows or lines under its new name (create-only: a
       resumed run keeps what it wrote).
    3. The curated parts are swapped in the dataset manifest in one conditional write: a new version.
    4. Only then are the old blobs deleted, so no manifest ever points at a deleted part.
    5. The marker keeps the pseudonym alone: the exclusion list the ETL and the training window read.
    6. ``raw/``, the landing zone, holds files as the bank sent them, with the clear id: each landed file
       holding the clear id or one of the customer's transactions is deleted once the ETL has processed it
       (its rows live on in ``curated/``, rewritten above); one not processed yet is left and named in
       ``raw_pending``, to erase again after its ETL (deleting it would lose the other customers' rows).
    7. With ``online`` (a dataset with behavioural features), the online store's state of the customer and of
       every personal entity of the customer's rows (its cards) is deleted (a resumed run deletes the
       customer's own; the rest expire past the longest window).
    """
    from shared.adapters import erasures

    started = time.perf_counter()
    contract = get_contract(dataset)
    keys = Keys.of(contract)
    roles = dict(contract.roles.entities) if contract.roles else {}
    personal = tuple(c for c in dict.fromkeys(roles.values()) if c in contract.personal_names)
    entities: dict[str, set[str]] = {}
    pseudonym = pseudonymise(customer_id)
    if not pseudonym:
        raise ValueError("a customer id is needed")
    marker, etag = erasures.read_marker(store, pseudonym)
    resumed = marker is not None and marker.status == "started"
    if marker is not None and resumed:
        doc = ErasurePlan(
            pseudonym=pseudonym,
            started_at=marker.started_at,
            plan=marker.plan,
            transactions=marker.transactions,
            raw=marker.raw,
            raw_pending=marker.raw_pending,
        )
    else:  # a first request, or a later one (records may have arrived since): plan afresh
        plan, transactions, entities = _plan(store, pseudonym, keys, personal)
        raw, pending = _raw_holding(store, customer_id, set(transactions))
        doc = ErasurePlan(
            pseudonym=pseudonym,
            started_at=_now(),
            plan=plan,
            transactions=transactions,
            raw=raw,
            raw_pending=pending,
        )
        etag = erasures.write_marker(store, pseudonym, doc, etag)
    removed, version = _apply(store, pseudonym, doc, dataset, keys)
    for name in doc.raw:  # processed landing copies: their rows are in curated/, rewritten above
        store.delete(layout.RAW, name)
    states = 0
    if online is not None:
        if contract.customer:
            entities.setdefault(contract.customer, set()).add(pseudonym)
        states = sum(online.erase_keys({column: key}) for column, found in entities.items() for key in found)
    seconds = time.perf_counter() - started
    done = ErasureDone(pseudonym=pseudonym, started_at=doc.started_at, erased_at=_now())
    erasures.write_marker(store, pseudonym, done, etag)
    outcome = ErasureOutcome(
        pseudonym,
        removed,
        len(doc.plan),
        version,
        seconds,
        resumed,
        len(doc.raw),
        doc.raw_pending,
        states,
    )
    AuditLog(store).record(
        Act(
            "erasure_request",
            actor,
            "right to erasure (GDPR article 17)",
            {
                "customer": pseudonym,
                "records": removed,
                "places": len(doc.plan),
                "seconds": round(seconds, 3),
                "dataset_version": version,
                "resumed": resumed,
            },
        )
    )
    return outcome


def _raw_holding(store: BlobStore, customer_id: str, transactions: set[str]) -> tuple[list[str], list[str]]:
    """Landed files holding the clear id (as a whole field) or one of the transactions: processed, and not yet."""
    import re

    processed = _processed(store)
    needles = [customer_id, *sorted(transactions)]
    field_of = re.compile(
        rb"(?:^|[,;\t\"])(?:" + b"|".join(re.escape(n.encode()) for n in needles) + rb")(?:$|[,;\t\"\r\n])", re.M
    )
    holding: list[str] = []
    pending: list[str] = []
    for name in store.list_names(layout.RAW):
        if field_of.search(store.get_bytes(layout.RAW, name)[0]):
            (holding if layout.display(layout.RAW, name) in processed else pending).append(name)
    return holding, pending


def _processed(store: BlobStore) -> set[str]:
    """The landed files (``raw/<name>``) the ETL has handled, as its typed home lists them."""
    from shared.etl.reports import processed_files

    return {report.source for report in processed_files(store)}


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


def _erased_name(name: str, pseudonym: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return f"{stem}-erased-{pseudonym.removeprefix('cust_')[:12]}.{ext}" if dot else f"{name}-erased"


def _plan(
    store: BlobStore, pseudonym: str, keys: Keys, personal_entities: tuple[str, ...] = ()
) -> tuple[dict[str, str], list[str], dict[str, set[str]]]:
    """Every blob about the customer with the name it is rewritten under, the customer's transactions, and the
    values (pseudonyms) of the personal entity columns in the customer's rows (its cards...)."""
    records, transactions = _find(store, pseudonym, keys)
    plan = {}
    for blob in records:
        container, name = blob.split("/", 1)
        plan[blob] = layout.display(container, _erased_name(name, pseudonym))
    entities = {
        column: {str(r[column]) for rows in records.values() for r in rows if r.get(column) is not None}
        for column in personal_entities
    }
    return plan, sorted(transactions), entities


def _apply(store: BlobStore, pseudonym: str, doc: ErasurePlan, dataset: str, keys: Keys) -> tuple[int, str | None]:
    """Rewrite, swap in the manifest, then delete: idempotent, so a resumed run finishes the same plan."""
    from shared.domain.errors import BlobExistsError, BlobNotFoundError
    from shared.etl import manifest

    transactions = set(doc.transactions)
    removed = 0
    curated: dict[str, manifest.CuratedFile] = {}
    listed = {f.path: f for f in manifest.read_manifest(store, dataset)[0].files}
    for old, new in doc.plan.items():
        container, name = old.split("/", 1)
        new_name = new.split("/", 1)[1]
        try:
            data = store.get_bytes(container, name)[0]
        except BlobNotFoundError:
            continue  # deleted by the run that crashed, after its rewrite was committed
        labels = container == layout.CURATED and name.startswith(LABELS_PREFIX)
        kept, count = (
            _without_rows(data, pseudonym, keys, transactions if labels else None)
            if name.endswith(".parquet")
            else _without_lines(data, pseudonym)
        )
        removed += count
        try:
            store.put_bytes(container, new_name, kept, overwrite=False)
        except BlobExistsError:
            kept = store.get_bytes(container, new_name)[0]  # written by the run that crashed: the same bytes
        if container == layout.CURATED and name in listed:
            import hashlib

            entry = listed[name]
            curated[name] = manifest.CuratedFile(
                path=new_name,
                rows=entry.rows - count,
                bytes=len(kept),
                sha256=hashlib.sha256(kept).hexdigest(),
                source_blob=entry.source_blob,
                source_etag=entry.source_etag,
                ingested_at=entry.ingested_at,
            )
    version = manifest.replace_files(store, dataset, curated) if curated else None
    for old in doc.plan:  # only now: the manifest no longer lists any of them
        container, name = old.split("/", 1)
        store.delete(container, name)
    return removed, version


def _without_rows(data: bytes, pseudonym: str, keys: Keys, transactions: set[str] | None) -> tuple[bytes, int]:
    """The Parquet blob without the customer's rows (by pseudonym, or by transaction for labels), and how many."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    key = Keys.pick(keys.customer if transactions is None else keys.transaction, table.column_names)
    if key is None:
        return data, 0
    if transactions is None:
        drop = pc.fill_null(pc.equal(table.column(key), pseudonym), False)
    else:
        wanted = pa.array(sorted(transactions), pa.string())
        drop = pc.fill_null(pc.is_in(table.column(key).cast(pa.string()), value_set=wanted), False)
    kept = table.filter(pc.invert(drop))
    out = io.BytesIO()
    pq.write_table(kept, out)
    return out.getvalue(), table.num_rows - kept.num_rows


def _without_lines(data: bytes, pseudonym: str) -> tuple[bytes, int]:
    lines = data.splitlines(keepends=True)
    kept = [line for line in lines if pseudonym.encode() not in line]
    return b"".join(kept), len(lines) - len(kept)
