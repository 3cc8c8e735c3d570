"""The composition root: each client and service is built once per settings, on first use; reset forgets them."""

from __future__ import annotations

import pytest

from shared.bootstrap import Services, bootstrap, reset
from shared.domain.settings import Settings


@pytest.fixture
def settings(monkeypatch) -> Settings:
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv("DataStorage", "UseDevelopmentStorage=true")
    reset()
    yield Settings()
    reset()


def test_nothing_is_built_until_it_is_used(settings):
    services = bootstrap(settings)
    assert isinstance(services, Services) and services.settings is settings
    assert services._built == {}  # no client, no I/O: a command that needs the store alone builds the store alone


def test_each_member_is_built_once_and_shared(settings):
    from shared.domain.contracts import use_stored

    services = bootstrap(settings)
    assert bootstrap(settings) is services
    use_stored(None)  # no storage runs in this tier: the shipped contracts, not 17 s of retries against none
    store = services.blob_store
    assert services.blob_store is store and services.model_store.store is store
    scorer = services.scorer
    assert services.scorer is scorer and scorer.models.store is store
    assert scorer.refresh_seconds == settings.model_refresh_seconds
    assert services.bank_keys is services.bank_keys


def test_equal_settings_share_a_root_and_other_settings_have_their_own(settings):
    assert bootstrap(settings.model_copy()) is bootstrap(settings)
    other = settings.model_copy(update={"model_name": "another-model"})
    assert bootstrap(other) is not bootstrap(settings)
    assert bootstrap(other).model_store.model_name == "another-model"


def test_recording_switched_off_is_the_null_recorder(settings):
    from shared.scoring.recorder import NullRecorder

    off = settings.model_copy(update={"predictions_record": False})
    assert isinstance(bootstrap(off).recorder, NullRecorder)


def test_reset_forgets_every_root(settings):
    before = bootstrap(settings)
    store = before.blob_store
    reset()
    after = bootstrap(settings)
    assert after is not before and after.blob_store is not store


def test_the_request_path_reads_views_built_once(settings):
    services = bootstrap(settings)
    assert services.scoring is services.scoring and services.scoring == settings.scoring
    assert services.pseudonymise is services.pseudonymise
    assert services.pseudonymise("customer-1") == services.pseudonymise("customer-1") != "customer-1"
