"""The synthetic generator: exact Kaggle format, deterministic, chunk-independent memory, known truth."""

from __future__ import annotations

import numpy as np
import pyarrow.csv as pacsv
from sklearn.metrics import roc_auc_score

from training import generate as gen


def test_kaggle_format_and_determinism(tmp_path):
    a = gen.generate(2_000, 3, tmp_path / "a.csv")
    b = gen.generate(2_000, 3, tmp_path / "b.csv")
    gen.generate(2_000, 4, tmp_path / "c.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() != (tmp_path / "c.csv").read_bytes()
    first = (tmp_path / "a.csv").read_text().splitlines()[0]
    assert first == '"Time",' + ",".join(f'"V{i}"' for i in range(1, 29)) + ',"Amount","Class"'
    assert a.rows == 2_000 and b.frauds == a.frauds


def test_realistic_marginals_and_chunked_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(gen, "CHUNK_ROWS", 25_000)
    s = gen.generate(100_000, 5, tmp_path / "g.csv", truth=tmp_path / "t.csv")
    t = pacsv.read_csv(tmp_path / "g.csv")
    assert t.num_rows == 100_000
    time = t.column("Time").to_numpy()
    assert np.all(np.diff(time) >= 0) and 150_000 < time[-1] <= 172_792
    assert 0.0010 < s.frauds / s.rows < 0.0025
    amount = t.column("Amount").to_numpy()
    assert 15 < np.median(amount) < 30 and 60 < amount.mean() < 120 and amount.min() >= 0
    var = np.array([np.var(t.column(f"V{i}").to_numpy()) for i in (1, 14, 28)])
    assert 3.0 < var[0] < 4.6 and var[2] < 0.2 and var[0] > var[1] > var[2]
    truth = pacsv.read_csv(tmp_path / "t.csv").column("fraud_probability").to_numpy()
    assert truth.size == 100_000
    bayes_auc = roc_auc_score(t.column("Class").to_numpy(), truth)
    assert 0.95 < bayes_auc < 0.999


def test_every_mechanism_writes_its_exact_probabilities_at_the_asked_fraud_rate(tmp_path):
    """The labels are drawn from the written truth: its mean is the fraud rate (within sampling noise), it ranks
    the labels far better than chance, and no two mechanisms write the same picture of fraud."""
    from training.mechanics import NAMES

    truths = {}
    for name in NAMES:
        s = gen.generate(60_000, 11, tmp_path / f"{name}.csv", truth=tmp_path / f"{name}.t.csv", mechanics_name=name)
        assert s.mechanics == name
        y = pacsv.read_csv(tmp_path / f"{name}.csv").column("Class").to_numpy()
        truth = pacsv.read_csv(tmp_path / f"{name}.t.csv").column("fraud_probability").to_numpy()
        assert 0.0008 < y.mean() < 0.0035, name
        assert abs(truth.sum() - y.sum()) < 4 * np.sqrt(truth.sum()) + 5, name  # the labels follow the truth
        assert roc_auc_score(y, truth) > 0.9, name
        truths[name] = truth
    for a in NAMES:
        for b in NAMES:
            if a < b:
                assert np.corrcoef(truths[a], truths[b])[0, 1] < 0.9, (a, b)


def test_the_drift_mechanism_moves_the_population_towards_fraud():
    from training import mechanics

    drift = mechanics.MECHANISMS["drift"]
    rng = np.random.default_rng(0)
    early, _ = mechanics.population(rng, 50_000, drift, np.zeros(50_000))
    late, _ = mechanics.population(rng, 50_000, drift, np.ones(50_000))
    shift = (late.mean(axis=0) - early.mean(axis=0)) / mechanics.STDS
    assert shift[13] < -0.9 and shift[3] > 0.7 and abs(shift[0]) < 0.05
    # fraud becomes more common because the population moves towards it (the probability takes no time)
    p_early = mechanics.probability(drift, early, np.full(50_000, 10.0), 0.002).mean()
    p_late = mechanics.probability(drift, late, np.full(50_000, 10.0), 0.002).mean()
    assert p_late > 1.5 * p_early


def test_an_unknown_mechanism_is_refused_with_the_choices(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="choose one of mixture, interactions"):
        gen.generate(10, 1, tmp_path / "x.csv", mechanics_name="nope")
