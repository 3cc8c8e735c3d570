"""``fraudops``: the system without the Functions host.

This module is the parser and the dispatch, and the one home of the exit-status rule; the commands live
in ``cli/commands/``, one module per group. ``fraudops --help`` (this parser) is the CLI reference.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from typing import NoReturn

from cli.commands import behaviour, contracts, data, federated, governance, model, serving
from cli.commands.command import EXIT_FAILED, EXIT_REJECTED, CommandError, Summary, UsageError, storage_failure
from cli.output import OUTPUTS, Output, emit
from cli.progress import ProgressLine

__all__ = ["EVERYWHERE", "EXIT_FAILED", "EXIT_REJECTED", "CommandError", "build_parser", "main"]

log = logging.getLogger("fraudops")

DESCRIPTION = "fraudops: the fraud-detection system without the Functions host (local Azurite, or Azure)."

EPILOG = """\
output:
  Each command prints its summary on stdout: aligned text on a terminal, one JSON line otherwise
  (a pipe, a file), so scripts can read the last line of stdout as JSON. --output table|json chooses.
  Progress of long work (uploads, ETL parts, training steps and trials, replay, erasure) is drawn on
  stderr when stderr is a terminal, and is silent otherwise.

exit status:
  0  done
  1  failed: the command ran and could not finish (a domain error, storage unreachable or refusing
     its credentials, a broken audit chain)
  2  unusable input: a bad argument or number, a missing file, a malformed setting (such as the
     storage connection string), a rejected file; nothing was changed
  130 interrupted (Ctrl-C)
  On 1 and 2, one line on stderr gives the reason, prefixed with the command; -v adds the traceback
  of an unexpected error.

storage:
  The data's account is read from DataStorage__blobServiceUri (Entra ID), else
  AzureWebJobsStorage__accountName, else the connection string in DataStorage, else
  AzureWebJobsStorage, else the local Azurite. A storage that does not answer within a few seconds is
  retried once (said on stderr), then named with the setting it was read from."""

COMMAND_EPILOG = "exit status: 0 done, 1 failed, 2 unusable input (see fraudops --help)"

# in the order ``fraudops --help`` lists them
COMMANDS = (
    data.add_init,
    contracts.add_contract,
    behaviour.add_behaviour,
    data.add_generate,
    data.add_etl,
    model.add_train,
    model.add_drift,
    model.add_monitor,
    data.add_labels,
    data.add_replay,
    federated.add_federated,
    governance.add_models,
    governance.add_gdpr,
    governance.add_audit,
    serving.add_serve,
    model.add_score,
    serving.add_demo,
)

DATASET_HELP = "the dataset (a contract in contracts/, or CONTRACTS_DIR); default: DATASET_NAME, else creditcard"
VERBOSE_HELP = "log at DEBUG level, and show the traceback of an unexpected error"
OUTPUT_HELP = "how the summary is printed on stdout: table (aligned text) or json (one line); default: table on a "
OUTPUT_HELP += "terminal, json otherwise (a pipe, a file)"
EVERYWHERE = frozenset({"-v", "--verbose", "--output", "--dataset"})  # accepted before and after any command


class Parser(argparse.ArgumentParser):
    """An argument error is one line (``fraudops generate: argument --rows: ...``) and exit 2, no usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_REJECTED, f"{self.prog}: {message} (see '{self.prog} --help')\n")


class HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default, unless its help already says it or there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or not action.option_strings
            or default in (None, False, argparse.SUPPRESS)
            or isinstance(action, argparse._VersionAction | argparse._HelpAction)
        ):
            return text
        return f"{text} (default: %(default)s)"


class RootFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """The root's epilog keeps its layout (the exit-status table)."""


def build_parser() -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = Parser(
        prog="fraudops", description=DESCRIPTION, epilog=EPILOG, formatter_class=RootFormatter
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}", help="print the version and exit")
    p.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    p.add_argument("--output", choices=OUTPUTS, help=OUTPUT_HELP)
    p.add_argument("--dataset", help=DATASET_HELP)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    for add in COMMANDS:
        add(sub)
    _everywhere(sub, "fraudops")
    return p


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fraudops")
    except PackageNotFoundError:  # run from a tree that was never installed
        return "unknown (not installed)"


def _everywhere(sub: argparse._SubParsersAction[argparse.ArgumentParser], path: str) -> None:
    """At every level: the global flags after the command too (``fraudops gdpr erase -v``), each command's help as
    its description, the defaults shown, and the exit-status line."""
    helps = {a.dest: a.help for a in sub._choices_actions}
    for name, command in sub.choices.items():
        command.formatter_class = HelpFormatter
        if command.description is None:
            command.description = helps.get(name)
        if command.epilog is None:
            command.epilog = COMMAND_EPILOG
        flags = command.add_argument_group("global options (also before the command)")
        flags.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
        flags.add_argument("--output", choices=OUTPUTS, default=argparse.SUPPRESS, help=OUTPUT_HELP)
        flags.add_argument("--dataset", default=argparse.SUPPRESS, help=DATASET_HELP)
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                _everywhere(action, f"{path} {name}")


def _choose_dataset(name: str | None) -> None:
    """Make ``name`` the dataset every setting reads (DATASET_NAME), after checking a contract declares it."""
    import os

    if name is None:
        return
    from shared.domain.contracts import UnknownDataset, get_contract
    from shared.domain.settings import get_settings

    try:
        get_contract(name)
    except UnknownDataset as exc:
        raise UsageError(str(exc)) from None
    os.environ["DATASET_NAME"] = name
    get_settings.cache_clear()


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or an argument error (already said in one line)
        return exc.code if isinstance(exc.code, int) else EXIT_REJECTED
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    name = " ".join(
        str(part)
        for part in (args.command, *(getattr(args, a, None) for a in sorted(vars(args)) if a.endswith("_command")))
        if part
    )
    return _run(args, name)


def _run(args: argparse.Namespace, name: str) -> int:
    from fraudops_bank.errors import BankError
    from shared.domain.errors import ConfigurationError, FraudOpsError
    from shared.domain.progress import watched

    line = ProgressLine()
    try:
        _choose_dataset(getattr(args, "dataset", None))
        with watched(line):
            summary = args.func(args)
        line.close()
        emit(summary, args.output)
    except CommandError as exc:
        return _fail(line, name, exc.reason, exc.code, exc.summary, args.output)
    except ConfigurationError as exc:  # the settings are refused: fix them
        return _fail(line, name, exc.reason, EXIT_REJECTED)
    except (FraudOpsError, BankError) as exc:
        return _fail(line, name, exc.reason, EXIT_FAILED)
    except KeyboardInterrupt:
        line.close()
        return 130
    except Exception as exc:
        known = _storage_failure(exc)
        if known is not None:
            return _fail(line, name, known.reason, known.code)
        line.close()
        if args.verbose:
            traceback.print_exc()
        hint = "" if args.verbose else " (run with -v for the traceback)"
        print(f"fraudops {name}: unexpected {type(exc).__name__}: {_first_line(exc)}{hint}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _storage_failure(exc: Exception) -> CommandError | None:
    try:
        return storage_failure(exc)
    except Exception:  # the settings themselves cannot be read: say the original error instead
        return None


def _fail(
    line: ProgressLine, name: str, reason: str, code: int, summary: Summary | None = None, output: Output | None = None
) -> int:
    """Say why on one line of stderr (after the summary, if the command had one) and return the exit status."""
    line.close()
    if summary is not None:
        emit(summary, output)
    print(f"fraudops {name}: {reason}", file=sys.stderr)
    return code


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


if __name__ == "__main__":
    sys.exit(main())
