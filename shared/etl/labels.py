"""Delayed labels landing in ``raw/labels/``: validated by their own contract, bad rows quarantined with reasons.

A labels file is what a bank learns after it answered: chargebacks, investigators' verdicts. It is
small next to a transactions file (one row per labelled transaction), so it is read whole, up to
``MAX_BYTES``; a bigger file is rejected with that reason and kept in quarantine, like any file the
ETL cannot take. Each row is checked against ``shared.domain.contract.LABELS``:

* ``transaction_id``: present, at most the contract's field length;
* ``label``: one of the contract's allowed values (0 genuine, 1 fraud);
* ``labelled_at``: an ISO 8601 time (UTC when it has no offset), not in the future;
* ``source``: optional, at most the field length.

A row that fails goes to ``quarantine/labels/rows/<file>-<hash>.csv`` with its line number and the
reason. A transaction labelled twice in one file keeps its latest verdict (the others count as
duplicates). The valid rows are written once, create-only, to
``curated/labels/<file>-<hash>.parquet``: a redelivered file (same bytes) lands on the same name
and is not written twice. Joining them to what was served is the monitoring
run's work (``shared.monitoring``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.domain import layout
from shared.domain.contract import LABELS, LABELS_PREFIX
from shared.domain.errors import BlobExistsError
from shared.etl.outcome import EtlOutcome
from shared.etl.reports import write_report
from shared.etl.service import RAW, _reject

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore

log = logging.getLogger(__name__)

MAX_BYTES = 64 * 1024 * 1024
CURATED_PREFIX = layout.LABELS_PREFIX
FUTURE_SLACK = timedelta(minutes=5)  # clocks differ a little; a verdict dated ahead of that would win "latest"
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # before it, a labelled_at is a missing date written as zero
LABEL_SCHEMA_FIELDS = ("transaction_id", "label", "labelled_at", "source", "source_blob", "ingested_at")


def is_labels_blob(name: str) -> bool:
    return name.startswith(LABELS_PREFIX)


def _parse_time(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _check_row(fields: dict[str, str], now: datetime) -> tuple[str | None, tuple[str, int, datetime, str | None]]:
    """The reason a row is refused (None when it is good) and its typed values."""
    limit = LABELS.max_field_chars
    tid = fields.get("transaction_id", "").strip()
    label_text = fields.get("label", "").strip()
    when_text = fields.get("labelled_at", "").strip()
    source = fields.get("source", "").strip() or None
    typed_when = datetime.min.replace(tzinfo=UTC)
    if not tid:
        return "transaction_id is empty", (tid, 0, typed_when, source)
    if len(tid) > limit:
        return f"transaction_id is longer than {limit} characters", (tid, 0, typed_when, source)
    allowed = LABELS.column("label").allowed or ()
    try:
        value = float(label_text)
    except ValueError:
        value = float("nan")
    if value not in allowed:
        shown = ", ".join(f"{a:g}" for a in allowed)
        return f"label must be one of {shown}, got {label_text[:20]!r}", (tid, 0, typed_when, source)
    when = _parse_time(when_text)
    if when is None:
        return (
            f"labelled_at is not an ISO 8601 time (like 2026-12-04T10:15:00Z): {when_text[:40]!r}",
            (tid, 0, typed_when, source),
        )
    if when > now + FUTURE_SLACK:
        return (
            f"labelled_at {when_text[:40]} is in the future (more than {FUTURE_SLACK.seconds // 60} minutes ahead "
            "of this clock): a verdict dated ahead would win over any later correction",
            (tid, 0, typed_when, source),
        )
    if when < EARLIEST:
        return (
            f"labelled_at {when_text[:40]} is before {EARLIEST.year}: a date that old is a missing date written as "
            "zero (1970-01-01), not a verdict",
            (tid, 0, typed_when, source),
        )
    if source is not None and len(source) > limit:
        return f"source is longer than {limit} characters", (tid, 0, typed_when, source)
    return None, (tid, int(value), when, source)


def _records(reader: Any) -> Iterator[tuple[int, list[str] | str]]:
    """Each record with its line, or the reason it could not be read (a field longer than the CSV module's
    131,072 characters): the reader goes on with the next line, so one such field is one quarantined row,
    not a file that fails to the poison queue."""
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, f"the row cannot be read as CSV ({exc})"
            continue
        yield reader.line_num, values


def ingest_labels(store: BlobStore, *, name: str, now: datetime | None = None) -> EtlOutcome:
    """Validate ``raw/<name>`` (a labels file) and write its good rows to ``curated/labels/``."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    info = store.info(RAW, name)
    if info.size > MAX_BYTES:
        return _reject(
            store,
            LABELS.name,
            name,
            info,
            f"a labels file of {info.size} bytes is over the limit of {MAX_BYTES}; split it",
            started,
        )
    data = b"".join(store.download_chunks(RAW, name, etag=info.etag))
    digest = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _reject(store, LABELS.name, name, info, "the file is not UTF-8 text", started)
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    required = LABELS.required_names(labelled=True)
    missing = [c for c in required if c not in header]
    if missing:
        return _reject(
            store,
            LABELS.name,
            name,
            info,
            f"not a labels file: the header lacks {', '.join(missing)} (it needs {', '.join(LABELS.names)})",
            started,
        )
    dropped = [h for h in header if h not in LABELS.names]
    kept: dict[str, tuple[str, int, datetime, str | None]] = {}
    bad: list[tuple[int, str, str]] = []
    rows_in = duplicates = 0
    for line_number, values in _records(reader):
        if isinstance(values, str):  # a record the CSV reader could not take: quarantined with why
            rows_in += 1
            bad.append((line_number, values, ""))
            continue
        if not values or all(not v.strip() for v in values):
            continue
        rows_in += 1
        if len(values) != len(header):  # which field is which is unknown: the row is withheld, its line named
            withheld = f"(withheld: it may hold other columns than a label's; see line {line_number} of {name})"
            bad.append((line_number, f"wrong field count: {len(values)} instead of {len(header)}", withheld))
            continue
        # only a label's own columns are kept (a bank's export may carry the customer's id beside them)
        raw = ",".join(v for h, v in zip(header, values, strict=True) if h in LABELS.names)[:500]
        reason, row = _check_row(dict(zip(header, values, strict=True)), now)
        if reason is not None:
            bad.append((line_number, reason, raw))
            continue
        previous = kept.get(row[0])
        if previous is not None:
            duplicates += 1
            if previous[2] > row[2]:
                continue
        kept[row[0]] = row
    stem = name.removeprefix(LABELS_PREFIX).rsplit(".", 1)[0].replace("/", "_")
    tag = f"{stem}-{digest[:16]}"
    ingested_at = now
    outputs: list[str] = []
    if kept:  # named by content: a redelivery, whenever it comes, lands on the same name
        target = layout.curated_labels(tag)
        _put_once(store, layout.CURATED, target, _parquet(list(kept.values()), layout.display(RAW, name), ingested_at))
        outputs.append(layout.display(layout.CURATED, target))
    quarantine = None
    if bad:
        quarantine = layout.quarantine_rows(LABELS.name, tag)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["line", "reason", "row"])
        writer.writerows(bad)
        _put_once(store, layout.QUARANTINE, quarantine, out.getvalue().encode())
        quarantine = layout.display(layout.QUARANTINE, quarantine)
    outcome = EtlOutcome(
        status="processed",
        reason=None,
        source=layout.display(RAW, name),
        source_etag=info.etag,
        sha256=digest,
        dataset=LABELS.name,
        input_bytes=info.size,
        rows_in=rows_in,
        rows_valid=len(kept),
        rows_quarantined=len(bad),
        rows_duplicate=duplicates,
        outputs=outputs,
        parts=len(outputs),
        quarantine=quarantine,
        report=layout.display(layout.REPORTS, layout.etl_report(LABELS.name, tag)),
        dropped_columns=dropped,
        quarantine_reasons=dict(Counter(_kind(r) for _, r, _ in bad).most_common()),
        etl_seconds=round(time.perf_counter() - started, 3),
    )
    write_report(store, LABELS.name, tag, outcome)
    log.info(
        "labels %s: %d in, %d kept, %d quarantined, %d duplicate",
        layout.display(RAW, name),
        rows_in,
        len(kept),
        len(bad),
        duplicates,
    )
    return outcome


def _kind(reason: str) -> str:
    """A reason without its value: the quarantine report counts kinds, not every distinct value."""
    return reason.split(":", 1)[0].split(",", 1)[0]


def _put_once(store: BlobStore, container: str, name: str, data: bytes) -> None:
    try:
        store.put_bytes(container, name, data, overwrite=False)
    except BlobExistsError:
        log.info("%s already exists (a redelivery of the same file); kept", layout.display(container, name))


def _parquet(rows: list[tuple[str, int, datetime, str | None]], source_blob: str, ingested_at: datetime) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "transaction_id": pa.array([r[0] for r in rows], pa.string()),
            "label": pa.array([r[1] for r in rows], pa.int8()),
            "labelled_at": pa.array([r[2] for r in rows], pa.timestamp("us", tz="UTC")),
            "source": pa.array([r[3] for r in rows], pa.string()),
            "source_blob": pa.array([source_blob] * len(rows), pa.string()),
            "ingested_at": pa.array([ingested_at] * len(rows), pa.timestamp("us", tz="UTC")),
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd")
    return out.getvalue()
