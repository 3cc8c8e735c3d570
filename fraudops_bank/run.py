"""``fraudops-bank client`` (and ``fraudops federated client``): one bank takes part in rounds where its data is.

Both commands take the same flags (``add_client_arguments``) and call ``run_client``. The last
line of stdout is a one-line JSON summary; on failure one line with the reason goes to stderr and
the exit status is 2 for a table that can never be used, 1 for anything else.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraudops_bank.contract import Columns
from fraudops_bank.credentials import (
    BANK_KEY_SECRET,
    FUNCTION_KEY_SECRET,
    KEY_VAULT_ENV,
    BankCredentials,
    from_environment,
    from_key_vault,
)
from fraudops_bank.errors import BankError, TableRefusedError

if TYPE_CHECKING:
    from fraudops_bank.client import Safeguards
    from fraudops_bank.engines import Engine

log = logging.getLogger("fraudops_bank")

EXIT_REJECTED = 2
IDENTITY_ENV = "FL_BANK_IDENTITY_KEY"


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    """The client's flags, one definition for both commands."""
    parser.add_argument("--bank", required=True, help="this bank's id, as the server knows its signing key")
    parser.add_argument("--url", required=True, help="the function app, e.g. https://<app>.azurewebsites.net")
    parser.add_argument("--allow-http", action="store_true", help="accept an http:// URL (a local test server only)")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--data", help="the NumPy engine's file: CSV or Parquet with the federated model's columns")
    data.add_argument(
        "--table",
        help="a Parquet file or directory, a Delta table's path (--engine spark), or with Spark a metastore "
        "table name such as catalog.schema.table",
    )
    parser.add_argument(
        "--engine",
        choices=["numpy", "spark"],
        default="numpy",
        help="numpy: the rows in memory (default); spark: PySpark aggregations over the table where it is",
    )
    parser.add_argument(
        "--format",
        choices=["auto", "parquet", "delta", "table"],
        default="auto",
        help="how Spark reads --table (auto: Delta when the path has _delta_log, a table name when it looks like "
        "one and is no path, else Parquet)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="consecutive rounds; after each the client waits for the round to close"
    )
    parser.add_argument(
        "--wait-seconds",
        type=float,
        default=3600.0,
        help="longest wait for a round to close before giving up (default: one round deadline)",
    )
    parser.add_argument(
        "--key-vault-url",
        help=f"read both keys from this Key Vault (default: {KEY_VAULT_ENV}; unset: the environment)",
    )
    parser.add_argument("--bank-key-secret", default=BANK_KEY_SECRET, help="the signing key's secret name")
    parser.add_argument("--function-key-secret", default=FUNCTION_KEY_SECRET, help="the function key's secret name")
    secure = parser.add_argument_group("secure rounds and what this bank accepts")
    secure.add_argument(
        "--roster",
        help="the federation's roster (JSON: each bank's and the server's Ed25519 public key), agreed out of band; "
        "needed for secure rounds",
    )
    secure.add_argument(
        "--identity-key",
        help=f"file with this bank's Ed25519 identity key (from 'fraudops-bank identity'; default: {IDENTITY_ENV})",
    )
    secure.add_argument(
        "--allow-visible",
        action="store_true",
        help="also take part in visible rounds, where the server sees this bank's update (default: refuse them)",
    )
    secure.add_argument("--min-rows", type=int, default=1000, help="train only on a window of at least this many rows")
    secure.add_argument(
        "--min-frauds", type=int, default=20, help="train only with at least this many frauds (and legitimate rows)"
    )
    secure.add_argument(
        "--epsilon-ceiling", type=float, help="refuse rounds that would take this bank's epsilon past this value"
    )
    secure.add_argument(
        "--privacy-ledger",
        default=str(Path.home() / ".fraudops-bank" / "privacy-ledger.json"),
        help="this bank's own record of the noise of each round it took part in (default: %(default)s)",
    )


def safeguards_for(args: argparse.Namespace, environ: Mapping[str, str]) -> Safeguards:
    """What this bank requires of a round, from its flags: the roster, its identity key, its limits."""
    from fraudops_bank.client import Safeguards
    from fraudops_bank.privacy import Ledger
    from fraudops_bank.roster import Roster, unb64
    from fraudops_bank.served import ServedPolicy

    roster = Roster.load(Path(args.roster)) if args.roster else None
    raw = (
        Path(args.identity_key).read_text(encoding="utf-8").strip() if args.identity_key else environ.get(IDENTITY_ENV)
    )
    identity = None
    if raw:
        try:
            identity = unb64(raw, what="the identity key", size=32)
        except BankError as exc:
            raise BankError(f"{exc.reason} (create one with 'fraudops-bank identity --out FILE')") from None
    return Safeguards(
        roster=roster,
        identity_key=identity,
        policy=ServedPolicy(min_rows=args.min_rows, min_frauds=args.min_frauds),
        allow_visible=args.allow_visible,
        epsilon_ceiling=args.epsilon_ceiling,
        ledger=Ledger(Path(args.privacy_ledger)),
    )


