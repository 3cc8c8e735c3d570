"""The Entra ID credential every Azure client of the process uses (Blob storage, Key Vault, Event Hubs).

Each client is built with the same user-assigned identity (``AzureWebJobsStorage__clientId`` in
Azure), so tokens are cached once per process: the composition root (``shared.bootstrap``) builds
the credential once with :func:`build_credential` and hands it to every client it builds. Locally,
``DefaultAzureCredential`` falls back to the developer's login.
"""

from __future__ import annotations

from typing import Any


def build_credential(client_id: str | None) -> Any:
    """``DefaultAzureCredential`` for the managed identity ``client_id`` (None: system identity or a login)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=client_id)
