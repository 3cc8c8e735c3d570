"""What goes wrong on the bank's side, each with a reason a person can act on."""

from __future__ import annotations


class BankError(Exception):
    """Base of the client's errors; ``reason`` is one sentence for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProtocolError(BankError):
    """The server refused a request; ``status`` is its HTTP status."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


class RoundWaitTimeout(BankError):
    """A round did not close within the time the bank was willing to wait."""


class CredentialsError(BankError):
    """The signing key or the function key could not be found."""


class TableRefusedError(BankError):
    """The bank's table cannot be used as it is (missing columns, bad rows, no rows, unreadable)."""


class ParametersError(BankError):
    """Parameters or update headers outside the wire format."""


class WindowTooSmallError(BankError):
    """The bank's window holds too few rows or frauds to train on without revealing individual transactions."""


class ServedModelRefusedError(BankError):
    """The served model or scaler lies outside the bank's policy (``fraudops_bank.served``): it could expose rows."""
