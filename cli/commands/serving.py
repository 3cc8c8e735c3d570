"""The serving commands: the HTTP API under uvicorn (checking function keys as the host does), and the demo
that runs the whole system end to end."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cli.commands.command import Summary, positive_int, services

if TYPE_CHECKING:
    from cli.commands.command import SubParsers


def cmd_serve(args: argparse.Namespace) -> Summary:
    import os
    import secrets

    import uvicorn

    from api.app import create_app
    from shared.adapters.function_keys import ENV, HEADER, FunctionKeyCheck

    keys = list(args.function_key or []) or [k for k in [os.environ.get(ENV)] if k]
    if not keys:
        keys = [secrets.token_urlsafe(24)]
        print(
            f"fraudops serve: no function key given ({ENV} or --function-key); this run accepts {keys[0]} "
            f"(send it in the {HEADER} header, as every request to the deployed app must)",
            file=sys.stderr,
            flush=True,
        )
    started = time.perf_counter()
    # the routes take their services from the composition root on the first request, as in the function app
    uvicorn.run(
        FunctionKeyCheck(create_app(), keys), host=args.host, port=args.port, log_level="warning", access_log=False
    )
    return {
        "served_seconds": round(time.perf_counter() - started, 1),
        "host": args.host,
        "port": args.port,
        "function_keys": len(keys),
    }


def cmd_demo(args: argparse.Namespace) -> Summary:
    from cli.demo import run_demo

    root = services()
    return run_demo(root.blob_store, root.settings, rows=args.rows, seed=args.seed, workdir=Path(args.workdir))


def add_serve(sub: SubParsers) -> None:
    s = sub.add_parser("serve", help="serve the HTTP API under uvicorn, checking function keys like the host")
    s.add_argument("--host", default="127.0.0.1", help="the address to listen on (0.0.0.0: every interface)")
    s.add_argument("--port", type=positive_int, default=7071, help="the port to listen on (the Functions host's)")
    s.add_argument(
        "--function-key",
        action="append",
        help="a key requests must carry in x-functions-key or ?code=, as the Functions host demands "
        "(repeatable; default: FRAUDOPS_FUNCTION_KEY, else a random key printed on stderr)",
    )
    s.set_defaults(func=cmd_serve)


def add_demo(sub: SubParsers) -> None:
    d = sub.add_parser("demo", help="generate, ETL, train, serve and score over HTTP, end to end")
    d.add_argument("--rows", type=positive_int, default=300_000, help="how many transactions to generate")
    d.add_argument("--seed", type=int, default=7, help="the random seed of the generated data")
    d.add_argument("--workdir", default=".demo", help="where the generated files and the scores go")
    d.set_defaults(func=cmd_demo)
