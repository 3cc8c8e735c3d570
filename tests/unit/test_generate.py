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
