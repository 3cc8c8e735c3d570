"""``fraudops contract``: check a contract file, upload it (a bank adds a dataset without a release), list the
known ones, and show one's feature catalogue."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from cli.commands.command import EXIT_REJECTED, CommandError, Summary, services

if TYPE_CHECKING:
    from cli.commands.command import SubParsers


def _read(path: str) -> tuple[bytes, str]:
    file = Path(path)
    if not file.is_file():
        raise CommandError(f"{path} is not a file", EXIT_REJECTED)
    return file.read_bytes(), str(file)


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
        raise CommandError(f"refused, nothing changed:\n{exc}", EXIT_REJECTED) from None
    services()  # the stored contracts are read through the composition root's store
    if args.contract_command == "list":
        return {
            name: {"features": len(c.feature_names), "sha256": c.sha256[:12]} for name, c in known_contracts().items()
        }
    return catalogue(get_contract(args.name))


def add_contract(sub: SubParsers) -> None:
    c = sub.add_parser("contract", help="dataset contracts: check, upload, list, show")
    c_sub = c.add_subparsers(dest="contract_command", required=True)
    check = c_sub.add_parser("check", help="validate a contract file (YAML or JSON); errors name the line and rule")
    check.add_argument("path")
    up = c_sub.add_parser("upload", help="validate a contract file, then store it: the deployment knows its dataset")
    up.add_argument("path")
    c_sub.add_parser("list", help="the datasets this deployment knows (shipped and uploaded)")
    show = c_sub.add_parser("show", help="one dataset's contract: roles, costs, and the feature catalogue")
    show.add_argument("name")
    c.set_defaults(func=cmd_contract)
