"""Adapters: the only code that talks to Azure Storage, Key Vault, Event Hubs and other services' SDKs."""
