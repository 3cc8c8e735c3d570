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
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.adapters.audit import AuditLog
from shared.adapters.storage import BlobStore
from shared.domain import layout
from shared.domain.audit import Act, Actor
from shared.domain.contract import DatasetContract
from shared.domain.contracts import get_contract
from shared.domain.documents.governance import ErasureDone, ErasurePlan
from shared.domain.errors import BlobNotFoundError, NoCustomerColumnError, RetryLaterError
from shared.domain.progress import report
from shared.domain.pseudonym import Pseudonymiser

if TYPE_CHECKING:
    from shared.scoring.online import OnlineFeatures

log = logging.getLogger(__name__)

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
    store: BlobStore, pseudonymise: Pseudonymiser, customer_id: str, *, actor: str | Actor, dataset: str
) -> AccessAnswer:
    """Every record about ``customer_id`` (as the bank knows it) in ``dataset``'s deployment; audited."""
    started = time.perf_counter()
    pseudonym = pseudonymise(customer_id)
    if not pseudonym:
        raise ValueError("a customer id is needed")
    names = pseudonymise.every(customer_id)  # under the current key and every previous one
    records, transactions = _find(store, names, Keys.of(get_contract(dataset)))
    for (container, name), found in _clear_copies(store, customer_id, transactions).items():
        records[layout.display(container, name)] = found
    answer = AccessAnswer(pseudonym, records)
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


def _find(
    store: BlobStore,
    names: tuple[str, ...],
    keys: Keys,
    seen: set[str] | None = None,
    known: set[str] | None = None,
    tick: Callable[[], None] = lambda: None,
) -> tuple[dict[str, list[dict[str, Any]]], set[str]]:
    """Every record about the customer (under any of its pseudonyms ``names``) by blob (``container/name``), and
    the customer's transaction ids. With ``seen``, Parquet blobs named there are skipped (they are written once,
    under names of their own, so one read before cannot have gained rows) and every Parquet blob read is added."""
    records: dict[str, list[dict[str, Any]]] = {}
    for container in PARQUET_CONTAINERS:
        for name in store.list_names(container):
            if not name.endswith(".parquet") or (container == layout.CURATED and name.startswith(LABELS_PREFIX)):
                continue
            if not _first_look(seen, layout.display(container, name)):
                continue
            tick()  # an erasure renews its claim as it reads
            rows = _parquet_rows(store, container, name, keys, names)
            if rows:
                records[layout.display(container, name)] = rows
    for container in LINE_CONTAINERS:
        for name in store.list_names(container):
            if container == layout.QUARANTINE and layout.is_quarantined_file(name):
                continue  # a whole refused file, as sent: searched by the clear id (``_clear_copies``)
            lines = _lines_holding(store, container, name, names)
            if lines:
                records[layout.display(container, name)] = [_line_record(line) for line in lines]
    transactions = {str(r[k]) for rows in records.values() for r in rows for k in keys.transaction if r.get(k)}
    wanted = transactions | (known or set())  # a re-check looks for the labels of every transaction found before
    if wanted:
        for name in store.list_names(layout.CURATED, LABELS_PREFIX):
            if seen is not None and layout.display(layout.CURATED, name) in seen:
                continue
            rows = _parquet_rows(store, layout.CURATED, name, keys, None, wanted)
            if rows:
                records[layout.display(layout.CURATED, name)] = rows
    return records, transactions


def _first_look(seen: set[str] | None, blob: str) -> bool:
    """Whether ``blob`` is to be read: always without ``seen``; else once (and it is noted as read)."""
    if seen is None:
        return True
    if blob in seen:
        return False
    seen.add(blob)
    return True


def _parquet_rows(
    store: BlobStore,
    container: str,
    name: str,
    keys: Keys,
    names: tuple[str, ...] | None,
    transactions: set[str] | None = None,
) -> list[dict[str, Any]]:
    """The rows of one Parquet blob about the customer (by its pseudonyms, or by transaction id for labels). Read by
    ranges, one row group at a time, its key column first: a large file is never held whole."""
    import pyarrow.compute as pc

    from shared.governance.clear_copies import open_parquet

    try:
        source = open_parquet(store, container, name)
    except BlobNotFoundError:
        return []  # expired or rewritten between the listing and the read
    except (OSError, ValueError) as exc:  # not Parquet after all (pyarrow's errors are both): said, not fatal
        log.error("%s is not readable as Parquet (%s); it is not searched", layout.display(container, name), exc)
        return []
    key = Keys.pick(keys.customer if names is not None else keys.transaction, source.schema_arrow.names)
    if key is None:
        return []
    found: list[dict[str, Any]] = []
    for group in range(source.num_row_groups):
        keep = _matches(source.read_row_group(group, columns=[key]).column(key), names, transactions)
        if pc.any(keep).as_py():
            rows = source.read_row_group(group).filter(keep)
            found.extend({k: _plain(v) for k, v in row.items()} for row in rows.to_pylist())
    return found


