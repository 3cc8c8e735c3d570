"""What every ``fraudops`` command keeps to: a summary on stdout, a one-line reason and an exit status on failure,
and its services from the composition root.

A command returns its summary; ``cli.main`` prints it (``cli.output``). The exit status has one rule, applied in
``cli.main``:

* 0: done;
* 1 (:class:`CommandFailed`): the command ran and failed (a domain error, storage unreachable or refusing the
  credentials, a broken audit chain);
* 2 (:class:`UsageError`): the input can never succeed as given (a bad number, a missing file, a malformed
  setting, a rejected file). Argument errors found by argparse are 2 as well.

Either way one line on stderr says why, with no traceback (``-v`` adds it for unexpected errors).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.output import emit

if TYPE_CHECKING:
    from shared.bootstrap import Services
    from shared.domain.settings import Settings

    type SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = [
    "EXIT_FAILED",
    "EXIT_REJECTED",
    "CommandError",
    "CommandFailed",
    "Summary",
    "UsageError",
    "emit",
    "existing_file",
    "positive_float",
    "positive_int",
    "services",
    "storage_failure",
    "storage_setting",
]

EXIT_FAILED = 1
EXIT_REJECTED = 2  # unusable input: also argparse's own status for a bad argument

Summary = dict[str, Any]
Command = Callable[[argparse.Namespace], Summary]

CONNECT_SECONDS = 4.0  # a person waits this long for storage to answer, then once more after RETRY_WAIT
RETRY_WAIT = 1.0


class CommandError(Exception):
    """A failure the user can act on; ``code`` is the exit status, ``summary`` (if any) is still printed."""

    def __init__(self, reason: str, code: int = EXIT_FAILED, *, summary: Summary | None = None) -> None:
        super().__init__(reason)
        self.reason, self.code, self.summary = reason, code, summary


class CommandFailed(CommandError):
    """The command ran and failed (exit 1)."""

    def __init__(self, reason: str, *, summary: Summary | None = None) -> None:
        super().__init__(reason, EXIT_FAILED, summary=summary)


class UsageError(CommandError):
    """Input that can never succeed as given: fix it and run again (exit 2)."""

    def __init__(self, reason: str, *, summary: Summary | None = None) -> None:
        super().__init__(reason, EXIT_REJECTED, summary=summary)


# ---- argument types: argparse turns their ArgumentTypeError into one line and exit 2 -------------------------


def _number[N: (int, float)](
    convert: Callable[[str], N], noun: str, fits: Callable[[N], bool], bound: str
) -> Callable[[str], N]:
    """An argparse type: ``text`` read by ``convert`` (else "is not a {noun}") and inside ``bound``."""

    def read(text: str) -> N:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {noun}") from None
        if not fits(value):
            raise argparse.ArgumentTypeError(f"{text} is not {bound}")
        return value

    return read


positive_int = _number(int, "whole number", lambda v: v >= 1, "at least 1")
non_negative_int = _number(int, "whole number", lambda v: v >= 0, "0 or more")
positive_float = _number(float, "number", lambda v: 0 < v < float("inf"), "a number above 0")


def existing_file(text: str) -> Path:
    """A path to a file that exists and can be read."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is not a file" if path.exists() else f"{text} does not exist")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text} cannot be read (permissions)")
    return path


# ---- storage: the services, and what to say when storage fails ------------------------------------------------


def services() -> Services:
    """The process's services, with a blob client that waits at most ``CONNECT_SECONDS`` for storage and says so
    on stderr before its one retry. No request is made yet; a connection string the SDK cannot read is refused
    here (exit 2, naming the setting it came from)."""
    from shared.adapters.storage import Patience
    from shared.bootstrap import bootstrap
    from shared.domain.errors import ConfigurationError

    root = bootstrap()
    if root.storage_patience is None:
        root.storage_patience = Patience(
            connect_seconds=CONNECT_SECONDS, connect_retries=1, backoff=RETRY_WAIT, on_retry=_say_retry
        )
    try:
        _ = root.blob_store
    except ConfigurationError as exc:
        raise UsageError(f"{storage_setting(root.settings)}: {exc.reason}") from None
    return root


def _say_retry(attempt: int, wait: float, error: Exception | None) -> None:
    why = _why(error) if error is not None else "a busy answer"
    print(f"fraudops: storage did not answer ({why}); retry {attempt} in {wait:.0f} s", file=sys.stderr, flush=True)


def storage_setting(settings: Settings) -> str:
    """The app setting the data's storage was read from, in the order ``Settings`` reads them: an identity-based
    endpoint first (``DataStorage__blobServiceUri``, then ``AzureWebJobsStorage__accountName``), else the first
    connection string set of ``DataStorage`` and ``AzureWebJobsStorage``, else the Azurite default."""
    if settings.storage_blob_uri:
        return "DataStorage__blobServiceUri"
    if settings.storage_account_name:
        return "AzureWebJobsStorage__accountName"
    for name in ("DataStorage", "AzureWebJobsStorage"):  # Settings.storage_connection's aliases, first wins
        if os.environ.get(name):
            return name
    return "DataStorage (not set: the local Azurite)"


def storage_failure(exc: Exception) -> CommandError | None:
    """The one line for a storage error the user can act on (unreachable, refused credentials), or None when
    ``exc`` is not one."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    from shared.bootstrap import bootstrap

    root = bootstrap()
    setting = storage_setting(root.settings)
    where = _endpoint(root)
    if isinstance(exc, ServiceRequestError):
        return CommandFailed(
            f"storage at {where} is not reachable ({_why(exc)}); the address was read from {setting}: start "
            f"Azurite with 'make azurite', or correct {setting}"
        )
    if isinstance(exc, ClientAuthenticationError) or (
        isinstance(exc, HttpResponseError) and exc.status_code in (401, 403)
    ):
        code = getattr(exc, "error_code", None) or type(exc).__name__
        return CommandFailed(
            f"storage at {where} refused the credentials ({code}); they were read from {setting}: check its "
            "account key, or the identity's role on the account (Storage Blob Data Contributor)"
        )
    return None


def _endpoint(root: Services) -> str:
    try:
        url = str(root.blob_store.service.url)
    except Exception:  # the error came from another client (the anchor's); say what settings name
        return root.settings.storage_blob_uri or "the configured account"
    return url.rstrip("/")


def _why(error: Exception) -> str:
    """The OS's words for a failed connection ("Connection refused", "timed out"), else the error's type."""
    text = str(error)
    found = re.search(r"\[Errno -?\d+\] ([^'\"\)\n]+)", text)
    if found:
        return found.group(1).strip()
    if "timed out" in text.lower() or "timeout" in text.lower():
        return "timed out"
    return type(error).__name__
