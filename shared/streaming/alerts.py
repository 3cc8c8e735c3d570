"""Where alerts go besides ``alerts/`` in Blob: the ``fraud-alerts`` hub, through the azure-eventhub producer."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from shared.domain.settings import Settings

log = logging.getLogger(__name__)


class AlertPublisher(Protocol):
    def send(self, alerts: list[dict[str, Any]]) -> None: ...


class EventHubAlertPublisher:
    """Sends each alert as one JSON event, partitioned by customer (or transaction) id; client made on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: Any = None

    def _client(self) -> Any:
        if self._producer is None:
            from azure.eventhub import EventHubProducerClient

            s = self.settings
            if s.eventhub_namespace:
                from shared.adapters.identity import azure_credential

                self._producer = EventHubProducerClient(
                    fully_qualified_namespace=s.eventhub_namespace,
                    eventhub_name=s.alerts_hub_name,
                    credential=azure_credential(s.storage_credential_client_id),
                )
            else:
                self._producer = EventHubProducerClient.from_connection_string(
                    s.eventhub_connection or "", eventhub_name=s.alerts_hub_name
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
        log.info("sent %d alerts to %s", len(alerts), self.settings.alerts_hub_name)


def get_publisher(settings: Settings) -> AlertPublisher | None:
    """The alerts-hub publisher when Event Hubs is configured, else ``None`` (alerts still go to Blob)."""
    if settings.eventhub_namespace or settings.eventhub_connection:
        return EventHubAlertPublisher(settings)
    return None
