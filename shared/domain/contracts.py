"""The contracts a deployment knows: the files of the contracts folder, read once on first use.

``get_contract(name)`` is how every path finds its dataset's contract. The folder is the
repository's ``contracts/`` unless ``CONTRACTS_DIR`` names another; nothing is read at import time.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from shared.domain.contract import DatasetContract
from shared.domain.contract_file import read_contract

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"  # the shipped contract files


class UnknownDataset(KeyError):
    """A dataset no contract declares; the message names the known ones."""

    def __str__(self) -> str:
        return str(self.args[0])


class _Folder:
    """The contract files of a folder, read once (on first use, never at import time) and kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_dir: dict[Path, dict[str, DatasetContract]] = {}

    def contracts(self, folder: Path) -> dict[str, DatasetContract]:
        with self._lock:
            if folder not in self._by_dir:
                self._by_dir[folder] = _read_folder(folder)
            return self._by_dir[folder]

    def forget(self) -> None:
        with self._lock:
            self._by_dir.clear()


def _read_folder(folder: Path) -> dict[str, DatasetContract]:
    found: dict[str, DatasetContract] = {}
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml"), *folder.glob("*.json")]):
        contract = read_contract(path)  # a bad shipped contract is a build error: tests read every file
        if contract.name in found:
            raise ValueError(f"{path}: dataset {contract.name!r} is declared by two files")
        found[contract.name] = contract
    return found


_FOLDER = _Folder()


def contracts_dir() -> Path:
    """Where the shipped contracts are read from (``CONTRACTS_DIR`` overrides, for a bank's own folder)."""
    return Path(os.environ.get("CONTRACTS_DIR") or CONTRACTS_DIR)


def known_contracts() -> dict[str, DatasetContract]:
    """Every contract of the contracts folder, by dataset name."""
    return _FOLDER.contracts(contracts_dir())


def forget_contracts() -> None:
    """Read the folder again on next use (tests; a changed ``CONTRACTS_DIR``)."""
    _FOLDER.forget()


def get_contract(name: str) -> DatasetContract:
    """The contract of dataset ``name``; ``UnknownDataset`` naming the known ones otherwise."""
    known = known_contracts()
    try:
        return known[name]
    except KeyError:
        raise UnknownDataset(f"unknown dataset {name!r}; known: {', '.join(sorted(known)) or 'none'}") from None