def _matches(column: Any, names: tuple[str, ...] | None, transactions: set[str] | None) -> Any:
    """Which values of a key column are the customer's: one of its pseudonyms, or one of its transactions."""
    import pyarrow as pa
    import pyarrow.compute as pc

    wanted = sorted(names) if names is not None else sorted(transactions or ())
    return pc.fill_null(pc.is_in(column.cast(pa.string()), value_set=pa.array(wanted, pa.string())), False)


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _lines_holding(store: BlobStore, container: str, name: str, needles: tuple[str, ...]) -> list[str]:
    """The lines of a line file holding any of ``needles``, read in download chunks (never the whole file)."""
    wanted = [n.encode() for n in needles]
    found: list[str] = []
    carry = b""

    def holds(data: bytes) -> bool:
        return any(w in data for w in wanted)

    try:
        for chunk in store.download_chunks(container, name):
            data = carry + chunk
            cut = data.rfind(b"\n") + 1
            whole, carry = data[:cut], data[cut:]
            if holds(whole):
                found.extend(line.decode("utf-8", "replace") for line in whole.splitlines() if holds(line))
    except BlobNotFoundError:
        return []
    if holds(carry):
        found.append(carry.decode("utf-8", "replace"))
    return found


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


NOT_SEARCHED = (
    "the landing zone (raw/) was not searched: its files hold the clear id, which is never kept, and this "
    "erasure was resumed without it; ask for the erasure again with the customer's id to erase landed copies"
)
RECHECKS = 3  # passes after the first: records that landed while the erasure ran (an ETL that read the list before)


def request_erasure(store: BlobStore, pseudonymise: Pseudonymiser, customer_id: str, *, dataset: str) -> str:
    """Accept an erasure to run in the background: the customer is excluded from now on and the request is
    pending until done (``erase`` runs it; ``resume_erasures`` finishes any left). The pseudonym; the refusals
    ``erase`` would give (no customer column, no id) are raised here, before anything is written."""
    from shared.adapters import erasures

    Keys.of(get_contract(dataset))
    pseudonym = pseudonymise(customer_id)
    if not pseudonym:
        raise ValueError("a customer id is needed")
    erasures.request(store, pseudonym, pseudonymise.every(customer_id))
    return pseudonym


def preview_erasure(store: BlobStore, pseudonymise: Pseudonymiser, customer_id: str, *, dataset: str) -> dict[str, Any]:
    """What :func:`erase` would remove for ``customer_id`` now, changing nothing: no request, no claim, no rewrite,
    no audit line (a dry run reads, as an access does, without recording it). Records that land later, and the
    online store's state, are not counted."""
    keys = Keys.of(get_contract(dataset))
    pseudonym = pseudonymise(customer_id)
    if not pseudonym:
        raise ValueError("a customer id is needed")
    records, transactions = _find(store, pseudonymise.every(customer_id), keys)
    raw, pending, refused = _raw_holding(store, customer_id, transactions)
    return {
        "customer_pseudonym": pseudonym,
        "dry_run": True,
        "records": sum(len(rows) for rows in records.values()),
        "places": {blob: len(rows) for blob, rows in sorted(records.items())},
        "transactions": len(transactions),
        "raw_deleted": [layout.display(layout.RAW, name) for name in raw] + refused,
        "raw_pending": [layout.display(layout.RAW, name) for name in pending],
    }


def erasure_status(store: BlobStore, pseudonym: str) -> dict[str, Any]:
    """Where the erasure of ``pseudonym`` stands: ``requested``, ``started`` or ``done`` (with what it did), or
    ``unknown`` when none was asked for."""
    from shared.adapters import erasures

    marker = erasures.read_marker(store, pseudonym)[0]
    pending = pseudonym in erasures.requested(store)
    if marker is None:
        return {"customer_pseudonym": pseudonym, "status": "requested" if pending else "unknown"}
    doc: dict[str, Any] = {
        "customer_pseudonym": pseudonym,
        "status": "started" if marker.status == "done" and pending else marker.status,
        "started_at": marker.started_at,
    }
    if marker.status == "done":
        doc.update(
            erased_at=marker.erased_at,
            records=marker.records,
            places=marker.places,
            raw_deleted=marker.raw_deleted,
            raw_pending=marker.raw_pending,
        )
    return doc


