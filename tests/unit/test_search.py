"""The hyperparameter search: default first, deterministic by seed, stopped by its deadline."""

from __future__ import annotations

import time

import numpy as np
import pytest

from training.search import DEFAULTS, accept_challenger, search_lightgbm


@pytest.fixture(scope="module")
def parts():
    rng = np.random.default_rng(5)
    n = 12_000
    x = rng.standard_normal((n, 6)).astype(np.float32)
    logit = -5.0 + 2.0 * x[:, 0] - 1.5 * x[:, 1] + x[:, 2] * x[:, 3]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return x[:8000], y[:8000], x[8000:], y[8000:]


def _search(parts, **kwargs):
    x_train, y_train, x_valid, y_valid = parts
    options = {"seed": 7, "trials": 3, "deadline": time.monotonic() + 300, "num_boost_round": 60, **kwargs}
    return search_lightgbm(x_train, y_train, x_valid, y_valid, [f"f{i}" for i in range(6)], **options)


def test_search_runs_the_defaults_first_and_is_deterministic(parts):
    first, second = _search(parts), _search(parts)
    assert first.trials == 3 and first.stopped_by == "trials"
    assert first.history[0]["learning_rate"] == DEFAULTS["learning_rate"]
    assert first.params == second.params and first.best_value == second.best_value
    kept = [h for h in first.history if h["kept"]]
    assert kept[0]["trial"] == 0 and round(first.best_value, 5) == kept[-1]["pr_auc"]
    # a later trial with a higher validation PR-AUC was judged by the bootstrap, kept or not
    assert all("bootstrap_win_share" in h for h in first.history[1:] if h["pr_auc"] > first.history[0]["pr_auc"])
    assert first.booster.predict(parts[2]).shape == (4000,)


def test_search_stops_at_its_deadline_with_a_usable_model(parts):
    started = time.monotonic()
    result = _search(parts, trials=10_000, deadline=started + 1.5, num_boost_round=100_000)
    assert result.stopped_by == "deadline" and result.trials < 10_000
    assert time.monotonic() - started < 30  # every trial stops boosting at the deadline
    p = result.booster.predict(parts[2])
    assert np.all((p >= 0) & (p <= 1)) and result.best_value > 0.2


@pytest.mark.slow
def test_a_challenger_must_beat_the_default_beyond_the_noise():
    rng = np.random.default_rng(0)
    y = (rng.random(20_000) < 0.005).astype(np.int8)  # about a hundred positives, as in a validation part
    truth = y * 2.0 + rng.standard_normal(y.size)
    noisy = truth + 0.05 * rng.standard_normal(y.size)  # the same model up to noise
    better = y * 4.0 + rng.standard_normal(y.size)  # a clearly stronger signal
    assert accept_challenger(y, truth, better, seed=1)[0]
    accepted, share = accept_challenger(y, truth, noisy, seed=1)
    assert not accepted and 0.0 < share < 0.95
    assert not accept_challenger(y, better, truth, seed=1)[0]
