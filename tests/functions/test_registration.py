"""Importing function_app registers every function with consistent bindings and settings."""

from __future__ import annotations

import inspect
import json
import re

from shared.settings import Settings
from tests.conftest import ROOT
from tests.functions.host import host_functions as _functions

EXAMPLE = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]



def test_every_trigger_is_registered():
    fns = _functions()
    kinds = {name: {b.type for b in f.get_bindings()} for name, f in fns.items()}
    assert kinds == {
        "http_app_func": {"httpTrigger", "http"},
        "etl_raw_blob": {"blobTrigger"},
        "retrain_model": {"timerTrigger"},
        "score_stream": {"eventHubTrigger"},
    }
    stream = _trigger_json(fns["score_stream"])
    assert stream["cardinality"].lower() == "many" and stream["eventHubName"] == "%EVENTHUB_NAME%"
    timer = _trigger_json(fns["retrain_model"])
    assert timer["schedule"] == "%RETRAIN_SCHEDULE%" and not timer.get("runOnStartup")
    blob = _trigger_json(fns["etl_raw_blob"])
    assert blob["path"] == "raw/{name}" and blob["source"] == "LogsAndContainerScan"


def _trigger_json(f) -> dict:
    """The trigger as the host reads it (the function.json the worker reports)."""
    return next(b for b in json.loads(f.get_function_json())["bindings"] if b["type"].endswith("Trigger"))


def test_binding_names_match_handler_parameters():
    for name, f in _functions().items():
        params = set(inspect.signature(f.get_user_function()).parameters)
        for binding in f.get_bindings():
            if binding.name != "$return":
                assert binding.name in params, f"{name}: binding {binding.name} is not a parameter"


def test_every_setting_a_binding_names_is_in_the_example():
    for name, f in _functions().items():
        for d in json.loads(f.get_function_json())["bindings"]:
            if "connection" in d:
                assert d["connection"] in EXAMPLE, f"{name}: connection {d['connection']} missing"
            for value in d.values():
                for setting in re.findall(r"%([^%]+)%", str(value)):
                    assert setting in EXAMPLE, f"{name}: %{setting}% missing from local.settings.json.example"


def test_every_settings_field_is_in_the_example():
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names = alias.choices if hasattr(alias, "choices") else [alias]
        assert any(n in EXAMPLE for n in names) or "__" in str(names[0]), f"{names} missing from the example"
