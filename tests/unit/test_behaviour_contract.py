"""The ``behaviour`` section of a contract file: read into the runtime declaration, refused with line and rule."""

from __future__ import annotations

import numpy as np
import pytest

from shared.domain.contract_file import ContractFileError, parse_contract
from shared.domain.windows import History, point_in_time
from tests.unit.test_contract_file import GOOD

BEHAVIOUR = """\
behaviour:
  windows:
    - {entity: customer, of: amount, over: [1h, 1d, 7d], stats: [count, mean, max, std]}
    - {entity: terminal, over: [1d]}
  distinct:
    - {entity: customer, of: terminal_id, over: [1d]}
  since_previous: [customer]
  amount_vs_mean:
    - {entity: customer, over: 30d}
  fraud_share:
    - {entity: terminal, over: [1d, 7d]}
  calendar: [hour, night]
  label_delay: 3d
"""


def test_the_declaration_becomes_named_features_with_their_windows() -> None:
    contract = parse_contract(GOOD.replace("columns:", BEHAVIOUR + "columns:", 1))
    b = contract.behaviour
    assert b.names()[:4] == [
        "customer_count_amount_1h",
        "customer_mean_amount_1h",
        "customer_max_amount_1h",
        "customer_std_amount_1h",
    ]
    assert "terminal_count_transactions_1d" in b.names() and "calendar_night" in b.names()
    assert b.label_delay == 3 * 86400 and b.longest == 30 * 86400 and b.amount == "amount"
    assert [a.key for a in b.aggregates] == ["customer_id", "terminal_id"]
    plain = parse_contract(GOOD)
    assert plain.behaviour.empty and plain.input_sha256 != contract.input_sha256  # they shape the input


def test_the_declared_features_compute_on_the_contracts_columns() -> None:
    contract = parse_contract(GOOD.replace("columns:", BEHAVIOUR + "columns:", 1))
    rng = np.random.default_rng(0)
    n = 300
    history = History(
        np.sort(rng.uniform(0, 9 * 86400, n)),
        np.array([f"t{i}" for i in range(n)], dtype=object),
        {
            "customer_id": np.array([f"c{k}" for k in rng.integers(0, 10, n)], dtype=object),
            "terminal_id": np.array([f"T{k}" for k in rng.integers(0, 5, n)], dtype=object),
            "amount": rng.lognormal(3, 1, n),
        },
        label=(rng.random(n) < 0.1).astype(float),
    )
    got = point_in_time(history, contract.behaviour, contract.time_zone)
    assert list(got) == contract.behaviour.names() and all(v.shape == (n,) for v in got.values())
    assert np.nanmax(got["terminal_fraud_share_7d"]) <= 1 and got["calendar_night"].sum() > 0


@pytest.mark.parametrize(
    ("section", "reason"),
    [
        ("  windows:\n    - {entity: card, of: amount, over: [1d]}\n", "entity 'card' is not in roles.entities"),
        ("  windows:\n    - {entity: customer, of: mcc, over: [1d]}\n", "'mcc' is not a float, integer or boolean"),
        ("  windows:\n    - {entity: customer, of: amount, over: [1w]}\n", "'1w' is not a duration"),
        ("  windows:\n    - {entity: customer, over: [1d], stats: [mean]}\n", "stats other than count need"),
        ("  windows:\n    - {entity: customer, of: amount, over: [1d], stats: [median]}\n", "stats"),
        ("  distinct:\n    - {entity: customer, of: nothing, over: [1d]}\n", "'nothing' is not a column"),
        ("  calendar: [hour, lunar_phase]\n", "calendar"),
        ("  label_delay: soon\n", "'soon' is not a duration"),
        ("  windoes: []\n", "not a known key"),
    ],
)
def test_a_bad_declaration_is_refused_with_its_line_and_reason(section: str, reason: str) -> None:
    text = GOOD.replace("columns:", "behaviour:\n" + section + "columns:", 1)
    with pytest.raises(ContractFileError, match=reason) as refused:
        parse_contract(text, "bank.yaml")
    line = int(str(refused.value).split("bank.yaml, line ")[1].split(":")[0])
    lines = text.splitlines()
    inside = range(lines.index("behaviour:") + 1, lines.index("columns:") + 1)  # the section's own lines
    assert line in inside, (line, str(refused.value))


def test_a_feature_named_as_a_column_and_calendar_without_time_are_refused() -> None:
    clash = GOOD.replace("columns:", "behaviour:\n  since_previous: [customer]\ncolumns:", 1).replace(
        "- {name: n_items,", "- {name: customer_seconds_since_previous, type: float}\n  - {name: n_items,"
    )
    with pytest.raises(ContractFileError, match="has the name of a column"):
        parse_contract(clash)
    timeless = GOOD.replace("  event_time: ts\n", "").replace("columns:", "behaviour:\n  calendar: [hour]\ncolumns:", 1)
    with pytest.raises(ContractFileError, match=r"calendar needs roles\.event_time"):
        parse_contract(timeless)


def test_the_docs_declaration_is_a_valid_section_of_card_transactions() -> None:
    """docs/behaviour.md's example, added to the shipped card_transactions contract, reads as documented."""
    import re

    from tests.conftest import ROOT

    [section] = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "behaviour.md").read_text(), re.DOTALL)
    contract = parse_contract((ROOT / "contracts" / "card_transactions.yaml").read_text() + section)
    names = contract.behaviour.names()
    for documented in ("card_mean_amount_7d", "terminal_fraud_share_7d", "card_distinct_terminal_id_1d"):
        assert documented in names
    assert {"card_seconds_since_previous", "amount_vs_card_mean_30d", "calendar_night"} <= set(names)
    assert contract.behaviour.label_delay == 7 * 86400 and contract.behaviour.lateness == 600


def test_the_label_and_other_roles_cannot_be_aggregated_and_names_cannot_repeat() -> None:
    """Summing the label over a window would count frauds before anyone knew of them: only fraud_share may."""
    for section, reason in (
        ("  windows:\n    - {entity: terminal, of: is_fraud, over: [7d], stats: [sum]}\n", "'is_fraud' is the label"),
        ("  distinct:\n    - {entity: customer, of: is_fraud, over: [1d]}\n", "'is_fraud' is the label"),
        ("  distinct:\n    - {entity: customer, of: tx_id, over: [1d]}\n", "the transaction id"),
        ("  since_previous: [customer, customer]\n", "declared twice"),
        ("  calendar: [hour, hour]\n", "declared twice"),
    ):
        with pytest.raises(ContractFileError, match=reason):
            parse_contract(GOOD.replace("columns:", "behaviour:\n" + section + "columns:", 1))
