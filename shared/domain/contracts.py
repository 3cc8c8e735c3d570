"""The contracts a deployment knows: the files of the contracts folder, and those a bank uploaded to storage.

``get_contract(name)`` is how every path finds its dataset's contract. The folder is the
repository's ``contracts/`` unless ``CONTRACTS_DIR`` names another. In Azure a bank adds or changes a
contract without a release: ``fraudops contract upload`` checks it and writes it to storage
(``shared.adapters.contracts``), and each process reads the stored ones once, on first use, beside the
folder's (a stored contract wins over a shipped one of the same name). A stored file that does not
validate is skipped with its reason logged, so what was deployed keeps working. Nothing is read at
import time; a lookup after the first is a dictionary read.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from shared.domain.contract import DatasetContract

log = logging.getLogger(__name__)

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"  # the shipped contract files
STORED_RETRY_SECONDS = 60.0  # storage unreachable at the first lookup: try its contracts again after this

StoredLoader = Callable[[], dict[str, DatasetContract]]


class UnknownDataset(KeyError):
    """A dataset no contract declares; the message names the known ones."""

    def __str__(self) -> str:
        return str(self.args[0])


def _read_folder(folder: Path) -> dict[str, DatasetContract]:
    from shared.domain.contract_file import read_contract  # the contract file's models load when a file is read

    found: dict[str, DatasetContract] = {}
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml"), *folder.glob("*.json")]):
        contract = read_contract(path)  # a bad shipped contract is a build error: tests read every file
        if contract.name in found:
            raise ValueError(f"{path}: dataset {contract.name!r} is declared by two files")
        found[contract.name] = contract
    return found


class _Known:
    """The folder's contracts and the stored ones, merged once per folder (and again after a failed read)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folder: str | None = None
        self._known: dict[str, DatasetContract] | None = None
        self._retry_at: float | None = None  # set when the stored contracts could not be read
        self._loader: StoredLoader | None = None

    def get(self) -> dict[str, DatasetContract]:
        folder = os.environ.get("CONTRACTS_DIR") or ""
        known = self._known
        if (
            known is not None
            and self._folder == folder
            and (self._retry_at is None or time.monotonic() < self._retry_at)
        ):
            return known
        with self._lock:
            folder_contracts = _read_folder(Path(folder) if folder else CONTRACTS_DIR)
            stored, failed = self._stored()
            self._known = {**folder_contracts, **stored}
            self._folder = folder
            self._retry_at = time.monotonic() + STORED_RETRY_SECONDS if failed else None
            return self._known

    def _stored(self) -> tuple[dict[str, DatasetContract], bool]:
        if self._loader is None:
            return {}, False
        try:
            return self._loader(), False
        except Exception as exc:  # storage unreachable: the folder's contracts serve until the retry
            log.warning("the contracts stored in Azure could not be read (%s); the shipped ones serve", exc)
            return {}, True

    def use(self, loader: StoredLoader | None) -> None:
        with self._lock:
            self._loader, self._known = loader, None

    def forget(self) -> None:
        with self._lock:
            self._known = None


_KNOWN = _Known()


def contracts_dir() -> Path:
    """Where the shipped contracts are read from (``CONTRACTS_DIR`` overrides, for a bank's own folder)."""
    return Path(os.environ.get("CONTRACTS_DIR") or CONTRACTS_DIR)


def known_contracts() -> dict[str, DatasetContract]:
    """Every contract this process knows (the folder's, then the stored ones), by dataset name."""
    return _KNOWN.get()


def use_stored(loader: StoredLoader | None) -> None:
    """Read stored contracts with ``loader`` (the composition root sets it; ``None``: the folder's only)."""
    _KNOWN.use(loader)


def forget_contracts() -> None:
    """Read the contracts again on next use (tests; a changed ``CONTRACTS_DIR``; a contract just uploaded)."""
    _KNOWN.forget()


def get_contract(name: str) -> DatasetContract:
    """The contract of dataset ``name``; ``UnknownDataset`` naming the known ones otherwise."""
    known = known_contracts()
    try:
        return known[name]
    except KeyError:
        raise UnknownDataset(f"unknown dataset {name!r}; known: {', '.join(sorted(known)) or 'none'}") from None
