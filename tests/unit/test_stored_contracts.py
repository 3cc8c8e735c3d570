"""A bank adds a contract without a release: checked before it is stored, read beside the shipped ones, and a bad
stored file never replaces what serves."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from shared.adapters.contracts import stored, upload
from shared.domain import layout
from shared.domain.contract_file import ContractFileError
from shared.domain.contracts import forget_contracts, get_contract, use_stored
from tests.unit.test_contract_file import GOOD


@pytest.fixture
def with_store(memory_store) -> Iterator[object]:
    use_stored(lambda: stored(memory_store))
    yield memory_store
    use_stored(None)
    forget_contracts()


def test_an_uploaded_contract_is_known_after_the_shipped_ones(with_store) -> None:
    contract = upload(with_store, GOOD.encode(), "bank_cards.yaml")
    forget_contracts()

    assert get_contract("bank_cards").sha256 == contract.sha256
    assert get_contract("creditcard").name == "creditcard"  # the shipped ones are still there


def test_a_bad_contract_is_refused_before_anything_is_written(with_store) -> None:
    with pytest.raises(ContractFileError, match=r"bank_cards.yaml, line 20: .*unknown type 'bool'"):
        upload(with_store, GOOD.replace("type: boolean", "type: bool").encode(), "bank_cards.yaml")
    assert with_store.list_names(layout.CURATED, layout.CONTRACTS_PREFIX) == []


def test_a_bad_file_in_storage_is_skipped_and_the_good_one_keeps_serving(with_store, caplog) -> None:
    upload(with_store, GOOD.encode(), "bank_cards.yaml")
    forget_contracts()
    served = get_contract("bank_cards")
    broken = GOOD.replace("name: tx_id, type: string", "name: tx_id, type: strng")
    with_store.put_bytes(layout.CURATED, layout.stored_contract("bank_cards"), broken.encode(), overwrite=True)
    shipped = (layout.CURATED, layout.stored_contract("creditcard"))
    with_store.put_bytes(*shipped, b"name: creditcard\ncolumns: []\n", overwrite=True)

    with caplog.at_level(logging.ERROR, logger="shared.adapters.contracts"):
        found = stored(with_store)

    assert "bank_cards" not in found and "creditcard" not in found
    assert "unknown type 'strng'" in caplog.text and "curated/_contracts/bank_cards.yaml, line" in caplog.text
    forget_contracts()
    assert get_contract("creditcard").feature_names[-1] == "Amount"  # the shipped one, untouched
    assert served.sha256 == parse_again(GOOD)


def parse_again(text: str) -> str:
    from shared.domain.contract_file import parse_contract

    return parse_contract(text).sha256


def test_a_stored_contract_replaces_the_shipped_one_of_the_same_name(with_store) -> None:
    from pathlib import Path

    shipped = (Path(__file__).resolve().parents[2] / "contracts" / "creditcard.yaml").read_text()
    changed = shipped.replace("missed_positive: 10", "missed_positive: 40")
    upload(with_store, changed.encode(), "creditcard.yaml")
    forget_contracts()

    assert get_contract("creditcard").cost_missed == 40.0


def test_storage_down_leaves_the_shipped_contracts_serving(caplog) -> None:
    def down() -> dict:
        raise ConnectionError("storage unreachable")

    use_stored(down)
    try:
        with caplog.at_level(logging.WARNING, logger="shared.domain.contracts"):
            assert get_contract("creditcard").name == "creditcard"
        assert "could not be read" in caplog.text
    finally:
        use_stored(None)
        forget_contracts()
