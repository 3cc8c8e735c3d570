"""The bank client: its secrets, and waiting for a round to close between rounds (fake HTTP, fake clock)."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from azure.core.exceptions import ResourceNotFoundError

from fraudops_bank import credentials
from fraudops_bank.client import Backoff, BankClient, RoundWaitTimeout, Safeguards
from fraudops_bank.contract import Columns
from fraudops_bank.errors import CredentialsError, ParametersError, ServedModelRefusedError
from fraudops_bank.served import ServedPolicy
from fraudops_bank.wire import to_wire


class FakeClock:
    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _client(statuses: list[str], clock: FakeClock) -> tuple[BankClient, list[str]]:
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        return httpx.Response(200, json={"round": 4, "status": status, "participants": ["bank-a"], "min_clients": 3})

    http = httpx.Client(base_url="https://app.example", transport=httpx.MockTransport(answer))
    return BankClient(http, "bank-a", b"k", sleep=clock.sleep, clock=lambda: clock.now), asked


def test_waits_with_growing_capped_delays_until_the_round_closes(caplog):
    clock = FakeClock()
    client, asked = _client(["open"] * 6 + ["aggregating", "closed"], clock)
    with caplog.at_level("INFO"):
        state = client.wait_until_closed(
            4, timeout=600, backoff=Backoff(first=1, factor=2, cap=8, jitter=0), rng=random.Random(0)
        )
    assert state["status"] == "closed" and set(asked) == {"/api/federated/rounds/4"}
    assert clock.sleeps == [1, 2, 4, 8, 8, 8, 8]
    assert "1 of 3 updates are in" in caplog.text and "aggregating" in caplog.text


def test_gives_up_after_the_timeout_with_a_reason():
    clock = FakeClock()
    client, _ = _client(["open"], clock)
    with pytest.raises(RoundWaitTimeout, match=r"round 4 did not close within 30 s \(1 of 3 updates are in"):
        client.wait_until_closed(4, timeout=30, backoff=Backoff(first=5, jitter=0))
    assert sum(clock.sleeps) == pytest.approx(30)  # the last wait is cut to the deadline, never past it


def test_jitter_stays_within_its_band():
    delays = Backoff(first=10, factor=1, cap=10, jitter=0.1).delays(random.Random(3))
    assert all(9 <= next(delays) <= 11 for _ in range(200))


def test_credentials_from_the_environment_name_what_is_missing():
    with pytest.raises(CredentialsError, match="FL_BANK_KEY and FRAUDOPS_FUNCTION_KEY"):
        credentials.from_environment({})
    with pytest.raises(CredentialsError, match="set FRAUDOPS_FUNCTION_KEY"):
        credentials.from_environment({"FL_BANK_KEY": "b"})
    creds = credentials.from_environment({"FL_BANK_KEY": "b", "FRAUDOPS_FUNCTION_KEY": "f"})
    assert (creds.bank_key, creds.function_key) == (b"b", "f") and "b" not in repr(creds).replace("bank", "")


class FakeVault:
    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets, self.asked = secrets, []

    def get_secret(self, name: str) -> SimpleNamespace:
        self.asked.append(name)
        if name not in self.secrets:
            raise ResourceNotFoundError(f"A secret with (name/id) {name} was not found in this key vault.")
        return SimpleNamespace(value=self.secrets[name])


def test_credentials_from_key_vault():
    vault = FakeVault({"fl-bank-key": "bank-secret", "fraudops-function-key": "fn-key"})
    creds = credentials.from_key_vault("https://bank.vault.azure.net", client=vault)
    assert (creds.bank_key, creds.function_key) == (b"bank-secret", "fn-key")
    assert vault.asked == ["fl-bank-key", "fraudops-function-key"]


def test_a_missing_key_vault_secret_is_named():
    vault = FakeVault({"fl-bank-key": "bank-secret"})
    with pytest.raises(
        CredentialsError, match="could not read secret fraudops-function-key from https://v: ResourceNotFoundError"
    ):
        credentials.from_key_vault("https://v", client=vault)


class _NoEngine:
    rows = 10
    frauds = 2
    columns = Columns(tuple(f"V{i}" for i in range(1, 30)), "y")

    def statistics(self):
        return {
            "count": np.array([10.0], np.float32),
            "sum": np.zeros(29, np.float32),
            "sumsq": np.ones(29, np.float32),
        }

    def train(self, *args, **kwargs):
        raise AssertionError("a bank whose update is in must not train again")


def _round_zero_server(participants: dict, columns: Columns = _NoEngine.columns) -> tuple[BankClient, list[str]]:
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(f"{request.method} {request.url.path}")
        if request.url.path == "/api/federated/model":
            named = {"features": list(columns.features), "label": columns.label}
            meta = json.dumps({"round": 0, "kind": "statistics", "mode": "visible", **named})
            body = to_wire(
                {"count": np.zeros(1, np.float32), "sum": np.zeros(29, np.float32), "sumsq": np.zeros(29, np.float32)}
            )
            return httpx.Response(200, content=body, headers={"x-fl-metadata": meta})
        if request.method == "GET":
            return httpx.Response(200, json={"round": 0, "status": "open", "participants": participants})
        return httpx.Response(202, json={"round": 0, "status": "open"})

    http = httpx.Client(base_url="https://app.example", transport=httpx.MockTransport(answer))
    lenient = Safeguards(policy=ServedPolicy(min_rows=1, min_frauds=1), allow_visible=True)
    return BankClient(http, "bank-a", b"k" * 32, safeguards=lenient), asked


def test_a_rerun_while_the_round_is_open_sends_nothing_again():
    client, asked = _round_zero_server({"bank-a": {"examples": 10, "metrics": {}}})
    round_number, state = client.take_part(_NoEngine())
    assert (round_number, state) == (0, {"status": "open", "already_sent": True})
    assert not [a for a in asked if a.startswith("POST")]  # no second update, so no 409 for a job's rerun


def test_a_bank_not_yet_in_the_round_sends_its_update():
    client, asked = _round_zero_server({"bank-b": {"examples": 10, "metrics": {}}})
    client.take_part(_NoEngine())
    assert asked[-1] == "POST /api/federated/rounds/0/updates"


def test_a_round_naming_other_columns_than_the_table_was_opened_with_sends_nothing():
    """The experiment's contract changed under a running client: its table's rows would mean other things."""
    client, asked = _round_zero_server({}, columns=Columns(("amount", "hour"), "y"))
    with pytest.raises(ParametersError, match="names other columns than this bank's table was opened with"):
        client.take_part(_NoEngine())
    assert not [a for a in asked if a.startswith("POST")]


def test_a_round_that_is_not_secure_is_refused_unless_the_bank_allows_visible_rounds():
    """A hostile server that serves a visible round to skip secure aggregation: the bank sends nothing."""
    client, asked = _round_zero_server({})
    client.safeguards = Safeguards(policy=ServedPolicy(min_rows=1, min_frauds=1))
    with pytest.raises(ServedModelRefusedError, match="not a secure round: the server would see this bank's update"):
        client.take_part(_NoEngine())
    assert not [a for a in asked if a.startswith("POST")]


def test_a_hostile_metadata_header_is_refused_with_a_reason_not_a_traceback():
    def answer(request: httpx.Request) -> httpx.Response:
        body = to_wire({"count": np.zeros(1, np.float32)})
        return httpx.Response(200, content=body, headers={"x-fl-metadata": '{"round": Infinity, "kind": "model"}'})

    client = BankClient(httpx.Client(base_url="https://app.example", transport=httpx.MockTransport(answer)), "b", b"k")
    with pytest.raises(ParametersError, match="X-FL-Metadata header is missing or malformed"):
        client.model()


def test_a_bank_creates_its_identity_once_and_writes_a_roster_that_checks_signatures(tmp_path, capsys):
    import os
    import stat

    from fraudops_bank.roster import Roster, RosterError, sign, unb64
    from fraudops_bank.run import main

    key_file = tmp_path / "bank-a.identity"
    assert main(["identity", "--out", str(key_file)]) == 0
    public = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["public_key"]
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert main(["identity", "--out", str(key_file)]) == 1  # never overwritten: its public half is in the roster
    assert "never overwritten" in capsys.readouterr().err
    roster_file = tmp_path / "roster.json"
    assert main(["roster", "--server", public, "--bank", f"Bank-A={public}", "--out", str(roster_file)]) == 0
    roster = Roster.load(roster_file)
    private = unb64(key_file.read_text().strip(), what="key", size=32)
    roster.check_bank("bank-a", b"message", sign(private, b"message"))
    with pytest.raises(RosterError, match="not signed by the key the roster pins"):
        roster.check_bank("bank-a", b"another message", sign(private, b"message"))
    with pytest.raises(RosterError, match="not in this bank's roster"):
        roster.check_bank("bank-z", b"message", sign(private, b"message"))
    assert main(["roster", "--server", "nope", "--bank", "bank-a", "--out", str(roster_file)]) == 1
    assert "--bank takes ID=KEY" in capsys.readouterr().err
