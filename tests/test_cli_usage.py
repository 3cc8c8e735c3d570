"""fraudops explains itself: help on every command and option, --version, global flags anywhere, one exit-status
rule with a one-line reason and no traceback for each input mistake, storage failures naming the setting read,
--output, the progress line, and the gdpr command's ids, dry run and private answer."""

from __future__ import annotations

import argparse
import io
import json
import os
import stat
import subprocess
import sys
import time

import pytest

from cli.devtools.azurite import ACCOUNT_KEY, connection_string
from tests.conftest import ROOT, clear_caches


def _commands(parser: argparse.ArgumentParser, path: str = "fraudops"):
    """Every (path, parser) of the tree, the root included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _commands(child, f"{path} {name}")


def _fails(capsys, argv: list[str], code: int, *needles: str) -> str:
    """Run ``fraudops argv`` in-process: its status is ``code`` and stderr's last line, the reason, holds every
    needle; no traceback. The reason line."""
    from cli.main import main

    capsys.readouterr()
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    reason = err.strip().splitlines()[-1]
    assert reason.startswith("fraudops"), err
    for needle in needles:
        assert needle in reason, err
    return reason


def _closed_port() -> int:
    from cli.server import free_port

    return free_port()  # free a moment ago, and nothing listens on it


@pytest.fixture
def no_storage_env(monkeypatch):
    for name in (
        "DataStorage",
        "AzureWebJobsStorage",
        "DataStorage__blobServiceUri",
        "AzureWebJobsStorage__accountName",
    ):
        monkeypatch.delenv(name, raising=False)
    clear_caches()
    yield monkeypatch
    clear_caches()


# ---- the parser: the CLI reference ------------------------------------------------------------------------------


def test_every_command_and_option_has_help_and_shows_its_default():
    from cli.main import build_parser

    for path, parser in _commands(build_parser()):
        assert parser.description, f"{path} has no description"
        text = parser.format_help()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {a.dest: a.help for a in action._choices_actions}
                assert all(helps.get(name) for name in action.choices), f"{path}: a subcommand without help"
                continue
            assert action.help and action.help != argparse.SUPPRESS, f"{path} {action.option_strings or action.dest}"
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
                assert "default" in (parser._get_formatter()._expand_help(action)), f"{path} {action.option_strings}"
        assert "exit status" in text, path


def test_the_root_help_documents_the_exit_statuses_and_version_prints(capsys):
    from cli.main import build_parser, main

    text = build_parser().format_help()
    assert "0  done" in text and "1  failed" in text and "2  unusable input" in text and "--output" in text
    assert main(["--version"]) == 0
    from importlib.metadata import version

    assert capsys.readouterr().out.strip() == f"fraudops {version('fraudops')}"


@pytest.mark.parametrize(
    "argv",
    [["-v", "gdpr", "resume"], ["gdpr", "resume", "-v"], ["gdpr", "-v", "resume"], ["gdpr", "resume", "--verbose"]],
)
def test_verbose_and_output_are_taken_before_and_after_the_command(argv):
    from cli.main import build_parser

    args = build_parser().parse_args([*argv, "--output", "table"])
    assert args.verbose is True and args.output == "table" and args.gdpr_command == "resume"
    assert build_parser().parse_args(["gdpr", "resume"]).verbose is False


# ---- input mistakes: exit 2, one line, no traceback ------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["generate", "--rows", "-5", "--out", "x.csv"], ("--rows", "-5 is not at least 1")),
        (["generate", "--rows", "many", "--out", "x.csv"], ("--rows", "'many' is not a whole number")),
        (["replay", __file__, "--batch", "0"], ("--batch",)),
        (["replay", __file__, "--rate", "-1"], ("--rate",)),
        (["federated", "simulate", "--banks", "0"], ("--banks",)),
        (["serve", "--port", "http"], ("--port",)),
        (["etl", "/nonexistent/tx.csv"], ("fraudops etl:", "/nonexistent/tx.csv does not exist")),
        (["labels", "/nonexistent/labels.csv"], ("fraudops labels:", "/nonexistent/labels.csv does not exist")),
        (["score", "/nonexistent/tx.csv", "--out", "s.csv"], ("/nonexistent/tx.csv does not exist",)),
        (["replay", "/nonexistent/tx.csv"], ("/nonexistent/tx.csv does not exist",)),
        (["contract", "check", "/nonexistent/c.yaml"], ("does not exist",)),
        (["etl", str(ROOT)], ("is not a file",)),
        (["nosuchcommand"], ("invalid choice",)),
        (["gdpr", "erase"], ("one of the arguments --customer --customers-file is required",)),
        (["gdpr", "erase", "--customer", "a", "--customers-file", "-"], ("not allowed with",)),
        (["--dataset", "nosuchdataset", "init"], ("nosuchdataset",)),
    ],
)
def test_an_unusable_input_exits_2_with_one_line(capsys, no_storage_env, argv, needles):
    _fails(capsys, argv, 2, *needles)


def test_a_missing_file_is_2_for_every_command_that_reads_one(capsys, no_storage_env):
    """The issue's inconsistency: etl said 1, labels 2, for the same mistake."""
    codes = {}
    from cli.main import main

    for command in (["etl"], ["labels"], ["replay"], ["score"], ["contract", "check"]):
        extra = ["--out", "s.csv"] if command == ["score"] else []
        codes[command[0]] = main([*command, "/nonexistent/file.csv", *extra])
    assert set(codes.values()) == {2}, codes


