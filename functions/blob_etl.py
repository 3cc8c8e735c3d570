"""Blob trigger on ``raw/{name}``: runs the ETL on the landed file (``raw/labels/...``: the delayed labels' ETL).

The SDK-type binding hands us a ``BlobClient`` (a reference, not the bytes), so the ETL
streams the blob itself in chunks: a 2.5 GB file never passes through the host's gRPC channel.
The trigger source is an app setting: Event Grid in Azure (the only source Flex Consumption
supports), container polling locally with Azurite.
"""

from __future__ import annotations

import logging
import os

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

from shared.domain import layout

log = logging.getLogger(__name__)
bp = func.Blueprint()


def trigger_source(value: str | None) -> func.BlobSource:
    """The blob trigger source from ``BLOB_TRIGGER_SOURCE``; polling when unset or unknown (never raises)."""
    if value == "EventGrid":
        return func.BlobSource.EVENT_GRID
    if value not in (None, "", "LogsAndContainerScan"):
        log.warning("BLOB_TRIGGER_SOURCE=%r is not EventGrid or LogsAndContainerScan; polling", value)
    return func.BlobSource.LOGS_AND_CONTAINER_SCAN


@bp.function_name("etl_raw_blob")
@bp.blob_trigger(
    arg_name="client",
    path=layout.display(layout.RAW, "{name}"),
    connection="DataStorage",
    source=trigger_source(os.environ.get("BLOB_TRIGGER_SOURCE")),
)
def etl_raw_blob(client: blob.BlobClient) -> None:
    """Validate the new blob, write curated Parquet, quarantine what is bad.

    Data problems return normally (no retries for a file that can never succeed); storage
    errors raise, so the host retries the blob.
    """
    from shared.bootstrap import bootstrap
    from shared.domain.errors import BlobNotFoundError
    from shared.etl.labels import is_labels_blob
    from shared.etl.service import run_etl
    from shared.monitoring.feedback import land_labels

    services = bootstrap()
    settings, store, name = services.settings, services.blob_store, client.blob_name
    try:  # delayed labels (raw/labels/...) have a contract of their own; everything else is transactions
        if is_labels_blob(name):
            landed = land_labels(store, settings.monitoring, name=name, online=services.behaviour)
            summary, fed = landed.etl, landed.feedback
            log.info("labels %s: %s served transactions curated for training", name, fed.written if fed else 0)
        else:
            summary = run_etl(store, settings.etl, name=name)
    except BlobNotFoundError:
        # a redelivery after the blob was rejected and moved to quarantine/: nothing left to do
        log.warning("etl %s: the blob is gone (already handled); nothing to do", client.blob_name)
        return
    log.info(
        "etl %s: status=%s rows_in=%s rows_valid=%s rows_quarantined=%s reason=%s",
        client.blob_name,
        summary.status,
        summary.rows_in,
        summary.rows_valid,
        summary.rows_quarantined,
        summary.reason,
    )