def erase(
    store: BlobStore,
    pseudonymise: Pseudonymiser,
    customer_id: str | None,
    *,
    actor: str | Actor,
    dataset: str,
    online: OnlineFeatures | None = None,
    pseudonym: str | None = None,
) -> ErasureOutcome:
    """Remove every record about ``customer_id`` wherever it is stored, and keep it out from now on.

    0. The request is recorded (the customer is excluded from every later ETL run at once) and the erasure
       takes the one claim (``ErasureBusyError`` while another erasure runs: they run one at a time, so two
       rewriting the same part cannot each keep the other's customer).
    1. The plan (every blob holding the customer, and the new name each is rewritten under; the
       customer's transactions, whose labels go too) is written to the customer's marker first, so a run
       that crashed resumes the same plan (``resumed``).
    2. Each blob is rewritten without the customer's rows or lines under its new name (create-only: a
       resumed run keeps what it wrote).
    3. The curated parts are swapped in the dataset manifest in one conditional write: a new version.
    4. Only then are the old blobs deleted, so no manifest ever points at a deleted part.
    5. The search runs again: records that landed meanwhile (an ETL run that read the exclusion list just
       before the request) are erased by a new plan, up to ``RECHECKS`` more passes.
    6. The marker keeps the pseudonym and what was done: the exclusion list the ETL and the training window read.
    7. ``raw/``, the landing zone, holds files as the bank sent them, with the clear id: each landed file
       holding the clear id or one of the customer's transactions is deleted once the ETL has processed it
       (its rows live on in ``curated/``, rewritten above); one not processed yet is left and named in
       ``raw_pending``, to erase again after its ETL (deleting it would lose the other customers' rows).
       Resumed by pseudonym alone (``customer_id`` None), the landing zone cannot be searched: said in
       ``raw_pending``.
    8. With ``online`` (a dataset with behavioural features), the online store's state of the customer and of
       every personal entity of the customer's rows (its cards) is deleted (a resumed run deletes the
       customer's own; the rest expire past the longest window).
    9. The audit line is written, then the request is no longer pending; if the line cannot be written, the
       erasure stays pending and a later run records it (the same act id, never twice).
    """
    from shared.adapters import erasures

    started = time.perf_counter()
    contract = get_contract(dataset)
    keys = Keys.of(contract)
    roles = dict(contract.roles.entities) if contract.roles else {}
    personal = tuple(c for c in dict.fromkeys(roles.values()) if c in contract.personal_names)
    entities: dict[str, set[str]] = {}
    pseudonym = pseudonymise(customer_id) if customer_id is not None else pseudonym
    if not pseudonym:
        raise ValueError("a customer id is needed")
    # the customer's pseudonyms under every key; resumed without the id, as the request recorded them
    names = pseudonymise.every(customer_id) if customer_id is not None else erasures.aliases(store, pseudonym)
    erasures.request(store, pseudonym, names)
    seen: set[str] = set()  # the Parquet blobs read for this erasure (a re-check reads only newer ones)
    with erasures.ErasureLockHandle(store, pseudonym) as claim:
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
                refused_files=marker.refused_files,
            )
        else:  # a first request, or a later one (records may have arrived since): plan afresh
            plan, transactions, entities = _plan(store, names, keys, personal, seen, tick=claim.renew)
            raw, pending, refused = (
                _raw_holding(store, customer_id, set(transactions))
                if customer_id is not None
                else ([], [NOT_SEARCHED], [])
            )
            doc = ErasurePlan(
                pseudonym=pseudonym,
                started_at=_now(),
                plan=plan,
                transactions=transactions,
                raw=raw,
                raw_pending=pending,
                refused_files=refused,
            )
            etag = erasures.write_marker(store, pseudonym, doc, etag)
        removed, version = _apply(store, names, doc, dataset, keys, claim.renew)
        for name in doc.raw:  # processed landing copies: their rows are in curated/, rewritten above
            store.delete(layout.RAW, name)
        for blob in doc.refused_files:  # whole refused files: nothing else holds their rows
            store.delete(*blob.split("/", 1))
        places = len(doc.plan)
        seen.update(doc.plan.values())  # the rewrites hold none of the customer's rows
        for _ in range(RECHECKS):  # only Parquet blobs that appeared since are read again (line files all are)
            plan, transactions, more = _plan(store, names, keys, personal, seen, set(doc.transactions), claim.renew)
            if not plan:
                break
            log.warning("erasure of %s: %d places gained records while it ran; erasing them too", pseudonym, len(plan))
            merged = sorted(set(doc.transactions) | set(transactions))
            doc = doc.model_copy(update={"plan": plan, "transactions": merged})
            etag = erasures.write_marker(store, pseudonym, doc, etag)
            count, newer = _apply(store, names, doc, dataset, keys, claim.renew)
            removed, version, places = removed + count, newer or version, places + len(plan)
            for column, found in more.items():
                entities.setdefault(column, set()).update(found)
        states = 0
        if online is not None:
            if contract.customer:
                entities.setdefault(contract.customer, set()).add(pseudonym)
            states = sum(online.erase_keys({column: key}) for column, found in entities.items() for key in found)
        seconds = time.perf_counter() - started
        done = ErasureDone(
            pseudonym=pseudonym,
            started_at=doc.started_at,
            erased_at=_now(),
            records=removed,
            places=places,
            raw_deleted=len(doc.raw) + len(doc.refused_files),
            raw_pending=doc.raw_pending,
        )
        erasures.write_marker(store, pseudonym, done, etag)
    outcome = ErasureOutcome(
        pseudonym,
        removed,
        places,
        version,
        seconds,
        resumed,
        len(doc.raw) + len(doc.refused_files),
        doc.raw_pending,
        states,
    )
    _audit_erasure(store, actor, done, version=version, seconds=seconds, resumed=resumed)
    erasures.finished(store, pseudonym)
    return outcome


