"""The card_transactions generator writes its contract's format, with the truth it claims."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest

from shared.domain.contracts import get_contract
from training.generators.card_transactions import MECHANISMS, generate


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


def test_behavioural_mechanisms_leave_their_signature_with_known_truth(tmp_path: Path) -> None:
    """Each mechanism does what it says: every payment at a compromised terminal in its window is a fraud, a
    compromised card's frauds are five times its usual amount, a testing burst is tiny online payments at
    new terminals then a large one within minutes, a taken-over card pays abroad; the truth names each."""
    from datetime import datetime

    summary = generate(
        60_000, 4, tmp_path / "cards.csv", fraud_rate=0.003, truth=tmp_path / "truth.csv", mechanisms=MECHANISMS
    )
    texts = dict.fromkeys(["tx_id", "ts", "customer_id", "card_id", "terminal_id", "mcc", "country"], "string")
    table = pacsv.read_csv(
        tmp_path / "cards.csv",
        convert_options=pacsv.ConvertOptions(column_types=texts, strings_can_be_null=True),
    )
    truth = pacsv.read_csv(tmp_path / "truth.csv")
    assert table.num_rows == summary.rows == truth.num_rows > 60_000  # the bursts' rows were added
    mechanism = np.asarray(truth.column("mechanism").to_pylist())
    y = np.asarray(table.column("is_fraud"))
    assert set(mechanism) == {"none", *MECHANISMS}
    assert (y[mechanism != "none"] == 1).all() and (
        np.asarray(truth.column("fraud_probability"))[mechanism != "none"] == 1
    ).all()
    ids = table.column("tx_id").to_pylist()
    assert len(set(ids)) == len(ids)
    t = np.array([datetime.fromisoformat(v).timestamp() for v in table.column("ts").to_pylist()])
    assert (np.diff(t) >= 0).all()  # still in time order
    amount, channel = np.asarray(table.column("amount")), np.asarray(table.column("channel").to_pylist())
    burst = mechanism == "testing"
    assert (channel[burst] == "ecom").all() and ((amount[burst] <= 2.0) | (amount[burst] >= 300.0)).all()
    country = np.asarray(table.column("country").to_pylist(), dtype=object)
    taken = mechanism == "takeover"
    assert not any(c == "FR" for c in country[taken])  # abroad (or not sent)
    # a compromised card's frauds are far above that card's own usual payments
    cards = np.asarray(table.column("card_id").to_pylist())
    ratios = [
        np.median(amount[(cards == c) & (mechanism == "card")])
        / np.median(amount[(cards == c) & (mechanism == "none")])
        for c in set(cards[mechanism == "card"])
        if ((cards == c) & (mechanism == "none")).sum() >= 3
    ]
    assert ratios and np.median(ratios) > 3.0
    # each card spends near its own level (about half the base's spread within a card), the cards together
    # keep the base's spread: a compromised card's fivefold payment stands out against its own history
    normal = mechanism == "none"
    logs = np.log(amount[normal])
    within = [np.std(logs[cards[normal] == c]) for c in list(dict.fromkeys(cards[normal]))[:400]]
    assert 0.35 < np.median(within) < 0.65
    assert 0.9 < np.std(logs) < 1.4
