"""Labelled production transactions become training data: what was served, with the verdict it earned.

When a labels file lands (``land_labels``, what the blob trigger and ``fraudops labels`` call), its
valid rows are curated by the labels' ETL (``shared.etl.labels``), then joined to the recorded
predictions of the last ``MONITOR_LOOKBACK_DAYS`` days: each labelled transaction that was served
(HTTP or stream) with its features becomes one row of the dataset's contract, its label as
``Class``. The rows are written once, create-only, as
``curated/<dataset>/ingest_date=<day>/labelled-<labels file>-<hash>.parquet`` and added to the
dataset manifest, so the next retraining learns from what was actually served. A training row carries
the transaction's *latest* verdict over every labels file so far (by ``labelled_at``): a transaction
curated earlier with the same verdict is not written again; one whose verdict was corrected since is
written with the new one, and the part holding the old row is rewritten without it and swapped in the
manifest (as an erasure swaps parts), so a correction reaches the next retrain. A redelivered labels file
lands on the same name and the manifest lists it once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.domain import layout
from shared.domain.config import MonitoringConfig
from shared.domain.contracts import get_contract
from shared.domain.errors import BlobExistsError
from shared.domain.history import read_columns, recorded_columns
from shared.etl import manifest
from shared.etl.labels import ingest_labels
from shared.etl.validate import curated_type
from shared.monitoring.served import load_served
from shared.scoring.records import TIME_COLUMN

if TYPE_CHECKING:
    import pyarrow as pa

    from shared.adapters.storage import BlobStore
    from shared.domain.contract import DatasetContract
    from shared.etl.service import EtlOutcome
    from shared.scoring.online import OnlineFeatures

log = logging.getLogger(__name__)

LABELLED_STEM = "labelled-"


@dataclass(frozen=True)
class Feedback:
    """What a labels file added to the training data."""

    labelled: int
    matched: int
    already_curated: int
    written: int
    path: str | None
    dataset_version: str | None
    erased: int = 0  # labelled rows of customers erased since they were served: never made training rows
    corrected: int = 0  # training rows whose verdict changed since they were curated: rewritten with the latest
    conflicting: int = 0  # transaction ids scored with different features: none of them becomes a training row


@dataclass(frozen=True)
class LandedLabels:
    """The labels' ETL outcome and what it fed back into the training data."""

    etl: EtlOutcome
    feedback: Feedback | None


def land_labels(
    store: BlobStore,
    config: MonitoringConfig,
    *,
    name: str,
    now: datetime | None = None,
    online: OnlineFeatures | None = None,
) -> LandedLabels:
    """Validate ``raw/<name>`` as labels, then curate the labelled served transactions for training (and, with
    ``online``, place each verdict in the online store, known from its ``labelled_at``)."""
    now = now or datetime.now(UTC)
    etl = ingest_labels(store, name=name, now=now)
    if etl.status != "processed" or not etl.outputs:
        return LandedLabels(etl, None)
    return LandedLabels(etl, curate_labelled(store, config, labels_path=etl.outputs[0], now=now, online=online))