def _audit_erasure(
    store: BlobStore, actor: str | Actor, done: ErasureDone | Any, *, version: str | None, seconds: float, resumed: bool
) -> None:
    """The erasure's audit line, under an id fixed by the run (a later try never writes it twice)."""
    import hashlib

    AuditLog(store).record(
        Act(
            "erasure_request",
            actor,
            "right to erasure (GDPR article 17)",
            {
                "customer": done.pseudonym,
                "records": done.records,
                "places": done.places,
                "seconds": round(seconds, 3),
                "dataset_version": version,
                "resumed": resumed,
            },
            id=hashlib.sha256(f"erasure {done.pseudonym} {done.started_at}".encode()).hexdigest()[:32],
        )
    )


def resume_erasures(
    store: BlobStore,
    pseudonymise: Pseudonymiser,
    *,
    actor: str,
    dataset: str,
    online: OnlineFeatures | None = None,
) -> list[ErasureOutcome]:
    """Finish every erasure asked for and not done (a background run the instance lost, a claim that was busy,
    an audit line that could not be written); the outcomes. One still busy stays pending for the next run."""
    from shared.adapters import erasures

    outcomes = []
    for pseudonym in erasures.requested(store):
        try:
            marker = erasures.read_marker(store, pseudonym)[0]
            if marker is not None and marker.status == "done" and not erasures.asked_after(store, pseudonym, marker):
                _audit_once(store, actor, marker)  # done, its audit line perhaps not written: write it once
                erasures.finished(store, pseudonym)
                continue
            outcomes.append(
                erase(store, pseudonymise, None, actor=actor, dataset=dataset, online=online, pseudonym=pseudonym)
            )
        except RetryLaterError as err:
            log.warning("erasure of %s stays pending: %s", pseudonym, err)
        except Exception:  # one erasure that fails must not stop the others behind it, day after day
            log.exception("erasure of %s failed; it stays pending for the next run", pseudonym)
    return outcomes


def _audit_once(store: BlobStore, actor: str | Actor, done: Any) -> None:
    """The finished erasure's audit line, unless the chain holds it already (its act id is fixed by the run)."""
    import hashlib

    act_id = hashlib.sha256(f"erasure {done.pseudonym} {done.started_at}".encode()).hexdigest()[:32]
    month = str(done.erased_at or done.started_at)[:7]
    if not any(line.id == act_id for line in AuditLog(store).entries_since(month)):
        _audit_erasure(store, actor, done, version=None, seconds=0.0, resumed=True)


