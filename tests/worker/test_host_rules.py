"""host.json and the Bicep say what the host does around our code; each value the code depends on is held here."""

from __future__ import annotations

import json
import re

from shared.domain.settings import Settings
from tests.conftest import ROOT

HOST = json.loads((ROOT / "host.json").read_text())
FUNCTION_APP_BICEP = (ROOT / "infra" / "modules" / "functionapp.bicep").read_text()
HOST_BODY_LIMIT = 100 * 1024 * 1024  # the host's default FUNCTIONS_REQUEST_BODY_SIZE_LIMIT (100 MB)


def _seconds(hms: str) -> int:
    h, m, s = (int(x) for x in hms.split(":"))
    return 3600 * h + 60 * m + s


def test_route_prefix_is_empty_because_every_route_already_starts_with_api():
    from api.app import create_app

    assert HOST["extensions"]["http"]["routePrefix"] == ""
    paths = set(create_app().openapi()["paths"])
    assert {"/api/score", "/api/health", "/api/federated/model"} <= paths
    assert all(p.startswith("/api/") for p in paths), sorted(paths)


def test_http_concurrency_matches_the_flex_consumption_setting():
    per_instance = re.search(r"param httpPerInstanceConcurrency int = (\d+)", FUNCTION_APP_BICEP)
    assert per_instance, "functionapp.bicep no longer declares httpPerInstanceConcurrency with a default"
    assert "perInstanceConcurrency: httpPerInstanceConcurrency" in FUNCTION_APP_BICEP
    http = HOST["extensions"]["http"]
    assert http["maxConcurrentRequests"] == int(per_instance.group(1))
    assert http["maxOutstandingRequests"] > http["maxConcurrentRequests"]


def test_request_bodies_the_app_accepts_fit_under_the_hosts_limit():
    defaults = Settings()
    assert defaults.score_max_body_bytes < HOST_BODY_LIMIT and defaults.fl_max_body_bytes < HOST_BODY_LIMIT


def test_retraining_finishes_inside_the_function_timeout():
    defaults = Settings()
    assert defaults.train_time_budget_seconds + defaults.train_search_seconds < _seconds(HOST["functionTimeout"])


def test_event_hubs_batches_are_checkpointed_one_at_a_time():
    """The processor's outputs are named by each batch's sequence range and written create-only, so a
    redelivery after a crash must be at most the last batch: checkpoint after every batch."""
    hubs = HOST["extensions"]["eventHubs"]
    assert hubs["batchCheckpointFrequency"] == 1
    assert 1 <= hubs["minEventBatchSize"] <= hubs["maxEventBatchSize"] <= Settings().score_max_batch


def test_extension_bundle_supports_sdk_type_blob_bindings():
    bundle = HOST["extensionBundle"]
    assert bundle["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    assert bundle["version"].startswith("[4.")  # deferred (SDK-type) bindings need bundle 4.x


def test_bicep_runs_the_python_the_venv_and_the_worker_tier_use():
    import sys

    version = re.search(r"runtime: \{ name: 'python', version: '([\d.]+)' \}", FUNCTION_APP_BICEP)
    assert version and version.group(1) == f"{sys.version_info.major}.{sys.version_info.minor}" == "3.13"
