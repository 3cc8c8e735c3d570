"""How the stream processor is built from the streaming config (``shared.bootstrap`` builds it once per process)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from shared.domain.contracts import get_contract
from shared.domain.pseudonym import pseudonymiser
from shared.streaming.processor import StreamProcessor

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.domain.config import StreamingConfig
    from shared.scoring.online import OnlineFeatures
    from shared.scoring.scorer import Scorer
    from shared.streaming.alerts import AlertPublisher


def build_processor(
    config: StreamingConfig,
    *,
    store: BlobStore,
    scorer: Scorer,
    publisher: AlertPublisher | None,
    behaviour: OnlineFeatures | None = None,
) -> StreamProcessor:
    """A stream processor over ``store`` and ``scorer``, with the retries, spool and pseudonym key of ``config``."""
    key = config.customer_pseudonym_key
    return StreamProcessor(
        store,
        scorer,
        get_contract(config.dataset_name),
        attempts=config.stream_retry_attempts,
        backoff_seconds=config.stream_retry_backoff_seconds,
        spool_dir=Path(config.deadletter_spool_dir),
        publisher=publisher,
        pseudonymise=pseudonymiser(key.get_secret_value() if key else None),
        behaviour=behaviour,
    )
