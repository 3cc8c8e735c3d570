"""The one Entra ID credential of the process, built once per managed-identity client id.

Every Azure client (Blob storage, Key Vault, Event Hubs) takes its credential from here, so each is
built with the same user-assigned identity (``AzureWebJobsStorage__clientId`` in Azure) and tokens
are cached once per process. Locally, ``DefaultAzureCredential`` falls back to the developer's login.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=4)
def azure_credential(client_id: str | None) -> Any:
    """``DefaultAzureCredential`` for the managed identity ``client_id`` (None: system identity or a login)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=client_id)
