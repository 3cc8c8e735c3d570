"""The composition root's one reset: every process-wide client and cache, cleared together.

The app builds its settings, credential, blob store, scorer, prediction recorder, stream processor and key store once
per process through cached factories (``get_settings``, ``azure_credential``, ``get_blob_store``,
``get_scorer``, ``get_processor``, ``get_keys``). Tests and the local simulation, which change
settings within one process, call :func:`reset` instead of clearing private caches one by one.
"""

from __future__ import annotations


def reset() -> None:
    """Forget every cached client and setting; the next call to a factory builds anew."""
    from shared.adapters.bank_keys import get_keys
    from shared.adapters.identity import azure_credential
    from shared.adapters.storage import reset_stores
    from shared.domain.settings import get_settings
    from shared.scoring.records import reset_recorders
    from shared.scoring.scorer import reset_scorers
    from shared.streaming.service import get_processor

    for cached in (get_processor, get_keys, get_settings, azure_credential):
        cached.cache_clear()
    reset_recorders()  # first: it writes what it holds through the store it was built with
    reset_stores()
    reset_scorers()
