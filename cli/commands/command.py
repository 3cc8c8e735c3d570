"""What every ``fraudops`` command keeps to: one JSON summary line on stdout, a reason and an exit status on
failure, and its services from the composition root.

A command returns its summary; ``cli.main`` prints it as the last line of stdout. A failure the user can
act on is a :class:`CommandError` whose ``code`` is the exit status (``EXIT_REJECTED``, 2, for input that
can never succeed, such as a rejected file; 1 for anything else).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.bootstrap import Services

    type SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_REJECTED = 2

Summary = dict[str, Any]
Command = Callable[[argparse.Namespace], Summary]


class CommandError(Exception):
    """A failure the user can act on; ``code`` is the exit status."""

    def __init__(self, reason: str, code: int = 1) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


def emit(summary: Summary) -> None:
    """The command's summary as one compact JSON line on stdout."""
    print(json.dumps(summary, default=str, separators=(",", ":")), flush=True)


def services() -> Services:
    """The process's services from the settings (no I/O yet; an unreachable store is reported by ``main``)."""
    from shared.bootstrap import bootstrap

    return bootstrap()