def _without_conflicts(served: Any, features: list[str]) -> tuple[Any, int]:
    """One row per served transaction (its first answer), leaving out every transaction id that was scored
    with different features (the transaction's own columns; behavioural ones may differ on a retry): whoever
    scored a bank's next id first with features of their choosing would otherwise have the bank's verdict
    label those features in training (issue 39, finding 9). How many ids were left out."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from shared.etl.dedup import row_hashes
    from shared.monitoring.served import first_answer

    if served.num_rows < 2:
        return first_answer(served), 0
    fingerprints = pa.table(
        {"transaction_id": served.column("transaction_id"), "x": pa.array(row_hashes(served.select(features)))}
    )
    counts = fingerprints.group_by("transaction_id").aggregate([("x", "count_distinct")])
    conflicted = counts.filter(pc.greater(counts.column("x_count_distinct"), 1)).column("transaction_id")
    if len(conflicted) == 0:
        return first_answer(served), 0
    for tid in conflicted.to_pylist()[:5]:
        log.warning("transaction %s was scored with different features: left out of the training rows", tid)
    kept = served.filter(
        pc.invert(pc.fill_null(pc.is_in(served.column("transaction_id"), value_set=conflicted), False))
    )
    return first_answer(kept), len(conflicted)


def _without_erased(store: BlobStore, joined: Any) -> tuple[Any, int]:
    """The labelled served rows without those of erased customers (the erasure list), and how many went: an
    erased customer must not come back into ``curated/`` (or the online store) through a later verdict."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from shared.adapters.erasures import erased

    gone_ids = erased(store) if joined.num_rows and "customer_id" in joined.column_names else frozenset()
    if not gone_ids:
        return joined, 0
    gone = pc.fill_null(pc.is_in(joined.column("customer_id"), value_set=pa.array(sorted(gone_ids))), False)
    return joined.filter(pc.invert(gone)), int(pc.sum(gone).as_py() or 0)


