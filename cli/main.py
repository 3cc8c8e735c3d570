"""``fraudops``: the system without the Functions host.

Every command prints a one-line JSON summary as its last line of stdout, exits 0 on success,
and on failure prints one line with the reason to stderr and exits non-zero (2 for input
that can never succeed, such as a rejected file; 1 for anything else).

This module is the parser and the dispatch; the commands live in ``cli/commands/``, one module per group.
"""

from __future__ import annotations

import argparse
import logging
import sys

from cli.commands import behaviour, contracts, data, federated, governance, model, serving
from cli.commands.command import EXIT_REJECTED, CommandError, emit

__all__ = ["EXIT_REJECTED", "CommandError", "build_parser", "main"]

log = logging.getLogger("fraudops")

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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fraudops", description=(__doc__ or "").splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    p.add_argument("--dataset", help=DATASET_HELP)
    sub = p.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    _dataset_everywhere(sub)
    return p


def _dataset_everywhere(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``--dataset`` after the command too (``fraudops gdpr erase --dataset ...``), at every level."""
    for command in sub.choices.values():
        command.add_argument("--dataset", default=argparse.SUPPRESS, help=DATASET_HELP)
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                _dataset_everywhere(action)


DATASET_HELP = "the dataset (a contract in contracts/, or CONTRACTS_DIR); default: DATASET_NAME, else creditcard"


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
        raise CommandError(str(exc), EXIT_REJECTED) from None
    os.environ["DATASET_NAME"] = name
    get_settings.cache_clear()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    from azure.core.exceptions import ServiceRequestError

    from fraudops_bank.errors import BankError
    from shared.domain.errors import FraudOpsError

    try:
        _choose_dataset(getattr(args, "dataset", None))
        emit(args.func(args))
    except CommandError as exc:
        print(f"fraudops {args.command}: {exc.reason}", file=sys.stderr)
        return exc.code
    except (FraudOpsError, BankError) as exc:
        print(f"fraudops {args.command}: {exc.reason}", file=sys.stderr)
        return 1
    except ServiceRequestError as exc:
        print(
            f"fraudops {args.command}: storage is not reachable ({type(exc).__name__}); start Azurite with "
            "'make azurite' or set AzureWebJobsStorage",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
