"""The hyperparameter search: default first, deterministic by seed, stopped by its deadline."""

from __future__ import annotations

import time

import numpy as np
import pytest

from training.search import DEFAULTS, search_lightgbm


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
    assert round(first.best_value, 5) == max(h["pr_auc"] for h in first.history)
    assert first.booster.predict(parts[2]).shape == (4000,)


def test_search_stops_at_its_deadline_with_a_usable_model(parts):
    started = time.monotonic()
    result = _search(parts, trials=10_000, deadline=started + 1.5, num_boost_round=100_000)
    assert result.stopped_by == "deadline" and result.trials < 10_000
    assert time.monotonic() - started < 30  # every trial stops boosting at the deadline
    p = result.booster.predict(parts[2])
    assert np.all((p >= 0) & (p <= 1)) and result.best_value > 0.2
