"""Dataset contracts in storage (``curated/_contracts/<name>.yaml``): a bank adds or changes one without a release.

``upload`` validates a contract file before anything is written (a bad one is refused with its line and
rule, and nothing deployed changes); ``stored`` reads every stored contract, skipping, with the reason
logged, one that does not validate (written by hand, or by an older release), so it never replaces a
good one. ``shared.domain.contracts`` merges them with the shipped folder's.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from shared.domain import layout
from shared.domain.contract import DatasetContract
from shared.domain.contract_file import ContractFileError, parse_contract

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore

log = logging.getLogger(__name__)


def stored(store: BlobStore) -> dict[str, DatasetContract]:
    """Every valid contract in storage, by dataset name (an invalid one is logged and left out)."""
    found: dict[str, DatasetContract] = {}
    for name in store.list_names(layout.CURATED, layout.CONTRACTS_PREFIX):
        if not name.endswith((".yaml", ".yml", ".json")):
            continue
        source = layout.display(layout.CURATED, name)
        try:
            contract = parse_contract(store.get_bytes(layout.CURATED, name)[0], source)
        except ContractFileError as exc:
            log.error("stored contract skipped, the deployed one keeps serving: %s", exc)
            continue
        if layout.stored_contract(contract.name) != name:
            log.error("stored contract skipped: %s declares dataset %r", source, contract.name)
            continue
        found[contract.name] = contract
    return found


def upload(store: BlobStore, text: bytes, source: str) -> DatasetContract:
    """Check ``text`` (``ContractFileError`` naming ``source``, its lines and rules), then store it."""
    contract = parse_contract(text, source)
    store.put_bytes(layout.CURATED, layout.stored_contract(contract.name), text, overwrite=True)
    log.info("contract %s stored (sha256 %s)", contract.name, contract.sha256[:12])
    return contract
