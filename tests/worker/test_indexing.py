"""The real worker indexes the app: every function, with the binding JSON the host receives.

``app.get_functions()`` is the library's view; the worker adds its own checks (annotations,
deferred SDK-type bindings) and refuses the whole app when one function fails them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

EXAMPLE = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]


def test_every_function_indexes(host):
    assert sorted(host.functions) == ["etl_raw_blob", "http_app_func", "monitor_daily", "retrain_model", "score_stream"]


def test_http_binding_needs_a_function_key_and_owns_every_route(host):
    fn = host.functions["http_app_func"]
    trigger = fn.trigger
    assert (trigger["type"], trigger["direction"], trigger["authLevel"]) == ("httpTrigger", "IN", "FUNCTION")
    assert trigger["route"].lstrip("/") == "{*route}"
    assert {"GET", "POST"} <= set(trigger["methods"])
    assert fn.binding("$return") == {"direction": "OUT", "type": "http", "name": "$return"}


def test_blob_binding_is_the_sdk_type_with_its_connection(host):
    trigger = host.functions["etl_raw_blob"].trigger
    assert (trigger["type"], trigger["name"], trigger["path"]) == ("blobTrigger", "client", "raw/{name}")
    assert trigger["connection"] == "DataStorage"  # the data account, not the host's own (infra/modules/roles.bicep)
    assert trigger["source"] in {"LogsAndContainerScan", "EventGrid"}
    # the host hands over a reference (ModelBindingData), never the blob's bytes through gRPC
    assert trigger["properties"] == {"SupportsDeferredBinding": True}


@pytest.mark.parametrize(
    ("function", "setting"), [("retrain_model", "%RETRAIN_SCHEDULE%"), ("monitor_daily", "%MONITOR_SCHEDULE%")]
)
def test_timer_binding_reads_its_schedule_from_a_setting(host, function, setting):
    trigger = host.functions[function].trigger
    assert trigger["schedule"] == setting and trigger["runOnStartup"] is False
    assert trigger["useMonitor"] is True


def test_event_hubs_binding_takes_batches(host):
    trigger = host.functions["score_stream"].trigger
    assert trigger["type"] == "eventHubTrigger" and trigger["cardinality"] == "MANY"
    assert (trigger["eventHubName"], trigger["consumerGroup"]) == ("%EVENTHUB_NAME%", "%EVENTHUB_CONSUMER_GROUP%")
    assert trigger["connection"] == "EVENTHUB"


def test_every_percent_setting_resolves_locally(host):
    """The host refuses a function whose %SETTING% is unset or empty; the example must give each a value."""
    names = {n for f in host.functions.values() for b in f.bindings for n in re.findall(r"%([^%]+)%", json.dumps(b))}
    assert names == {"RETRAIN_SCHEDULE", "MONITOR_SCHEDULE", "EVENTHUB_NAME", "EVENTHUB_CONSUMER_GROUP"}
    assert all(EXAMPLE.get(n) for n in names), {n: EXAMPLE.get(n) for n in names}


def _broken_copy(tmp_path, old: str, new: str):
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(ROOT / "function_app.py", app)
    shutil.copytree(ROOT / "functions", app / "functions", ignore=shutil.ignore_patterns("__pycache__"))
    stream = app / "functions" / "stream.py"
    text = stream.read_text()
    assert old in text, f"the blueprint no longer contains {old!r}: update this test"
    stream.write_text(text.replace(old, new))
    return app


def _index_in_new_process(app) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.worker.index_app", str(app)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_fresh_worker_process_indexes_an_unchanged_copy(tmp_path):
    outcome = _index_in_new_process(_broken_copy(tmp_path, "def score_stream", "def score_stream"))
    assert outcome["ok"], outcome["error"]
    assert len(outcome["functions"]) == 5


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        # the bug this tier was built for: PEP 585 generics on a binding parameter
        ("events: typing.List[func.EventHubEvent]", "events: list[func.EventHubEvent]", "invalid non-type annotation"),
        # a trigger parameter the handler does not have
        ('arg_name="events"', 'arg_name="batch"', "declared in Python but not in the function definition"),
    ],
)
def test_a_broken_blueprint_makes_the_worker_register_nothing(tmp_path, old, new, reason):
    outcome = _index_in_new_process(_broken_copy(tmp_path, old, new))
    assert not outcome["ok"] and outcome["functions"] == []
    assert reason in outcome["error"] and "score_stream" in outcome["error"], outcome["error"]
