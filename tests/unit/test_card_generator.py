"""The card_transactions generator writes its contract's format, with the truth it claims."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest

from shared.domain.contracts import get_contract
from training.generators.card_transactions import generate


def test_the_file_has_the_contract_columns_both_paris_offsets_and_missing_countries(tmp_path: Path) -> None:
    summary = generate(6_000, 3, tmp_path / "cards.csv", fraud_rate=0.02, truth=tmp_path / "truth.csv")
    table = pacsv.read_csv(tmp_path / "cards.csv", convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    contract = get_contract("card_transactions")

    assert table.column_names == contract.names
    assert summary.rows == table.num_rows == 6_000 and summary.frauds == sum(table.column("is_fraud").to_pylist())
    as_text = pacsv.ConvertOptions(column_types={"ts": "string"})
    ts = pacsv.read_csv(tmp_path / "cards.csv", convert_options=as_text).column("ts").to_pylist()
    assert {t[-6:] for t in ts} == {"+02:00", "+01:00"}  # the clocks went back in Paris on 25 October
    assert 0.04 < table.column("country").null_count / table.num_rows < 0.12
    assert set(table.column("channel").to_pylist()) <= set(contract.column("channel").categories or ())
    assert len(table.column("mcc").unique()) > 100


def test_the_true_probabilities_average_to_the_rate_and_rank_the_frauds(tmp_path: Path) -> None:
    generate(40_000, 5, tmp_path / "cards.csv", fraud_rate=0.01, truth=tmp_path / "truth.csv")
    y = np.asarray(pacsv.read_csv(tmp_path / "cards.csv").column("is_fraud"))
    p = np.asarray(pacsv.read_csv(tmp_path / "truth.csv").column("fraud_probability"))

    assert p.mean() == pytest.approx(0.01, rel=0.15)
    assert y.mean() == pytest.approx(0.01, rel=0.3)
    assert p[y == 1].mean() > 5 * p[y == 0].mean()  # the probabilities carry the signal the labels were drawn from


def test_the_same_seed_gives_the_same_file(tmp_path: Path) -> None:
    generate(500, 9, tmp_path / "a.csv")
    generate(500, 9, tmp_path / "b.csv")
    generate(500, 10, tmp_path / "c.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes() != (tmp_path / "c.csv").read_bytes()
