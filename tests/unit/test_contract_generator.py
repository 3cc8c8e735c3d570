"""Rows drawn from any contract (``training.generators.by_contract``): what it declares, and the truth it claims."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from shared.domain.contract import ColumnType
from shared.domain.contract_file import parse_contract
from shared.domain.contracts import get_contract
from training.generators import generate_dataset
from training.generators.by_contract import generate

BANK = """
name: bank_loans
description: a test's own contract, written here and not shipped
roles:
  event_time: at
  label: {column: defaulted, positive: 1, meaning: default}
  transaction_id: loan_id
  amount: principal
  entities: {customer: client}
columns:
  - {name: loan_id, type: string}
  - {name: at, type: timestamp}
  - {name: client, type: string, personal: true}
  - {name: principal, type: float, minimum: 100, maximum: 50000}
  - {name: term, type: integer, allowed: [12, 24, 36, 60]}
  - {name: region, type: categorical, nullable: true}
  - {name: grade, type: categorical, categories: [A, B, C, D]}
  - {name: has_guarantor, type: boolean}
  - {name: score, type: float, nullable: true}
  - {name: defaulted, type: integer, allowed: [0, 1]}
"""


def _read(path: Path, contract) -> pa.Table:
    texts = {c.name: pa.string() for c in contract.columns if c.type in (ColumnType.STRING, ColumnType.TIMESTAMP)}
    options = pacsv.ConvertOptions(column_types=texts, strings_can_be_null=True)
    return pacsv.read_csv(path, convert_options=options)


def test_home_credits_rows_keep_every_declared_rule(tmp_path: Path) -> None:
    contract = get_contract("home_credit")
    summary = generate_dataset("home_credit", 3_000, 2, tmp_path / "hc.csv")  # no generator of its own
    table = _read(tmp_path / "hc.csv", contract)

    assert table.column_names == contract.names and summary.rows == table.num_rows == 3_000
    for col in contract.columns:
        values = table.column(col.name)
        assert (values.null_count > 0) is col.nullable, col.name  # 5 to 25 % missing where nullable, else none
        present = [v for v in values.to_pylist() if v is not None]
        if col.allowed:
            assert set(present) <= set(col.allowed), col.name
        if col.categories:
            assert set(present) <= set(col.categories), col.name
        if col.minimum is not None:
            assert min(present) >= col.minimum, col.name
        if col.maximum is not None:
            assert max(present) <= col.maximum, col.name
        if col.type is ColumnType.INTEGER:
            assert all(float(v).is_integer() for v in present), col.name
    assert len(set(table.column("SK_ID_CURR").to_pylist())) == 3_000  # the transaction id is unique


def test_a_contract_written_by_a_test_gets_its_times_entities_and_types(tmp_path: Path) -> None:
    contract = parse_contract(BANK, "bank_loans.yaml")
    generate(contract, 2_000, 4, tmp_path / "loans.csv", fraud_rate=0.1)
    table = _read(tmp_path / "loans.csv", contract)

    stamps = table.column("at").to_pylist()
    assert all(s.endswith("+00:00") for s in stamps) and stamps == sorted(stamps)  # ISO with offset, in order
    clients = table.column("client").to_pylist()
    assert 40 < len(set(clients)) < 400  # an entity recurs (about twenty rows each)
    assert set(table.column("has_guarantor").to_pylist()) == {True, False}
    regions = {v for v in table.column("region").to_pylist() if v}
    assert len(regions) >= 5 and regions <= {f"region_{k}" for k in range(10)}  # an open set: ten made up
    assert set(table.column("term").to_pylist()) == {12, 24, 36, 60}


def test_the_truth_averages_to_the_rate_ranks_the_positives_and_repeats_by_seed(tmp_path: Path) -> None:
    contract = get_contract("home_credit")
    generate(contract, 30_000, 5, tmp_path / "a.csv", fraud_rate=0.08, truth=tmp_path / "truth.csv")
    y = np.asarray(_read(tmp_path / "a.csv", contract).column("TARGET"))
    p = np.asarray(pacsv.read_csv(tmp_path / "truth.csv").column("fraud_probability"))

    assert p.mean() == pytest.approx(0.08, rel=0.15) and y.mean() == pytest.approx(0.08, rel=0.2)
    assert p[y == 1].mean() > 1.5 * p[y == 0].mean()  # the labels were drawn from these probabilities
    generate(contract, 500, 5, tmp_path / "b.csv")
    generate(contract, 500, 5, tmp_path / "c.csv")
    assert (tmp_path / "b.csv").read_bytes() == (tmp_path / "c.csv").read_bytes()
    generate(contract, 500, 6, tmp_path / "d.csv")
    assert (tmp_path / "b.csv").read_bytes() != (tmp_path / "d.csv").read_bytes()


def test_bad_requests_are_refused_with_a_reason(tmp_path: Path) -> None:
    contract = get_contract("home_credit")
    with pytest.raises(ValueError, match="rows must be at least 1"):
        generate(contract, 0, 1, tmp_path / "x.csv")
    with pytest.raises(ValueError, match=r"between 0 and 0\.5"):
        generate(contract, 10, 1, tmp_path / "x.csv", fraud_rate=0.7)
    with pytest.raises(ValueError, match="--mechanics applies to creditcard"):
        generate_dataset("home_credit", 10, 1, tmp_path / "x.csv", mechanics="ring")