def curate_labelled(
    store: BlobStore,
    config: MonitoringConfig,
    *,
    labels_path: str,
    now: datetime,
    online: OnlineFeatures | None = None,
) -> Feedback:
    """The served transactions ``labels_path`` (``curated/labels/...``) labels, as curated training rows (with
    what their behavioural features are computed from), and with ``online`` the verdicts in the online store."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    contract = get_contract(config.dataset_name)
    features = contract.feature_names
    curated_prefix = layout.display(layout.CURATED, "")
    labels = pq.read_table(io.BytesIO(store.get_bytes(layout.CURATED, labels_path.removeprefix(curated_prefix))[0]))
    start = (now - timedelta(days=config.monitor_lookback_days - 1)).date()
    texts, numbers = recorded_columns(contract)
    served, conflicting = _without_conflicts(
        load_served(store, start, now.date(), features=[*features, *texts, *numbers], first_only=False), features
    )
    joined = served.join(
        labels.select(["transaction_id", "label", "labelled_at"]), keys="transaction_id", join_type="inner"
    )
    joined, erased_rows = _without_erased(store, joined)
    if online is not None and joined.num_rows:
        _to_online(online, contract, joined)
    joined = _with_latest_verdicts(store, joined)
    done = _curated_labels(store, contract.name)
    ids = joined.column("transaction_id").to_pylist()
    verdicts = joined.column("label").to_pylist()
    same = [any(label == int(y) for _, label in done.get(i, ())) for i, y in zip(ids, verdicts, strict=True)]
    fresh = joined.filter(pc.invert(pa.array(same, pa.bool_())))
    outdated = {  # curated rows whose verdict is no longer the latest: rewritten without them below
        i: [path for path, label in done.get(i, ()) if label != int(y)] for i, y in zip(ids, verdicts, strict=True)
    }
    outdated = {i: paths for i, paths in outdated.items() if paths}
    outcome = {
        "labelled": labels.num_rows,
        "matched": joined.num_rows,
        "already_curated": joined.num_rows - fresh.num_rows,
        "erased": erased_rows,
        "conflicting": conflicting,
        "corrected": len(outdated),
    }
    if fresh.num_rows == 0:  # a part with an outdated verdict left by a run that crashed is still rewritten
        version = _without_outdated(store, contract, outdated) if outdated else None
        log.info("labels %s: %d labelled, none newly matched to a served transaction", labels_path, labels.num_rows)
        return Feedback(**outcome, written=0, path=None, dataset_version=version)
    table = _as_contract_rows(fresh, contract.name, [*features, *texts, *numbers])
    data = _parquet(table)
    digest = hashlib.sha256(data).hexdigest()
    stem = labels_path.rsplit("/", 1)[-1].removesuffix(".parquet")
    path = f"{layout.curated_partition(contract.name, f'{now:%Y-%m-%d}')}/{LABELLED_STEM}{stem}.parquet"
    try:
        store.put_bytes(layout.CURATED, path, data, overwrite=False, content_type="application/vnd.apache.parquet")
    except BlobExistsError:  # a redelivery after the write: the same rows are there
        data = store.get_bytes(layout.CURATED, path)[0]
        digest = hashlib.sha256(data).hexdigest()
    version = manifest.add_files(
        store,
        contract.name,
        [
            manifest.CuratedFile(
                path=path,
                rows=table.num_rows,
                bytes=len(data),
                sha256=digest,
                source_blob=labels_path,
                source_etag="",
                ingested_at=now.isoformat(),
            )
        ],
    )
    if outdated:
        version = _without_outdated(store, contract, outdated) or version
    log.info(
        "labels %s: %d served transactions curated for training (version %s)", labels_path, table.num_rows, version
    )
    return Feedback(
        **outcome, written=table.num_rows, path=layout.display(layout.CURATED, path), dataset_version=version
    )


def _to_online(online: OnlineFeatures, contract: DatasetContract, joined: pa.Table) -> None:
    """Each verdict on a served transaction into the online store: its record gives the event time and the
    entity keys (pseudonyms), its ``labelled_at`` when it became known."""
    from shared.scoring.online import Label

    keys, _, _ = read_columns(contract.behaviour)
    held = {name: joined.column(name).to_pylist() for name in keys if name in joined.column_names}
    if contract.customer in keys:
        held[contract.customer] = joined.column("customer_id").to_pylist()
    times = joined.column(TIME_COLUMN).to_numpy(zero_copy_only=False).astype(np.float64)
    known = joined.column("labelled_at").cast("int64").to_numpy(zero_copy_only=False) / 1e6
    ids, verdicts = joined.column("transaction_id").to_pylist(), joined.column("label").to_pylist()
    items = [
        Label(str(ids[i]), float(times[i]), {k: v[i] for k, v in held.items()}, verdicts[i] == 1, float(known[i]))
        for i in range(joined.num_rows)
        if np.isfinite(times[i])
    ]
    changed = online.labels(items)
    log.info("labels: %d verdicts placed in the online store (%d entity states changed)", len(items), changed)


def _curated_labels(store: BlobStore, dataset: str) -> dict[str, list[tuple[str, int]]]:
    """Each transaction curated from labels: the labelled parts holding it, with the verdict each holds (their
    files are few: one per labels file)."""
    import pyarrow.parquet as pq

    contract = get_contract(dataset)
    label_name = contract.label.name if contract.label else "label"
    found: dict[str, list[tuple[str, int]]] = {}
    listed, _ = manifest.read_manifest(store, dataset)
    for entry in listed.files:
        if entry.path.rsplit("/", 1)[-1].startswith(LABELLED_STEM):
            table = pq.read_table(
                io.BytesIO(store.get_bytes(layout.CURATED, entry.path)[0]), columns=["transaction_id", label_name]
            )
            for tid, label in zip(
                table.column("transaction_id").to_pylist(), table.column(label_name).to_pylist(), strict=True
            ):
                if tid is not None:
                    found.setdefault(tid, []).append((entry.path, int(label)))
    return found


def _with_latest_verdicts(store: BlobStore, joined: pa.Table) -> pa.Table:
    """``joined`` with each transaction's latest verdict over every labels file so far (a file that lands late
    with an older verdict does not undo a newer one)."""
    import pyarrow as pa

    from shared.monitoring.served import load_labels

    if joined.num_rows == 0:
        return joined
    latest = load_labels(store)
    newest = dict(zip(latest.column("transaction_id").to_pylist(), latest.column("label").to_pylist(), strict=True))
    labels = [
        int(newest.get(t, y))
        for t, y in zip(joined.column("transaction_id").to_pylist(), joined.column("label").to_pylist(), strict=True)
    ]
    index = joined.column_names.index("label")
    return joined.set_column(index, "label", pa.array(labels, joined.schema.field("label").type))


def _without_outdated(store: BlobStore, contract: DatasetContract, outdated: dict[str, list[str]]) -> str | None:
    """Rewrite each labelled part holding an outdated verdict without those rows and swap it in the manifest
    (create-only names, then one conditional manifest write, then the old parts deleted); the new version."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    by_path: dict[str, set[str]] = {}
    for tid, paths in outdated.items():
        for path in paths:
            by_path.setdefault(path, set()).add(tid)
    listed = {f.path: f for f in manifest.read_manifest(store, contract.name)[0].files}
    replaced: dict[str, manifest.CuratedFile] = {}
    for path, ids in sorted(by_path.items()):
        entry = listed.get(path)
        if entry is None:
            continue
        table = pq.read_table(io.BytesIO(store.get_bytes(layout.CURATED, path)[0]))
        drop = pc.is_in(table.column("transaction_id"), value_set=pa.array(sorted(ids), pa.string()))
        kept = table.filter(pc.invert(pc.fill_null(drop, False)))
        data = _parquet(kept)
        digest = hashlib.sha256(data).hexdigest()
        new_path = f"{path.removesuffix('.parquet')}-corrected-{digest[:12]}.parquet"
        with contextlib.suppress(BlobExistsError):  # written by a run that crashed before the manifest: same rows
            store.put_bytes(
                layout.CURATED, new_path, data, overwrite=False, content_type="application/vnd.apache.parquet"
            )
        replaced[path] = manifest.CuratedFile(
            path=new_path,
            rows=kept.num_rows,
            bytes=len(data),
            sha256=digest,
            source_blob=entry.source_blob,
            source_etag=entry.source_etag,
            ingested_at=entry.ingested_at,
        )
    if not replaced:
        return None
    version = manifest.replace_files(store, contract.name, replaced)
    for path in replaced:  # only now: no version lists them
        store.delete(layout.CURATED, path)
    log.info("labels: %d training rows carried a verdict since corrected; rewritten", len(outdated))
    return version


