"""Settings per concern: every setting belongs to a concern's view (or is read by the host alone), and each
view carries the settings' own values under the same names and types."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from shared.domain.config import CONCERNS, HOST_LEVEL
from shared.domain.settings import Settings


@pytest.fixture
def settings(monkeypatch) -> Settings:
    """Settings with values other than the defaults, so a view that read the wrong field would show it."""
    monkeypatch.setenv("MODEL_NAME", "fraud-model-under-test")
    monkeypatch.setenv("DATASET_NAME", "creditcard")
    monkeypatch.setenv("SCORE_MAX_BATCH", "17")
    monkeypatch.setenv("FL_ADMIN_KEY", "an-admin-key-for-the-test")
    monkeypatch.setenv("COST_FN", "123.5")
    monkeypatch.setenv("FL_MIN_CLIENTS", "5")
    return Settings()


def test_every_setting_belongs_to_a_concern_or_to_the_host():
    in_views = set().union(*(view.model_fields for view in CONCERNS.values()))
    fields = set(Settings.model_fields)
    assert fields - in_views - set(HOST_LEVEL) == set(), "a setting no concern receives: add it to a view"
    assert in_views - fields == set(), "a view names a field Settings does not have"
    assert set(HOST_LEVEL) <= fields and not set(HOST_LEVEL) & in_views


@pytest.mark.parametrize("concern", sorted(CONCERNS))
def test_a_view_has_the_settings_values_and_types(settings, concern):
    view = getattr(settings, concern)
    assert type(view) is CONCERNS[concern]
    for name, field in type(view).model_fields.items():
        assert field.annotation == Settings.model_fields[name].annotation, name
        given, expected = getattr(view, name), getattr(settings, name)
        if isinstance(expected, SecretStr):
            assert isinstance(given, SecretStr) and given.get_secret_value() == expected.get_secret_value(), name
        else:
            assert given == expected, name


def test_the_views_carry_the_values_set_here(settings):
    assert settings.scoring.score_max_batch == 17 and settings.scoring.model_name == "fraud-model-under-test"
    assert settings.training.cost_fn == 123.5 and settings.federated.fl_min_clients == 5
    admin = settings.federated.fl_admin_key
    assert admin is not None and admin.get_secret_value() == "an-admin-key-for-the-test"
