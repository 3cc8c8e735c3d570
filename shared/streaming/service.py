"""The stream processor of this worker process, built once from settings (clients made on first use)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from shared.adapters.storage import get_blob_store
from shared.domain.contract import get_contract
from shared.domain.pseudonym import for_settings
from shared.scoring.scorer import get_scorer
from shared.streaming.alerts import get_publisher
from shared.streaming.processor import StreamProcessor

if TYPE_CHECKING:
    from shared.domain.settings import Settings


@lru_cache(maxsize=4)
def get_processor(settings: Settings) -> StreamProcessor:
    return StreamProcessor(
        get_blob_store(settings),
        get_scorer(settings),
        get_contract(settings.dataset_name),
        attempts=settings.stream_retry_attempts,
        backoff_seconds=settings.stream_retry_backoff_seconds,
        spool_dir=Path(settings.deadletter_spool_dir),
        publisher=get_publisher(settings),
        pseudonymise=for_settings(settings),
    )