def test_a_malformed_connection_string_exits_2_naming_the_setting(capsys, no_storage_env):
    no_storage_env.setenv("DataStorage", "not-a-connection-string-SECRETKEY")
    reason = _fails(capsys, ["init"], 2, "DataStorage", "connection string is not usable")
    assert "SECRETKEY" not in reason  # the string itself (a key, in real life) is never echoed


def test_the_gdpr_ids_file_must_exist_and_hold_an_id(capsys, no_storage_env, tmp_path):
    _fails(capsys, ["gdpr", "erase", "--customers-file", str(tmp_path / "none.txt")], 2, "--customers-file")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# only a comment\n")
    _fails(capsys, ["gdpr", "erase", "--customers-file", str(empty)], 2, "no customer id in")


# ---- storage that does not answer, or refuses: exit 1, the setting named, within seconds -------------------------


def test_unreachable_storage_names_the_setting_read_and_gives_up_within_seconds(no_storage_env, tmp_path):
    """DataStorage is read before AzureWebJobsStorage: with both set, the message names DataStorage (the issue's
    report named AzureWebJobsStorage after 87 seconds). One retry, said on stderr."""
    src = tmp_path / "x.csv"
    src.write_text("Time\n1\n")
    env = {
        **os.environ,
        "DataStorage": connection_string(_closed_port()),
        "AzureWebJobsStorage": connection_string(_closed_port()),
    }
    started = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "cli.main", "etl", str(src)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert "storage did not answer" in lines[0] and "retry 1" in lines[0]
    assert "is not reachable" in lines[-1] and "read from DataStorage" in lines[-1]
    assert "AzureWebJobsStorage" not in lines[-1]
    assert elapsed < 15, elapsed  # a connect timeout of seconds, one retry after 1 s (and Python's start)


def test_unreachable_storage_read_from_the_host_setting_names_that_one(capsys, no_storage_env):
    no_storage_env.setenv("AzureWebJobsStorage", connection_string(_closed_port()))
    started = time.monotonic()
    _fails(capsys, ["init"], 1, "is not reachable", "read from AzureWebJobsStorage")
    assert time.monotonic() - started < 10


def test_wrong_storage_credentials_exit_1_naming_the_setting(capsys, azurite, monkeypatch):
    wrong = azurite.replace(ACCOUNT_KEY, "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==")
    assert wrong != azurite
    monkeypatch.setenv("DataStorage", wrong)
    clear_caches()
    try:
        _fails(capsys, ["init"], 1, "refused the credentials", "DataStorage")
    finally:
        clear_caches()


# ---- unexpected errors: one line, the traceback only with -v ------------------------------------------------------


def test_an_unexpected_error_is_one_line_and_its_traceback_only_with_verbose(capsys, monkeypatch):
    from cli.commands import data
    from cli.main import main

    def broken(_args):
        raise RuntimeError("something nobody planned for")

    monkeypatch.setattr(data, "cmd_init", broken)
    _fails(capsys, ["init"], 1, "unexpected RuntimeError: something nobody planned for", "-v")
    assert main(["init", "-v"]) == 1
    assert "Traceback" in capsys.readouterr().err


# ---- output -----------------------------------------------------------------------------------------------------