def credentials_for(args: argparse.Namespace, environ: Mapping[str, str]) -> BankCredentials:
    """The keys from Key Vault when a vault is named (flag or ``BANK_KEY_VAULT_URL``), else from the environment."""
    vault = args.key_vault_url or environ.get(KEY_VAULT_ENV)
    if vault:
        return from_key_vault(vault, bank_key_secret=args.bank_key_secret, function_key_secret=args.function_key_secret)
    return from_environment(environ)


def open_engine(args: argparse.Namespace, columns: Columns) -> tuple[Engine, Callable[[], None]]:
    """The engine over ``columns`` of the bank's data, and what to call when the client is done with it."""
    if args.engine == "numpy":
        from fraudops_bank.engines import numpy as numpy_engine

        return numpy_engine.read(Path(args.data or args.table), columns), lambda: None
    if args.data:
        raise BankError("--engine spark reads --table (a Parquet or Delta path, or a table name), not --data")
    from fraudops_bank.engines import spark as spark_engine

    spark, local = spark_engine.session()
    try:
        engine = spark_engine.read(spark, args.table, columns, fmt=args.format)
    except BaseException:
        if local:
            spark.stop()
        raise

    def close() -> None:
        engine.close()
        if local:  # a session this process started; never Databricks' own
            spark.stop()

    return engine, close


def run_client(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """Take part in ``args.rounds`` rounds with the bank's data; the summary the commands print."""
    import httpx

    from fraudops_bank.client import BankClient, connect

    creds = credentials_for(args, environ)
    if args.rounds < 1:
        raise BankError("--rounds must be at least 1")
    try:
        with connect(args.url, function_key=creds.function_key, allow_http=args.allow_http) as http:
            client = BankClient(http, args.bank, creds.bank_key, safeguards=safeguards_for(args, environ))
            columns = client.columns()  # the experiment's contract: which of the table's columns are read
            engine, close = open_engine(args, columns)
            try:
                done = client.take_rounds(engine, args.rounds, wait_seconds=args.wait_seconds)
            finally:
                close()
    except httpx.TransportError as exc:
        raise BankError(f"cannot reach {args.url}: {type(exc).__name__}: {exc}") from None
    return {
        "bank": args.bank,
        "engine": args.engine,
        "features": len(columns.features),
        "rows_used_locally": engine.rows,
        "rounds": done,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fraudops-bank", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    client = sub.add_parser(
        "client",
        help="one bank: pull, train locally, sign and post (keys in FL_BANK_KEY and FRAUDOPS_FUNCTION_KEY, "
        "or in the bank's Key Vault)",
    )
    add_client_arguments(client)
    identity = sub.add_parser(
        "identity",
        help="create this bank's Ed25519 identity key (kept by the bank) and print its public half for the roster",
    )
    identity.add_argument("--out", required=True, help="file to write the private key to (created, mode 0600)")
    roster = sub.add_parser(
        "roster", help="write the federation's roster from the banks' and the server's public keys (agreed out of band)"
    )
    roster.add_argument("--server", required=True, help="the server's public key (fraudops federated server-key)")
    roster.add_argument(
        "--bank", action="append", required=True, metavar="ID=KEY", help="a bank's id and public key (repeat)"
    )
    roster.add_argument("--out", required=True, help="the roster file to write")
    return parser


def write_roster(args: argparse.Namespace) -> dict[str, Any]:
    """The roster of ``--bank ID=KEY`` and ``--server KEY``, checked and written to ``--out``."""
    from fraudops_bank.roster import KEY_BYTES, Roster, unb64

    banks = {}
    for pair in args.bank:
        bank, _, key = pair.partition("=")
        if not bank or not key:
            raise BankError(f"--bank takes ID=KEY, got {pair[:80]!r}")
        banks[bank.lower()] = unb64(key, what=f"bank {bank}'s key", size=KEY_BYTES)
    roster = Roster(banks, unb64(args.server, what="the server's key", size=KEY_BYTES))
    Path(args.out).write_text(roster.to_json(), encoding="utf-8")
    return {"roster": args.out, "banks": sorted(banks)}


def create_identity(out: Path) -> dict[str, str]:
    """Write a new identity key to ``out`` (never overwriting one); the public half, for the roster."""
    import os

    from fraudops_bank.roster import b64, identity_public, new_identity_key

    key = new_identity_key()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BankError(
            f"{out} exists: an identity key is never overwritten (its public half is in the roster)"
        ) from None
    except OSError as exc:
        raise BankError(f"cannot create {out}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(b64(key) + "\n")
    return {"identity_key_file": str(out), "public_key": b64(identity_public(key))}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("azure", "httpx", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command == "identity":
            summary = create_identity(Path(args.out))
        elif args.command == "roster":
            summary = write_roster(args)
        else:
            summary = run_client(args, os.environ)
    except TableRefusedError as exc:
        print(f"fraudops-bank {args.command}: {exc.reason}", file=sys.stderr)
        return EXIT_REJECTED
    except BankError as exc:
        print(f"fraudops-bank {args.command}: {exc.reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
