"""The deployables and their hashed locks: one home for which lock ships what, and a reader of their pins."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Deployable:
    """A package we ship, with the hashed lock it installs from (paths relative to the repository's root)."""

    name: str
    lock: Path
    pyproject: Path | None  # its own project metadata, if it has a pyproject.toml of its own
    description: str


DEPLOYABLES: tuple[Deployable, ...] = (
    Deployable(
        "scoring",
        Path("deploy/scoring/requirements.lock"),
        None,
        "fraudops scoring app: HTTP scoring and the Event Hubs stream on Azure Functions",
    ),
    Deployable(
        "pipeline",
        Path("deploy/pipeline/requirements.lock"),
        None,
        "fraudops pipeline app: blob ETL, retraining and monitoring, the federated coordinator, governance routes",
    ),
    Deployable(
        "bank",
        Path("fraudops_bank/requirements.lock"),
        Path("fraudops_bank/pyproject.toml"),
        "fraudops-bank: the bank-side federated client, installed by banks on their own machines",
    ),
)


@dataclass(frozen=True)
class Pin:
    """One locked requirement: its canonical name, exact version and the sha256 digests it may install."""

    name: str
    version: str
    hashes: frozenset[str]


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


def canonical(name: str) -> str:
    """PEP 503's normalised project name (``Jinja2`` and ``jinja2``, ``boolean.py`` and ``boolean-py`` alike)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> list[Pin]:
    """Every ``name==version`` requirement of a lock with its hashes (continuation lines joined, comments dropped)."""
    text = path.read_text().replace("\\\n", " ")
    pins = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        match = _PIN.match(line)
        if match:
            pins.append(Pin(canonical(match[1]), match[2], frozenset(_HASH.findall(line))))
    return pins
