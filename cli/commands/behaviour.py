"""``fraudops behaviour``: fill the online store from curated history (after a deployment, or once the store was
emptied), and say what it holds."""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING

from cli.commands.command import CommandFailed, Summary, UsageError, services

if TYPE_CHECKING:
    from cli.commands.command import SubParsers


def cmd_behaviour(args: argparse.Namespace) -> Summary:
    from shared.adapters.online_store import StoreUnreachableError
    from shared.domain.contracts import get_contract

    root = services()
    contract = get_contract(root.settings.dataset_name)
    online = root.behaviour
    if online is None:
        raise UsageError(
            f"dataset {contract.name} declares no behavioural features (a behaviour section in its contract): "
            "there is no online state to fill or show"
        )
    try:
        if args.behaviour_command == "materialise":
            from training.materialise import materialise

            return dataclasses.asdict(materialise(root.blob_store, contract, online, version=args.version))
        size = online.store.size()
    except StoreUnreachableError as exc:
        raise CommandFailed(f"the online store cannot be reached: {exc}") from None
    return {
        "dataset": contract.name,
        "features": online.names,
        "entities": size.entities,
        "bytes": size.bytes,
        "lateness_seconds": contract.behaviour.lateness,
        "history_span_seconds": contract.behaviour.span,
    }


def add_behaviour(sub: SubParsers) -> None:
    b = sub.add_parser("behaviour", help="the online store of behavioural features: fill it, show its size")
    b_sub = b.add_subparsers(dest="behaviour_command", required=True, metavar="ACTION")
    m = b_sub.add_parser(
        "materialise",
        help="place the curated history of the longest window in the online store (idempotent): what the first "
        "transactions scored after a deployment need",
    )
    m.add_argument("--version", default=None, help="the dataset version (default: the latest)")
    b_sub.add_parser("status", help="how many entities the online store holds and its memory")
    b.set_defaults(func=cmd_behaviour)
