"""Aggregation against plain reference implementations (loops over clients and coordinates)."""

from __future__ import annotations

import numpy as np
import pytest

from shared.federated import aggregate


def _results(clients: int = 7, seed: int = 0, shapes=((4, 3), (3,))):
    rng = np.random.default_rng(seed)
    return [
        ([rng.normal(size=s).astype(np.float32) for s in shapes], int(rng.integers(1, 500))) for _ in range(clients)
    ]


def _coords(results, layer):
    return [p[layer].ravel() for p, _ in results]


def test_fedavg_is_the_example_weighted_mean():
    results = _results()
    total = sum(n for _, n in results)
    for layer, got in enumerate(aggregate.fedavg(results)):
        expected = [
            sum(c[j] * n for c, (_, n) in zip(_coords(results, layer), results, strict=True)) / total
            for j in range(got.size)
        ]
        assert got.dtype == np.float32
        assert np.allclose(got.ravel(), expected, atol=1e-6)


@pytest.mark.parametrize("clients", [6, 7])
def test_median_is_coordinatewise_and_unweighted(clients):
    results = _results(clients=clients)
    for layer, got in enumerate(aggregate.median(results)):
        for j in range(got.size):
            values = sorted(float(c[j]) for c in _coords(results, layer))
            middle = (values[(clients - 1) // 2] + values[clients // 2]) / 2
            assert got.ravel()[j] == pytest.approx(middle, abs=1e-6)


@pytest.mark.parametrize(("clients", "beta"), [(10, 0.1), (10, 0.25), (5, 0.2), (4, 0.0)])
def test_trimmed_mean_drops_beta_at_each_end(clients, beta):
    results = _results(clients=clients, seed=3)
    k = int(beta * clients)
    for layer, got in enumerate(aggregate.trimmed_mean(results, beta)):
        for j in range(got.size):
            values = sorted(float(c[j]) for c in _coords(results, layer))
            kept = values[k : clients - k]
            assert got.ravel()[j] == pytest.approx(sum(kept) / len(kept), abs=1e-5)


def test_robust_aggregators_resist_one_scaled_update():
    results = _results(clients=5, seed=4)
    poisoned = [([p * -100 for p in results[0][0]], results[0][1]), *results[1:]]
    clean = aggregate.median(results)
    assert max(float(np.abs(a - b).max()) for a, b in zip(aggregate.median(poisoned), clean, strict=True)) < 3
    assert (
        max(
            float(np.abs(a - b).max())
            for a, b in zip(aggregate.fedavg(poisoned), aggregate.fedavg(results), strict=True)
        )
        > 10
    )


def test_clipping_bounds_the_step_and_keeps_small_ones():
    reference = [np.zeros((3,), np.float32), np.zeros((2,), np.float32)]
    update = [np.array([3.0, 0, 0], np.float32), np.array([0, 4.0], np.float32)]  # norm 5
    clipped = aggregate.clip(update, reference, 1.0)
    assert aggregate.update_norm(clipped, reference) == pytest.approx(1.0)
    assert np.allclose(clipped[0], [0.6, 0, 0]) and np.allclose(clipped[1], [0, 0.8])
    assert aggregate.clip(update, reference, 10.0) is update


@pytest.mark.parametrize("bad", [[], [([np.zeros(2)], 0)], [([np.zeros(2)], 1), ([np.zeros(3)], 1)]])
def test_bad_inputs_raise_with_a_reason(bad):
    with pytest.raises(ValueError):
        aggregate.fedavg(bad)
