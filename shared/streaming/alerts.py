"""The stream's alerts: built for each flagged event (with its explanation), archived in ``alerts``, sent to a hub.

The ``fraud-alerts`` hub is reached through the azure-eventhub producer (``EventHubAlertPublisher``).
Sending is at least once: an alert whose range a crashed attempt wrote but did not commit is sent
again from its archive when the range is settled, unless this worker sent it itself; what the hub
refuses is recorded in ``deadletter`` as not sent (its Blob copy is kept).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from shared.domain import layout
from shared.streaming.deadletter import JSONL_TYPE, jsonl
from shared.streaming.retry import Output, RetryingStore, StreamStorageError

if TYPE_CHECKING:
    from shared.domain.config import StreamingConfig
    from shared.domain.contract import DatasetContract
    from shared.domain.documents.streaming import PendingRange
    from shared.streaming.events import StreamEvent

log = logging.getLogger(__name__)


class AlertPublisher(Protocol):
    def send(self, alerts: list[dict[str, Any]]) -> None: ...


class EventHubAlertPublisher:
    """Sends each alert as one JSON event, partitioned by customer (or transaction) id; client made on first use.

    ``credential`` makes the Entra ID credential (the composition root's) when the hub is reached by namespace
    (not by connection string); it is called only then.
    """

    def __init__(self, config: StreamingConfig, *, credential: Callable[[], Any]) -> None:
        self.config, self.credential = config, credential
        self._producer: Any = None

    def _client(self) -> Any:
        if self._producer is None:
            from azure.eventhub import EventHubProducerClient

            c = self.config
            if c.eventhub_namespace:
                self._producer = EventHubProducerClient(
                    fully_qualified_namespace=c.eventhub_namespace,
                    eventhub_name=c.alerts_hub_name,
                    credential=self.credential(),
                )
            else:
                self._producer = EventHubProducerClient.from_connection_string(
                    c.eventhub_connection or "", eventhub_name=c.alerts_hub_name
                )
        return self._producer

    def send(self, alerts: list[dict[str, Any]]) -> None:
        from azure.eventhub import EventData

        producer = self._client()
        by_key: dict[str, list[dict[str, Any]]] = {}
        for alert in alerts:
            by_key.setdefault(str(alert.get("customer_id") or alert["transaction_id"]), []).append(alert)
        for key, group in by_key.items():
            batch = producer.create_batch(partition_key=key)
            for alert in group:
                event = EventData(json.dumps(alert))
                event.properties = {"alert_id": alert.get("alert_id")}  # stable per source event: consumers dedupe
                batch.add(event)
            producer.send_batch(batch)
        log.info("sent %d alerts to %s", len(alerts), self.config.alerts_hub_name)


def get_publisher(config: StreamingConfig, *, credential: Callable[[], Any]) -> AlertPublisher | None:
    """The alerts-hub publisher when Event Hubs is configured, else ``None`` (alerts still go to Blob)."""
    if config.eventhub_namespace or config.eventhub_connection:
        return EventHubAlertPublisher(config, credential=credential)
    return None


def build_alerts(
    explainers: Any,
    model: Any,
    good: list[StreamEvent],
    rows: list[dict[str, Any]],
    x: np.ndarray,
    probs: np.ndarray,
    flagged: np.ndarray,
    *,
    top_k: int,
    contract: DatasetContract,
) -> list[dict[str, Any]]:
    """One alert per flagged row, with its top features (``None`` when the model cannot be explained)."""
    from shared.scoring.explain import CannotExplainError

    explained: list[dict[str, Any] | None]
    try:
        explained = list(explainers.get(model.version, list(model.feature_names)).explain(x[flagged], top_k=top_k))
    except CannotExplainError as exc:
        log.warning("alerts without explanations: %s", exc.reason)
        explained = [None] * flagged.size
    except Exception:  # LightGBM, storage or integrity errors while loading the explainer: alert anyway
        log.exception("alerts without explanations: the explainer for %s failed", model.version)
        explained = [None] * flagged.size
    return [
        {
            "transaction_id": rows[i][contract.transaction_id or ""],  # the stream takes only rows with one
            "customer_id": rows[i].get(contract.customer) if contract.customer else None,
            "fraud_probability": float(probs[i]),
            "threshold": model.threshold,
            "model_version": model.version,
            "alert_id": f"{good[i].partition}-{good[i].sequence_number}",  # one per event: for deduplication
            "partition": good[i].partition,
            "sequence_number": good[i].sequence_number,
            "enqueued_time": good[i].enqueued_time.isoformat(),
            "top_features": explanation["contributions"] if explanation else None,
        }
        for i, explanation in zip(flagged.tolist(), explained, strict=True)
    ]


def _not_sent(exc: StreamStorageError) -> str:
    return f"alert not sent to the alerts hub ({exc.reason}); it is in {layout.ALERTS}/"


class AlertSender:
    """Sends a batch's alerts to the hub (if any), and those of a range a crashed attempt wrote, from their archive."""

    def __init__(self, storage: RetryingStore, publisher: AlertPublisher | None) -> None:
        self.storage, self.publisher = storage, publisher
        self.uncommitted: set[tuple[str, int, int]] = set()  # ranges whose alerts this worker sent, not yet committed

    def publish(
        self, docs: list[dict[str, Any]], good: list[StreamEvent], flagged: np.ndarray
    ) -> list[tuple[StreamEvent, str]]:
        """Send alerts to the alerts hub; what cannot be sent, with the reason (the Blob copy is already kept)."""
        if self.publisher is None or not docs:
            return []
        publisher = self.publisher
        try:
            self.storage.retry(lambda: publisher.send(docs), what="alerts hub")
        except StreamStorageError as exc:
            return [(good[i], _not_sent(exc)) for i in flagged.tolist()]
        return []

    def settled(self, partition: str, pending: PendingRange) -> None:
        """A range a crashed attempt wrote whole is being committed: send its alerts, unless this worker did."""
        if layout.ALERTS in pending.outputs and (partition, pending.first, pending.last) not in self.uncommitted:
            self.resend(pending.outputs[layout.ALERTS])  # a crashed worker may have sent them: at least once

    def resend(self, alerts_name: str) -> None:
        """Send a settled range's alerts from their archive; if the hub refuses, record them as not sent."""
        docs = [json.loads(line) for line in self.storage.read(layout.ALERTS, alerts_name).splitlines()]
        if self.publisher is None or not docs:
            return
        publisher = self.publisher
        try:
            self.storage.retry(lambda: publisher.send(docs), what="alerts hub")
        except StreamStorageError as exc:
            unsent = [{**d, "reason": _not_sent(exc)} for d in docs]
            hour, batch = alerts_name.removesuffix(".jsonl").rsplit("/", 1)
            self.storage.put_new(
                layout.DEADLETTER, Output(layout.stream_unsent_alerts(hour, batch), jsonl(unsent), JSONL_TYPE)
            )