def _as_contract_rows(joined: pa.Table, dataset: str, features: list[str]) -> pa.Table:
    """The dataset contract's curated columns: time, features, label, ids (time from the record when sent,
    else seconds since the first of these transactions was scored)."""
    import pyarrow as pa

    contract = get_contract(dataset)
    label_name = contract.label.name if contract.label else "label"
    columns: dict[str, pa.Array] = {}
    if contract.time_column is not None:  # a dataset without an event time keeps the rows' order instead
        times = joined.column(TIME_COLUMN).to_numpy(zero_copy_only=False).astype(np.float64)
        scored = joined.column("scored_at").cast("int64").to_numpy(zero_copy_only=False) / 1e6
        seconds = np.where(np.isfinite(times), times, scored - scored.min())
        if contract.time_column.dtype == "timestamp":  # stored as the ETL stores it: one type per column
            micros = pa.array(np.round(seconds * 1e6).astype(np.int64))
            columns[contract.time_column.name] = micros.cast(curated_type(contract.time_column))
        else:
            columns[contract.time_column.name] = pa.array(seconds)
    for name in features:  # as the ETL stores the contract's columns (a category as text, an integer whole...)
        held = joined.column(name).combine_chunks()
        if pa.types.is_floating(held.type):  # a record holds a missing number as NaN; curated data as null
            import pyarrow.compute as pc

            held = pc.if_else(pc.is_nan(held), pa.scalar(None, held.type), held)
        columns[name] = held.cast(curated_type(contract.column(name)))
    columns[label_name] = pa.array(joined.column("label").to_numpy(zero_copy_only=False).astype(np.int8))
    if contract.transaction_id:  # the record's ids, under the contract's names
        columns[contract.transaction_id] = joined.column("transaction_id").combine_chunks()
    if customer := contract.entity("customer"):
        columns[customer] = joined.column("customer_id").combine_chunks()
    return pa.table(columns)


def _parquet(table: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd")
    return out.getvalue()
