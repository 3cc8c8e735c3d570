"""``fraudops replay``: send a file of transactions as stream events, to Event Hubs or through the function locally.

Each row becomes one JSON event in the scoring contract (ids generated when absent; the label,
if present, is not sent). To Event Hubs the azure-eventhub producer sends batches keyed by
customer id (so one customer's events stay in order on one partition). Locally (``--local``,
and by default when no Event Hubs connection is configured) the same events go in batches of
real ``azure.functions.EventHubEvent`` objects through the registered ``score_stream``
function, in-process, so the demo and the tests run the real function code without Event Hubs.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.domain.contract import ColumnType
from shared.domain.contracts import get_contract
from shared.domain.errors import FraudOpsError
from shared.domain.progress import report

if TYPE_CHECKING:
    from shared.domain.settings import Settings

log = logging.getLogger(__name__)

LOCAL_PARTITIONS = 4


def read_transactions(path: Path, dataset: str) -> list[dict[str, Any]]:
    """The file's rows as transaction dicts (CSV or Parquet) as a JSON event carries them: text columns as text,
    an empty field left out; the contract's transaction id generated when absent."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    contract = get_contract(dataset)
    if not path.is_file():
        raise FraudOpsError(f"{path} is not a file")
    if contract.transaction_id is None:
        raise FraudOpsError(f"dataset {dataset}'s contract declares no transaction_id role: the stream needs one")
    texts = {c.name: pa.string() for c in contract.columns if c.dtype in ("string", "timestamp")}
    options = pacsv.ConvertOptions(column_types=texts, strings_can_be_null=True)
    try:
        table = pq.read_table(path) if path.suffix == ".parquet" else pacsv.read_csv(path, convert_options=options)
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise FraudOpsError(f"{path} is not a readable CSV or Parquet table ({exc})") from None
    label = contract.label.name if contract.label else None
    keep = [c for c in table.column_names if c in contract.names and c != label]
    whole = {c.name for c in contract.columns if c.type is ColumnType.INTEGER}
    rows: list[dict[str, Any]] = [
        {k: int(v) if k in whole else v for k, v in row.items() if v is not None}
        for row in table.select(keep).to_pylist()
    ]
    tid = contract.transaction_id
    if tid not in keep:
        for i, row in enumerate(rows):
            row[tid] = f"{path.stem}-{i}"
    return rows


def _paced(rows: list[dict[str, Any]], batch: int, rate: float | None) -> Iterator[list[dict[str, Any]]]:
    started = time.monotonic()
    for start in range(0, len(rows), batch):
        if rate:
            delay = started + start / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield rows[start : start + batch]
        report("replay events", min(start + batch, len(rows)), len(rows))


def _partition_of(row: dict[str, Any], index: int, customer: str | None) -> str:
    key = row.get(customer) if customer else None
    return str(zlib.crc32(str(key).encode()) % LOCAL_PARTITIONS if key else index % LOCAL_PARTITIONS)


def replay(path: Path, settings: Settings, *, rate: float | None, batch: int, local: bool | None) -> dict[str, Any]:
    """Send every row of ``path``; the summary has ``sent``, ``failed``, ``events_per_s`` (and local counts)."""
    rows = read_transactions(path, settings.dataset_name)
    configured = bool(settings.eventhub_connection or settings.eventhub_namespace)
    use_local = (not configured) if local is None else local
    started = time.perf_counter()
    summary = _local(rows, settings, rate, batch) if use_local else _remote(rows, settings, rate, batch)
    elapsed = time.perf_counter() - started
    summary.update(
        mode="local" if use_local else "eventhubs",
        rows=len(rows),
        events_per_s=round(summary["sent"] / elapsed, 1) if elapsed > 0 else None,
        seconds=round(elapsed, 3),
    )
    return summary


def _local(rows: list[dict[str, Any]], settings: Settings, rate: float | None, batch: int) -> dict[str, Any]:
    customer = get_contract(settings.dataset_name).customer  # one customer's events stay in order
    import orjson

    from cli.function_host import user_function
    from functions.eventhub_events import to_function_events
    from shared.bootstrap import bootstrap
    from shared.streaming.processor import DISPOSITIONS

    function = user_function("score_stream")
    processor = bootstrap(settings).processor  # the function's own: its totals count what the function did
    before = dataclasses.replace(processor.totals)  # a copy: the counts before this replay
    sequences = dict.fromkeys(map(str, range(LOCAL_PARTITIONS)), 0)
    sent, offset = 0, 0
    for chunk in _paced(rows, batch, rate):
        by_partition: dict[str, list[bytes]] = {}
        for i, row in enumerate(chunk):
            by_partition.setdefault(_partition_of(row, offset + i, customer), []).append(orjson.dumps(row))
        for partition, bodies in sorted(by_partition.items()):
            events = to_function_events(
                bodies,
                partition=partition,
                first_sequence=sequences[partition],
                enqueued_time=datetime.now(UTC),
                hub=settings.eventhub_name,
            )
            sequences[partition] += len(bodies)
            function(events)
            sent += len(bodies)
        offset += len(chunk)
        log.info("replay: %d of %d events through score_stream", sent, len(rows))
    after = processor.totals
    return {"sent": sent, "failed": 0, **{k: getattr(after, k) - getattr(before, k) for k in DISPOSITIONS}}


def _remote(rows: list[dict[str, Any]], settings: Settings, rate: float | None, batch: int) -> dict[str, Any]:
    customer = get_contract(settings.dataset_name).customer  # one customer's events stay in order
    import orjson
    from azure.eventhub import EventData, EventHubProducerClient
    from azure.eventhub.exceptions import EventHubError

    if settings.eventhub_namespace:
        from shared.bootstrap import bootstrap

        producer = EventHubProducerClient(
            fully_qualified_namespace=settings.eventhub_namespace,
            eventhub_name=settings.eventhub_name,
            credential=bootstrap(settings).credential,  # the storage identity's, as the stream's alerts use
        )
    else:
        producer = EventHubProducerClient.from_connection_string(
            settings.eventhub_connection or "", eventhub_name=settings.eventhub_name
        )
    sent = failed = 0
    with producer:
        for chunk in _paced(rows, batch, rate):
            groups: dict[str | None, list[dict[str, Any]]] = {}
            for row in chunk:
                groups.setdefault(row.get(customer) if customer else None, []).append(row)
            for key, group in groups.items():
                data = producer.create_batch(partition_key=key) if key else producer.create_batch()
                for row in group:
                    try:
                        data.add(EventData(orjson.dumps(row)))
                    except ValueError:  # the batch is full: send it and start another
                        producer.send_batch(data)
                        data = producer.create_batch(partition_key=key) if key else producer.create_batch()
                        data.add(EventData(orjson.dumps(row)))
                try:
                    producer.send_batch(data)
                    sent += len(group)
                except EventHubError as exc:
                    failed += len(group)
                    log.error("replay: %d events not sent: %s", len(group), exc)
            log.info("replay: %d sent, %d failed of %d", sent, failed, len(rows))
    return {"sent": sent, "failed": failed}
