"""Settings: production refuses development defaults; unresolved Key Vault references are not keys."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from shared.domain.settings import Settings


def test_an_unresolved_key_vault_reference_is_never_the_admin_key(monkeypatch, caplog):
    reference = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/fl-admin-key)"
    monkeypatch.setenv("FL_ADMIN_KEY", reference)
    with caplog.at_level(logging.ERROR, logger="shared.domain.settings"):
        settings = Settings()
    assert settings.fl_admin_key is None
    assert "unresolved Key Vault reference" in caplog.text


def test_a_resolved_admin_key_is_kept(monkeypatch):
    monkeypatch.setenv("FL_ADMIN_KEY", "s3cret-admin-key")
    assert Settings().fl_admin_key == "s3cret-admin-key"


def test_production_refuses_azurite_storage(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.delenv("AzureWebJobsStorage__accountName", raising=False)
    with pytest.raises(ValidationError, match="storage points at Azurite"):
        Settings()


def test_production_with_identity_based_storage_is_accepted(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "stfraudopsprod")
    assert Settings().storage_account_name == "stfraudopsprod"
