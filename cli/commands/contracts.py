"""``fraudops contract``: check a contract file, upload it (a bank adds a dataset without a release), list the
known ones, and show one's feature catalogue."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from cli.commands.command import Summary, UsageError, existing_file, services

if TYPE_CHECKING:
    from cli.commands.command import SubParsers


def _read(path: Path) -> tuple[bytes, str]:
    return path.read_bytes(), str(path)


def cmd_contract(args: argparse.Namespace) -> Summary:
    from shared.domain.contract_file import ContractFileError, catalogue, parse_contract
    from shared.domain.contracts import forget_contracts, get_contract, known_contracts

    try:
        if args.contract_command == "check":
            text, source = _read(args.path)
            return catalogue(parse_contract(text, source))
        if args.contract_command == "upload":
            from shared.adapters.contracts import upload

            text, source = _read(args.path)
            contract = upload(services().blob_store, text, source)
            forget_contracts()
            return {
                "uploaded": contract.name,
                "sha256": contract.sha256,
                "note": "instances read contracts when they start: restart the function apps to use it now",
            }
    except ContractFileError as exc:
        raise UsageError(f"refused, nothing changed:\n{exc}") from None
    services()  # the stored contracts are read through the composition root's store
    if args.contract_command == "list":
        return {
            name: {"features": len(c.feature_names), "sha256": c.sha256[:12]} for name, c in known_contracts().items()
        }
    return catalogue(get_contract(args.name))


def add_contract(sub: SubParsers) -> None:
    c = sub.add_parser("contract", help="dataset contracts: check, upload, list, show")
    c_sub = c.add_subparsers(dest="contract_command", required=True, metavar="ACTION")
    check = c_sub.add_parser("check", help="validate a contract file (YAML or JSON); errors name the line and rule")
    check.add_argument("path", type=existing_file, help="the contract file (YAML or JSON)")
    up = c_sub.add_parser("upload", help="validate a contract file, then store it: the deployment knows its dataset")
    up.add_argument("path", type=existing_file, help="the contract file (YAML or JSON)")
    c_sub.add_parser("list", help="the datasets this deployment knows (shipped and uploaded)")
    show = c_sub.add_parser("show", help="one dataset's contract: roles, costs, and the feature catalogue")
    show.add_argument("name", help="the dataset's name, as 'contract list' shows it")
    c.set_defaults(func=cmd_contract)
