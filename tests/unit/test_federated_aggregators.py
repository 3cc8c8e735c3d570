"""Aggregators are chosen once, by name, and each is one call into the pure functions."""

from __future__ import annotations

import numpy as np
import pytest

from shared.domain.documents.federated import RoundStatus
from shared.domain.errors import ConfigurationError
from shared.federated import aggregate
from shared.federated.aggregators import FedAvg, Median, TrimmedMean, aggregator_for
from shared.federated.rounds import RoundConfig, Rounds

RESULTS = [([np.array([1.0, 10.0])], 1.0), ([np.array([2.0, 20.0])], 3.0), ([np.array([9.0, -5.0])], 1.0)]


@pytest.mark.parametrize(("name", "cls"), [("fedavg", FedAvg), ("median", Median), ("trimmed_mean", TrimmedMean)])
def test_each_name_gives_its_strategy(name, cls):
    chosen = aggregator_for(name, trim_beta=0.34)
    assert isinstance(chosen, cls) and chosen.name == name


def test_each_strategy_is_its_pure_function():
    assert np.allclose(FedAvg()(RESULTS)[0], aggregate.fedavg(RESULTS)[0])
    assert np.allclose(Median()(RESULTS)[0], [2.0, 10.0])
    assert np.allclose(TrimmedMean(0.34)(RESULTS)[0], aggregate.trimmed_mean(RESULTS, 0.34)[0])


def test_an_unknown_aggregator_is_refused_when_rounds_are_configured(memory_store):
    with pytest.raises(ConfigurationError, match="unknown aggregator 'mean'; known: fedavg, median, trimmed_mean"):
        Rounds(memory_store, "exp", RoundConfig(aggregator="mean"))


def test_status_is_an_enum_that_is_also_the_stored_string():
    assert RoundStatus.CLOSED == "closed" and f"{RoundStatus.OPEN}" == "open"
