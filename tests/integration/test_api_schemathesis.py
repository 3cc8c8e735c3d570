"""Schemathesis against the OpenAPI document of the running app: no server errors, no off-schema responses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli.devtools.models import publish_synthetic_model
from cli.server import running_server

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def _schemathesis(url: str, mode: str, max_examples: int, *options: str) -> None:
    """Run schemathesis against the server's OpenAPI document; fail with its report unless every check passed."""
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{url}/api/openapi.json",
            "--mode",
            mode,
            "--max-examples",
            str(max_examples),
            "--seed",
            "1",
            "--no-color",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
    assert "passed" in run.stdout and "generated" in run.stdout


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_schemathesis_finds_no_server_error_and_no_off_schema_response(store, settings, monkeypatch, mode):
    from tests.conftest import clear_caches

    monkeypatch.setenv("MODEL_REFRESH_SECONDS", "0")
    clear_caches()
    publish_synthetic_model(store, settings.model_name, version="v1", trees=20)
    with running_server() as url:
        # Every check, positive_data_acceptance included: the text/csv body's schema is a pattern of what the
        # server parses (issue 19, finding 13: it used to be any string, so schema-valid bodies were refused).
        _schemathesis(url, mode, 40)
    clear_caches()


@pytest.mark.slow
def test_every_schema_valid_federated_request_is_accepted_or_refused_only_for_auth_or_state(
    store, settings, monkeypatch
):
    """Positive mode with every check on the federated routes: the document says exactly what the server takes.

    A schema-valid request may be refused only as unsigned (401), for a round that does not exist (404) or
    a state conflict (409); before, X-FL-Examples and X-FL-Metrics were declared looser than they were parsed.
    """
    import json

    import numpy as np

    from api.federated import rounds_for
    from shared.domain.settings import get_settings
    from tests.conftest import clear_caches

    monkeypatch.setenv("FL_BANK_KEYS", json.dumps({"bank-a": "key-a"}))
    monkeypatch.setenv("FL_ADMIN_KEY", "admin-secret")
    clear_caches()
    rounds_for(get_settings()).start({"coef": np.zeros(29, np.float32), "intercept": np.zeros(1, np.float32)})
    with running_server() as url:
        _schemathesis(url, "positive", 40, "--include-path-regex", "^/api/federated")
    clear_caches()