def test_output_is_json_when_not_a_terminal_and_a_table_when_asked(capsys, no_storage_env):
    from cli.main import main

    contract = str(ROOT / "contracts" / "creditcard.yaml")
    assert main(["contract", "check", contract]) == 0  # capsys: not a terminal
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["contract", "check", contract, "--output", "table"]) == 0
    table = capsys.readouterr().out
    assert not table.lstrip().startswith("{")
    first = next(k for k, v in doc.items() if not isinstance(v, dict | list))
    assert any(line.split()[0] == first for line in table.splitlines() if line.strip())
    assert main(["--output", "json", "contract", "check", contract]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == doc


def test_a_table_shows_fields_and_records():
    from cli.output import render_table

    text = render_table(
        {"champion": "v2", "ok": True, "drift": {"psi": 0.1}, "versions": [{"version": "v1"}, {"version": "v2"}]}
    )
    lines = text.splitlines()
    assert lines[0].split() == ["champion", "v2"] and lines[1].split() == ["ok", "yes"]
    assert lines[2].split() == ["drift.psi", "0.1"]
    assert "versions:" in lines and lines[-2:] == ["v1", "v2"]


def test_the_default_output_follows_the_terminal():
    from cli.output import default_output

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert default_output(Tty()) == "table" and default_output(io.StringIO()) == "json"


# ---- progress ----------------------------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal_and_silent_otherwise():
    from cli.progress import ProgressLine
    from shared.domain.progress import report, watched

    quiet, shown = io.StringIO(), _Terminal()
    for stream in (quiet, shown):
        line = ProgressLine(stream, every=0)
        with watched(line):
            report("upload", 512 << 20, 1 << 30)
            report("search trials", 3, 20)
        line.close()
    report("upload", 1, 2)  # nobody watches: nothing happens
    assert quiet.getvalue() == ""
    assert "upload: 512.0 MB of 1.0 GB (50%)" in shown.getvalue() and "search trials: 3/20" in shown.getvalue()


def test_a_command_draws_no_progress_when_stderr_is_not_a_terminal(capsys, tmp_path):
    from cli.main import main

    assert main(["generate", "--rows", "50", "--out", str(tmp_path / "g.csv")]) == 0
    assert "\r" not in capsys.readouterr().err


# ---- gdpr: ids off the command line, a dry run that changes nothing, a private answer --------------------------


def _snapshot(store) -> dict[str, str]:
    from shared.adapters.storage import CONTAINERS

    return {f"{c}/{b.name}": b.etag for c in CONTAINERS for b in store.service.get_container_client(c).list_blobs()}


def _landed_customers(store, settings) -> None:
    from shared.domain.contracts import get_contract
    from shared.etl.service import run_etl

    features = [c for c in get_contract("creditcard").feature_names if c not in ("Time", "Amount")]
    header = ",".join(["Time", *features, "Amount", "Class", "transaction_id", "customer_id"])
    rows = [f"{t},{','.join(['0.1'] * 28)},{t + 4},0,etl-{t},{c}" for t, c in ((1, "ann"), (2, "ben"), (3, "ann"))]
    store.put_bytes("raw", "bank.csv", ("\n".join([header, *rows]) + "\n").encode())
    assert run_etl(store, settings.etl, name="bank.csv").rows_valid == 3


def test_erase_dry_run_reads_ids_from_stdin_and_changes_nothing(store, settings, capsys, monkeypatch):
    from cli.main import main

    _landed_customers(store, settings)
    before = _snapshot(store)
    monkeypatch.setattr("sys.stdin", io.StringIO("ann\n\n# a comment\nben\nann\n"))
    capsys.readouterr()
    assert main(["gdpr", "erase", "--customers-file", "-", "--dry-run"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["customers"] == 2
    ann, ben = summary["erasures"]
    assert ann["dry_run"] and ann["records"] == 2 and ben["records"] == 1
    assert any(place.startswith("curated/") for place in ann["places"])
    assert _snapshot(store) == before  # no request, no claim, no rewrite, no audit line


def test_access_reads_the_id_from_a_file_and_writes_a_private_answer(store, settings, capsys, tmp_path):
    from cli.main import main

    _landed_customers(store, settings)
    ids = tmp_path / "ids.txt"
    ids.write_text("ann\n")
    out = tmp_path / "answer.json"
    out.write_text("an older, world-readable answer")
    out.chmod(0o644)
    capsys.readouterr()
    assert main(["gdpr", "access", "--customers-file", str(ids), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["records"] == 4  # two curated rows, and the landed file's two
    for written in (out, out.with_suffix(".html")):
        assert stat.S_IMODE(written.stat().st_mode) == 0o600, written
    ids.write_text("ann\nben\n")
    _fails(capsys, ["gdpr", "access", "--customers-file", str(ids), "--out", str(out)], 2, "one customer at a time")
