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
    settings = Settings()
    assert settings.fl_admin_key is not None and settings.fl_admin_key.get_secret_value() == "s3cret-admin-key"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())


def test_production_refuses_azurite_storage(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.delenv("AzureWebJobsStorage__accountName", raising=False)
    with pytest.raises(ValidationError, match="storage points at Azurite"):
        Settings()


def test_production_with_identity_based_storage_is_accepted(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "stfraudopsprod")
    monkeypatch.setenv("CUSTOMER_PSEUDONYM_KEY", "a-pseudonym-key-of-our-own")
    monkeypatch.setenv("AUDIT_CHAIN_KEY", "an-audit-chain-key-of-our-own")
    assert Settings().storage_account_name == "stfraudopsprod"


def test_production_refuses_to_pseudonymise_with_the_development_key(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "stfraudopsprod")
    monkeypatch.delenv("CUSTOMER_PSEUDONYM_KEY", raising=False)
    with pytest.raises(ValidationError, match="CUSTOMER_PSEUDONYM_KEY is not set"):
        Settings()


# ---- issue 19, finding 18: secrets never reach the logs; the example keys never run in production


def test_a_refused_production_configuration_does_not_echo_its_secrets(monkeypatch):
    """Before: the validator's error printed the whole input, FL_ADMIN_KEY included, into the host's logs."""
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv("FL_ADMIN_KEY", "very-secret-admin-key")
    monkeypatch.setenv("FL_BANK_KEYS", '{"bank-a": "very-secret-bank-key"}')
    from shared.domain.errors import ConfigurationError
    from shared.domain.settings import get_settings

    with pytest.raises(ValidationError) as raw:
        Settings()
    assert "very-secret" not in str(raw.value)  # pydantic's message, as a traceback would print it
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError) as refused:
            get_settings()  # what the app calls: a reason with names and rules only
    finally:
        get_settings.cache_clear()
    assert "storage points at Azurite" in refused.value.reason
    assert "very-secret" not in refused.value.reason and refused.value.__cause__ is None


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("FL_ADMIN_KEY", "local-admin-key", "FL_ADMIN_KEY is the example key"),
        ("ADMIN_KEY", "local-governance-key", "ADMIN_KEY is the example key"),
        ("FL_BANK_KEYS", '{"bank-a": "local-key-a"}', "FL_BANK_KEYS is set; bank keys belong in Key Vault"),
    ],
)
def test_production_refuses_the_example_keys(monkeypatch, name, value, reason):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "stfraudopsprod")
    monkeypatch.setenv("CUSTOMER_PSEUDONYM_KEY", "a-pseudonym-key-of-our-own")
    monkeypatch.setenv("AUDIT_CHAIN_KEY", "an-audit-chain-key-of-our-own")
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=reason):
        Settings()
