"""The federated commands: simulate banks against the local API, run one bank's client, add or revoke a bank's key."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from cli.commands.command import (
    CommandFailed,
    Summary,
    UsageError,
    existing_file,
    non_negative_int,
    positive_float,
    positive_int,
    services,
)

if TYPE_CHECKING:
    from cli.commands.command import SubParsers


def cmd_federated_simulate(args: argparse.Namespace) -> Summary:
    from cli.simulate import simulate

    services()  # the settings are read (and refused with their reason) before any bank starts
    try:
        return simulate(
            banks=args.banks,
            rounds=args.rounds,
            data=args.data,
            non_iid=args.non_iid,
            poison=args.poison,
            lie=args.lie,
            poison_statistics=args.poison_statistics,
            aggregator=args.aggregator,
            seed=args.seed,
            mode=args.mode,
            clip_bound=args.clip_bound,
            noise_multiplier=args.noise_multiplier,
            drop_after_masking=args.drop_after_masking,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_federated_client(args: argparse.Namespace) -> Summary:
    import os

    from fraudops_bank.errors import TableRefusedError
    from fraudops_bank.run import run_client

    try:
        return run_client(args, os.environ)  # the same as `fraudops-bank client`, which banks install on their own
    except TableRefusedError as exc:
        raise UsageError(exc.reason) from None


def cmd_federated_keys(args: argparse.Namespace) -> Summary:
    from shared.adapters.audit import service_actor
    from shared.federated.auth import add_bank_key, revoke_bank_key

    root = services()
    config = root.settings.federated
    change = add_bank_key if args.keys_command == "add" else revoke_bank_key
    return change(
        args.bank,
        actor=service_actor("cli"),
        config=config,
        store=root.blob_store,
        credential=root.credential if config.key_vault_url else None,
    )


def cmd_federated_server_key(args: argparse.Namespace) -> Summary:  # noqa: ARG001
    from fraudops_bank.roster import b64, identity_from_secret, identity_public

    secret = services().settings.federated.fl_server_signing_key
    if secret is None:
        raise CommandFailed("FL_SERVER_SIGNING_KEY is not set: the server signs no model, so there is no key to pin")
    return {"server_public_key": b64(identity_public(identity_from_secret(secret.get_secret_value())))}


def add_federated(sub: SubParsers) -> None:
    from fraudops_bank.run import add_client_arguments  # argparse only

    fl = sub.add_parser("federated", help="federated learning: simulate banks, or run one bank's client")
    fl_sub = fl.add_subparsers(dest="federated_command", required=True, metavar="ACTION")
    sim = fl_sub.add_parser("simulate", help="banks run the real HTTP protocol against the local API")
    sim.add_argument("--banks", type=positive_int, default=3, help="how many banks take part")
    sim.add_argument("--rounds", type=positive_int, default=5, help="federated rounds to run")
    sim.add_argument(
        "--data", type=existing_file, help="CSV/Parquet in the federated dataset's contract (default: generated)"
    )
    sim.add_argument("--non-iid", action="store_true", help="split by Amount instead of at random")
    sim.add_argument("--poison", type=non_negative_int, default=0, help="banks that send sign-flipped, scaled updates")
    sim.add_argument(
        "--lie", type=non_negative_int, default=0, help="banks that claim the largest example count accepted"
    )
    sim.add_argument(
        "--poison-statistics",
        type=non_negative_int,
        default=0,
        help="banks that send round-0 statistics of distorted rows",
    )
    sim.add_argument(
        "--aggregator",
        choices=["fedavg", "median", "trimmed_mean"],
        default="fedavg",
        help="how the server combines the banks' updates (median and trimmed_mean need --mode visible)",
    )
    sim.add_argument(
        "--mode",
        choices=["secure", "visible"],
        default="secure",
        help="secure: the server sees only the sum of the banks' clipped steps (default); visible: each update, "
        "so median and trimmed_mean can run",
    )
    sim.add_argument("--clip-bound", type=positive_float, help="each bank's step L2 bound (secure default: adaptive)")
    sim.add_argument("--noise-multiplier", type=positive_float, help="differential privacy: noise added by the banks")
    sim.add_argument(
        "--drop-after-masking",
        type=non_negative_int,
        default=0,
        help="banks that go silent once their masked vector is sent",
    )
    sim.add_argument("--seed", type=int, default=0, help="the random seed of the data split and the banks")
    sim.set_defaults(func=cmd_federated_simulate)
    cl = fl_sub.add_parser(
        "client",
        help="one bank: pull, train locally (NumPy or Spark), sign and post (keys in FL_BANK_KEY and "
        "FRAUDOPS_FUNCTION_KEY, or in the bank's Key Vault); the same as fraudops-bank client",
    )
    add_client_arguments(cl)  # fraudops_bank's flags: --engine numpy|spark, --data or --table...
    cl.set_defaults(func=cmd_federated_client)
    sk = fl_sub.add_parser(
        "server-key", help="the public half of the key the server signs served models with, for the banks' roster"
    )
    sk.set_defaults(func=cmd_federated_server_key)
    ks = fl_sub.add_parser("keys", help="bank signing keys: add or revoke (audited)")
    ks_sub = ks.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    ka = ks_sub.add_parser("add", help="create a bank's signing key (in Key Vault when KEY_VAULT_URL is set)")
    ka.add_argument("bank", help="the bank's id (letters, digits, - and _)")
    ka.set_defaults(func=cmd_federated_keys)
    kr = ks_sub.add_parser("revoke", help="delete a bank's signing key from Key Vault (audited)")
    kr.add_argument("bank", help="the bank's id")
    kr.set_defaults(func=cmd_federated_keys)
