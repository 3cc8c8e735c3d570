"""Contract files: what a bank writes is read into the runtime contract, and a bad one is refused with line and rule."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from shared.domain.contract import ColumnType
from shared.domain.contract_file import ContractFileError, parse_contract, read_contract
from shared.domain.contracts import UnknownDataset, forget_contracts, get_contract, known_contracts

GOOD = textwrap.dedent(
    """\
    name: bank_cards
    description: a bank's card export
    time_zone: Europe/Paris
    costs: {missed_positive: 25, false_alarm: 2}
    roles:
      event_time: ts
      label: {column: is_fraud, positive: 1, meaning: fraud}
      transaction_id: tx_id
      amount: amount
      entities: {customer: customer_id, terminal: terminal_id}
    columns:
      - {name: tx_id, type: string}
      - {name: ts, type: timestamp}
      - {name: customer_id, type: string, personal: true}
      - {name: terminal_id, type: string}
      - {name: amount, type: float, minimum: 0, unit: EUR}
      - {name: mcc, type: categorical, description: merchant category}
      - {name: channel, type: categorical, categories: [pos, ecom, atm]}
      - {name: country, type: categorical, nullable: true}
      - {name: card_present, type: boolean}
      - {name: n_items, type: integer, minimum: 0, nullable: true}
      - {name: is_fraud, type: integer, allowed: [0, 1]}
    """
)


def _problems(text: str) -> str:
    with pytest.raises(ContractFileError) as err:
        parse_contract(text, "bank.yaml")
    return str(err.value)


def test_a_bank_contract_is_read_with_its_types_roles_and_costs() -> None:
    c = parse_contract(GOOD, "bank.yaml")

    assert c.name == "bank_cards" and c.time_zone == "Europe/Paris"
    assert (c.cost_missed, c.cost_false_alarm) == (25.0, 2.0)
    assert c.feature_names == ["amount", "mcc", "channel", "country", "card_present", "n_items"]
    assert c.column("channel").categories == ("pos", "ecom", "atm")
    assert c.column("mcc").type is ColumnType.CATEGORICAL and c.column("mcc").categories is None
    assert c.column("country").nullable and not c.column("amount").nullable
    assert c.label is not None and c.label.name == "is_fraud" and c.time_column is not None
    assert c.time_column.name == "ts" and c.transaction_id == "tx_id" and c.amount == "amount"
    assert c.entity("terminal") == "terminal_id" and c.entity("merchant") is None
    assert c.personal_names == ["customer_id"]
    assert c.required_names(labelled=False) == [n for n in c.names if n not in ("country", "n_items", "is_fraud")]


def test_the_hash_follows_the_content_not_the_layout() -> None:
    base = parse_contract(GOOD)
    commented = parse_contract(
        "# a comment\n"
        + GOOD.replace("{missed_positive: 25, false_alarm: 2}", "\n    missed_positive: 25\n    false_alarm: 2")
    )
    changed = parse_contract(GOOD.replace("minimum: 0, unit: EUR", "minimum: 1, unit: EUR"))

    assert len(base.sha256) == 64 and base.sha256 == commented.sha256
    assert changed.sha256 != base.sha256


def test_json_is_a_contract_file_too() -> None:
    import json

    import yaml

    as_json = json.dumps(yaml.safe_load(GOOD), indent=2)
    assert parse_contract(as_json, "bank.json").sha256 == parse_contract(GOOD).sha256


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (("type: boolean", "type: bool"), 20, "columns[8] (card_present).type: unknown type 'bool'"),
        (("nullable: true}", "nulable: true}"), 19, "columns[7] (country).nulable: not a known key (a typo?)"),
        (
            ("  - {name: is_fraud", "  - {name: amount, type: float}\n  - {name: is_fraud"),
            22,
            "column 'amount' is declared twice",
        ),
        (("  label: {column: is_fraud, positive: 1, meaning: fraud}\n", ""), 5, "roles.label: required but missing"),
        (("  event_time: ts\n", "  event_time: ts\n  event_time: tx_id\n"), 7, "roles.event_time: declared twice"),
        (
            ("terminal: terminal_id}", "terminal: terminal}"),
            10,
            "roles.entities.terminal names 'terminal', which is not a column",
        ),
        (("time_zone: Europe/Paris", "time_zone: Mars/Olympus"), 3, "unknown time zone 'Mars/Olympus'"),
        (
            ("name: channel, type: categorical, categories", "name: channel, type: float, categories"),
            18,
            "categories apply to categorical columns",
        ),
        (("allowed: [0, 1]", "allowed: [0, 2]"), 22, "must declare allowed: [0, 1]"),
        (
            ("{name: terminal_id, type: string}", "{name: terminal_id, type: float, personal: true}"),
            15,
            "personal data must be a string",
        ),
        (("name: bank_cards", "name: Bank Cards!"), 1, "name: String should match pattern"),
    ],
)
def test_a_bad_contract_is_refused_with_the_file_the_line_and_the_rule(
    change: tuple[str, str], line: int | None, words: str
) -> None:
    assert change[0] in GOOD
    message = _problems(GOOD.replace(*change))

    assert words in message, message
    assert message.startswith("bank.yaml, line " + str(line) if line else "bank.yaml")


def test_not_yaml_and_not_a_mapping_are_refused_with_the_line() -> None:
    assert "bank.yaml, line 2: not valid YAML or JSON" in _problems("name: x\n  columns: [\n")
    assert "a contract is a mapping" in _problems("- just\n- a list\n")
    assert "the file is empty" in _problems("")
    assert "over 1,000,000 bytes" in _problems("#" * 1_000_001)


def test_a_contract_without_features_or_with_a_role_feature_clash_is_refused() -> None:
    no_features = textwrap.dedent(
        """\
        name: ids_only
        roles: {label: {column: y}}
        columns:
          - {name: tx, type: string}
          - {name: y, type: boolean}
        """
    )
    assert "no feature" in _problems(no_features)
    clash = GOOD.replace("{name: tx_id, type: string}", "{name: tx_id, type: string, feature: true}")
    assert "cannot be a feature" in _problems(clash)


def test_the_folder_holds_the_shipped_contracts_and_a_bank_can_point_at_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "creditcard" in known_contracts()
    (tmp_path / "bank_cards.yaml").write_text(GOOD)
    monkeypatch.setenv("CONTRACTS_DIR", str(tmp_path))
    forget_contracts()
    try:
        assert get_contract("bank_cards").feature_names[0] == "amount"
        with pytest.raises(UnknownDataset, match=r"unknown dataset 'creditcard'; known: bank_cards"):
            get_contract("creditcard")
    finally:
        monkeypatch.delenv("CONTRACTS_DIR")
        forget_contracts()
    assert get_contract("creditcard").name == "creditcard"


def test_a_file_must_be_named_after_its_dataset(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(GOOD)
    with pytest.raises(ContractFileError, match=r"declares name 'bank_cards'; name the file bank_cards.yaml"):
        read_contract(path)


def test_every_shipped_contract_reads() -> None:
    shipped = sorted(Path(__file__).resolve().parents[2].joinpath("contracts").glob("*.yaml"))
    assert shipped, "no shipped contract"
    for path in shipped:
        contract = read_contract(path)
        assert contract.feature_names and contract.label is not None, path


def test_a_column_may_not_take_a_name_the_prediction_records_use() -> None:
    from shared.domain.contract_file import RESERVED
    from shared.scoring.records import RECORD_COLUMNS

    assert set(RECORD_COLUMNS) - RESERVED == {"transaction_id", "customer_id"}
    assert "prediction records use" in _problems(GOOD.replace("name: n_items", "name: threshold"))
    assert "prediction records use" in _problems(GOOD.replace("name: mcc, type", "name: transaction_id, type"))