def _clear_copies(
    store: BlobStore, customer_id: str, transactions: set[str] | list[str]
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The landed and refused files holding the clear id (as given, or canonical) or, for labels files (which name
    no customer), one of the customer's transactions, as a whole field, with the records holding it
    (``shared.governance.clear_copies``). A transactions file's row holds the customer's id beside its
    transaction's, so the id alone finds it: hundreds of transaction ids are matched in labels files only."""
    from shared.domain.pseudonym import canonical
    from shared.governance import clear_copies

    ids = {customer_id, canonical(customer_id)}
    found = {}
    for container, name in clear_copies.clear_names(store):
        labels = name.startswith(layout.RAW_LABELS_PREFIX)  # raw/labels/..., and the labels dataset's refused files
        records = clear_copies.matching(store, container, name, ids | set(transactions) if labels else ids)
        if records:
            found[container, name] = records
    return found


def _raw_holding(store: BlobStore, customer_id: str, transactions: set[str]) -> tuple[list[str], list[str], list[str]]:
    """Copies holding the clear id or one of the transactions: landed files processed and not yet (by name in
    ``raw``), and whole refused files (``quarantine/...``, deleted: their rows are nowhere else)."""
    processed = _processed(store)
    holding: list[str] = []
    pending: list[str] = []
    refused: list[str] = []
    for container, name in _clear_copies(store, customer_id, transactions):
        if container == layout.QUARANTINE:
            refused.append(layout.display(container, name))
        else:
            (holding if layout.display(layout.RAW, name) in processed else pending).append(name)
    return holding, pending, refused


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
    store: BlobStore,
    names: tuple[str, ...],
    keys: Keys,
    personal_entities: tuple[str, ...] = (),
    seen: set[str] | None = None,
    known: set[str] | None = None,
    tick: Callable[[], None] = lambda: None,
) -> tuple[dict[str, str], list[str], dict[str, set[str]]]:
    """Every blob about the customer (any of its pseudonyms ``names``, the current first) with the name it is
    rewritten under, the customer's transactions, and the values (pseudonyms) of the personal entity columns in
    the customer's rows (its cards...)."""
    records, transactions = _find(store, names, keys, seen, known, tick)
    plan = {}
    for blob in records:
        container, name = blob.split("/", 1)
        plan[blob] = layout.display(container, _erased_name(name, names[0]))
    entities = {
        column: {str(r[column]) for rows in records.values() for r in rows if r.get(column) is not None}
        for column in personal_entities
    }
    return plan, sorted(transactions), entities


def _apply(
    store: BlobStore, names: tuple[str, ...], doc: ErasurePlan, dataset: str, keys: Keys, renew: Callable[[], None]
) -> tuple[int, str | None]:
    """Rewrite, swap in the manifest, then delete: idempotent, so a resumed run finishes the same plan. ``renew``
    keeps the claim through a long plan."""
    from shared.domain.errors import BlobExistsError, BlobNotFoundError
    from shared.etl import manifest

    transactions = set(doc.transactions)
    removed = 0
    curated: dict[str, manifest.CuratedFile] = {}
    listed = {f.path: f for f in manifest.read_manifest(store, dataset)[0].files}
    for done, (old, new) in enumerate(doc.plan.items()):
        renew()
        report("erasure places", done, len(doc.plan))
        container, name = old.split("/", 1)
        new_name = new.split("/", 1)[1]
        try:
            data = store.get_bytes(container, name)[0]
        except BlobNotFoundError:
            continue  # deleted by the run that crashed, after its rewrite was committed
        labels = container == layout.CURATED and name.startswith(LABELS_PREFIX)
        kept, count = (
            _without_rows(data, names, keys, transactions if labels else None)
            if name.endswith(".parquet")
            else _without_lines(data, names)
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
    report("erasure places", len(doc.plan), len(doc.plan))
    version = manifest.replace_files(store, dataset, curated) if curated else None
    for old in doc.plan:  # only now: the manifest no longer lists any of them
        container, name = old.split("/", 1)
        store.delete(container, name)
    return removed, version


def _without_rows(data: bytes, names: tuple[str, ...], keys: Keys, transactions: set[str] | None) -> tuple[bytes, int]:
    """The Parquet blob without the customer's rows (by pseudonym, or by transaction for labels), and how many."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    key = Keys.pick(keys.customer if transactions is None else keys.transaction, table.column_names)
    if key is None:
        return data, 0
    wanted = pa.array(sorted(names if transactions is None else transactions), pa.string())
    drop = pc.fill_null(pc.is_in(table.column(key).cast(pa.string()), value_set=wanted), False)
    kept = table.filter(pc.invert(drop))
    out = io.BytesIO()
    pq.write_table(kept, out)
    return out.getvalue(), table.num_rows - kept.num_rows


def _without_lines(data: bytes, names: tuple[str, ...]) -> tuple[bytes, int]:
    wanted = [n.encode() for n in names]
    lines = data.splitlines(keepends=True)
    kept = [line for line in lines if not any(w in line for w in wanted)]
    return b"".join(kept), len(lines) - len(kept)
