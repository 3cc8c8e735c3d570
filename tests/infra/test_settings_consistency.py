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


@pytest.fixture(scope="module")
def bicep_settings(bicep) -> set[str]:
    return set(bicep["modules/functionapp.bicep"]["variables"]["appSettings"])


def _is_set(name: str, settings: set[str]) -> bool:
    """A connection is set by its value or by identity-based ``NAME__...`` entries."""
    return name in settings or any(s.startswith(f"{name}__") for s in settings)


def test_every_binding_connection_and_percent_setting_is_set_by_the_bicep(bicep_settings):
    connections, percent = _binding_settings()
    assert connections and percent  # the bindings were read
    for name in sorted(connections | percent):
        assert _is_set(name, bicep_settings), f"binding setting {name} is not set by functionapp.bicep"
        assert name in EXAMPLE, f"binding setting {name} is missing from local.settings.json.example"


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


def test_every_example_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    undocumented = sorted(name for name in EXAMPLE if f"`{name}`" not in readme)
    assert not undocumented, f"README.md does not mention these settings: {undocumented}"
