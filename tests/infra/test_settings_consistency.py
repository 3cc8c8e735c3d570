"""Bicep app settings, function bindings, the Settings class and local.settings.json.example agree.

A setting named on one side and missing on the other fails, unless infra/settings-exceptions.json
says why (local-only, optional, or read by the platform rather than the app).
"""

from __future__ import annotations

import json
import re

import pytest

from shared.domain.settings import Settings
from tests.conftest import ROOT
from tests.functions.host import host_functions
from tests.infra.conftest import INFRA

EXCEPTIONS = json.loads((INFRA / "settings-exceptions.json").read_text())
LOCAL_ONLY, OPTIONAL, PLATFORM = (set(EXCEPTIONS[k]) for k in ("local_only", "optional", "platform"))
EXAMPLE = set(json.loads((ROOT / "local.settings.json.example").read_text())["Values"])


def _settings_class_names() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.update(alias.choices if hasattr(alias, "choices") else [alias])  # type: ignore[union-attr]
    return {str(n) for n in names}


def _binding_settings() -> tuple[set[str], set[str]]:
    """(connection names, %SETTING% names) used by every registered function's bindings."""
    connections: set[str] = set()
    percent: set[str] = set()
    for f in host_functions().values():
        for binding in json.loads(f.get_function_json())["bindings"]:
            if "connection" in binding:
                connections.add(binding["connection"])
            for value in binding.values():
                percent.update(re.findall(r"%([^%]+)%", str(value)))
    return connections, percent


def _app_settings(bicep, role: str) -> set[str]:
    variables = bicep["modules/functionapp.bicep"]["variables"]
    return set(variables["commonSettings"]) | set(variables[f"{role}Settings"])


@pytest.fixture(scope="module")
def bicep_settings(bicep) -> set[str]:
    """Every setting the Bicep sets, in either app."""
    return _app_settings(bicep, "scoring") | _app_settings(bicep, "pipeline")


def _is_set(name: str, settings: set[str]) -> bool:
    """A connection is set by its value or by identity-based ``NAME__...`` entries."""
    return name in settings or any(s.startswith(f"{name}__") for s in settings)


def test_every_binding_connection_and_percent_setting_is_set_by_the_bicep(bicep_settings):
    connections, percent = _binding_settings()
    assert connections and percent  # the bindings were read
    for name in sorted(connections | percent):
        assert _is_set(name, bicep_settings), f"binding setting {name} is not set by functionapp.bicep"
        assert name in EXAMPLE, f"binding setting {name} is missing from local.settings.json.example"


@pytest.mark.parametrize("role", ["scoring", "pipeline"])
def test_each_apps_bindings_find_their_settings_in_that_app(bicep, role):
    """The host refuses a function whose connection or %SETTING% its own app lacks: each app, its own functions."""
    from functions import apps

    for function in getattr(apps, role)().get_functions():
        for binding in json.loads(function.get_function_json())["bindings"]:
            names = re.findall(r"%([^%]+)%", json.dumps(binding)) + [binding.get("connection")] * (
                "connection" in binding
            )
            for name in names:
                assert _is_set(name, _app_settings(bicep, role)), (
                    f"the {role} app's {function.get_function_name()} needs {name}"
                )


def test_the_scoring_app_gets_no_secret_but_the_pseudonym_key(bicep):
    variables = bicep["modules/functionapp.bicep"]["variables"]
    scoring = {**variables["commonSettings"], **variables["scoringSettings"]}
    secrets = {name for name, value in scoring.items() if "Microsoft.KeyVault" in str(value)}
    assert secrets == {"CUSTOMER_PSEUDONYM_KEY"}
    assert "sharedKeyVaultUri" in str(scoring["CUSTOMER_PSEUDONYM_KEY"])
    assert not {"ADMIN_KEY", "FL_ADMIN_KEY", "AUDIT_CHAIN_KEY", "FL_SERVER_SIGNING_KEY", "KEY_VAULT_URL"} & set(scoring)


def test_every_setting_the_app_reads_is_set_by_the_bicep_or_explained(bicep_settings):
    for name in sorted(_settings_class_names()):
        assert name in bicep_settings or name in LOCAL_ONLY | OPTIONAL, (
            f"Settings reads {name}, which functionapp.bicep does not set; set it or explain it in "
            "infra/settings-exceptions.json"
        )
        assert name in EXAMPLE, f"Settings reads {name}, which local.settings.json.example lacks"


def test_every_bicep_setting_is_read_by_the_app_or_the_platform(bicep_settings):
    connections, percent = _binding_settings()
    known = _settings_class_names() | percent | PLATFORM
    for name in sorted(bicep_settings):
        prefix = name.split("__")[0]
        assert name in known or prefix in connections, (
            f"functionapp.bicep sets {name}, which neither the app nor the platform reads"
        )


def test_every_example_setting_is_read_somewhere():
    connections, percent = _binding_settings()
    known = _settings_class_names() | percent | connections | PLATFORM | LOCAL_ONLY
    assert not EXAMPLE - known, f"local.settings.json.example names unknown settings: {EXAMPLE - known}"


def test_exceptions_do_not_hide_settings_the_bicep_sets(bicep_settings):
    assert not (LOCAL_ONLY | OPTIONAL) & bicep_settings
    assert bicep_settings >= PLATFORM


def test_every_example_setting_is_documented_in_the_settings_reference():
    """The hand-written settings table (docs/reference/settings.md, moved from the README in issue 42) names
    every setting of local.settings.json.example; tests/test_docs.py checks the generated one has every field."""
    page = (ROOT / "docs" / "reference" / "settings.md").read_text()
    undocumented = sorted(name for name in EXAMPLE if f"`{name}`" not in page)
    assert not undocumented, f"docs/reference/settings.md does not mention these settings: {undocumented}"
