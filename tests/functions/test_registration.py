"""Importing function_app registers every function with consistent bindings and settings."""

from __future__ import annotations

import inspect
import json

from tests.functions.host import host_functions as _functions


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
