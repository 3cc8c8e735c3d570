"""The online state against the offline builder: transactions replayed in a shuffled arrival order (within the
lateness bound), some delivered twice, labels landing as they become known; every served vector must be the
builder's row for the same transaction."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.behaviour import Aggregates, Behaviour
from shared.domain.entity_state import EntityState, Event, Online, decode, encode
from shared.domain.windows import History
from tests.unit.behaviour_cases import DAY, HOUR, SPEC, ZONE, arrivals, event, history, offline


@dataclasses.dataclass
class _Replay:
    """The online path over a dict of stored bytes, as a store would keep them."""

    online: Online
    stored: dict[tuple[str, str], bytes] = dataclasses.field(default_factory=dict)
    outcomes: list[str] = dataclasses.field(default_factory=list)

    def state(self, key: str, value: str | None) -> EntityState | None:
        data = self.stored.get((key, value)) if value is not None else None
        return decode(data) if data is not None else None

    def score(self, event: Event) -> tuple[list[float], list[str]]:
        states = {key: self.state(key, event.keys.get(key)) for key in self.online.plans}
        [calendar] = self.online.calendar([event.time])
        vector, late = self.online.features(states, event, calendar)
        for key, plan in self.online.plans.items():
            value = event.keys.get(key)
            if value is None:
                continue
            state = states[key] or EntityState()
            self.outcomes.append(plan.apply(state, event))
            self.stored[(key, value)] = encode(state)
        return vector, late

    def label(self, event: Event, fraud: bool, known: float) -> None:
        for key, plan in self.online.plans.items():
            value = event.keys.get(key)
            if value is None:
                continue
            state = self.state(key, value) or EntityState()
            if plan.label(state, event.id, event.time, fraud, known):
                self.stored[(key, value)] = encode(state)


def _serve(
    h: History, spec: Behaviour, rng: np.random.Generator, redeliver: float = 0.1
) -> tuple[np.ndarray, _Replay, list[int]]:
    """The first served vector of each transaction, the replay, and the transactions in the order they arrived."""
    replay = _Replay(Online(spec, ZONE))
    served = np.full((len(h.time), len(spec.names())), np.nan)
    first = np.zeros(len(h.time), dtype=bool)
    arrived: list[int] = []
    for _, kind, i in arrivals(h, spec, rng, redeliver):
        tx = event(h, i)
        if kind == 0:
            known = h.labelled_at[i] if not math.isnan(h.labelled_at[i]) else h.time[i] + spec.label_delay
            replay.label(tx, h.label[i] == 1, known)
            continue
        vector, late = replay.score(tx)
        if not first[i]:
            assert not late, f"transaction {tx.id} arrived within the bound but was called late"
            served[i], first[i] = vector, True
            arrived.append(i)
    return served, replay, arrived


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 150), st.sampled_from([3 * DAY, 12 * DAY]))
def test_every_served_vector_is_the_builders_row(seed: int, n: int, span: float) -> None:
    rng = np.random.default_rng(seed)
    h = history(rng, n, span=span)
    served, _, arrived = _serve(h, SPEC, rng)
    built = offline(h, SPEC, arrived)
    for j, name in enumerate(SPEC.names()):
        np.testing.assert_allclose(served[:, j], built[:, j], rtol=0, atol=1e-6, equal_nan=True, err_msg=name)


def test_a_busy_history_matches_and_its_state_stays_bounded() -> None:
    """Two thousand transactions on few cards and terminals over 40 days: parity, and each entity's state
    holds at most its steps (an hour's 60 minutes, 7 days of hours), a tail and its frauds, not its history."""
    rng = np.random.default_rng(11)
    h = history(rng, 2000, span=40 * DAY)
    served, replay, arrived = _serve(h, SPEC, rng)
    built = offline(h, SPEC, arrived)
    np.testing.assert_allclose(served, built, rtol=0, atol=1e-6, equal_nan=True)
    assert replay.outcomes.count("placed") == 2 * 2000 - int(np.sum(h.columns["terminal"] == None))  # noqa: E711
    assert replay.outcomes.count("duplicate") + replay.outcomes.count("late") > 0  # redeliveries changed nothing
    for (key, _), data in replay.stored.items():
        state = decode(data)
        steps = 60 + 1 + (7 * 24 + 1 if key == "terminal" else 24 + 1)  # minute and hour steps held
        assert sum(len(b) for b in state.buckets.values()) <= steps
        assert max((r.time for r in state.tail), default=0) - min((r.time for r in state.tail), default=0) <= 600


def test_a_transaction_later_than_the_bound_is_counted_and_its_features_missing() -> None:
    spec = Behaviour(aggregates=(Aggregates("card", "card", "amount", (HOUR,), ("count", "sum")),), lateness=600.0)
    online = Online(spec)
    plan = online.plans["card"]
    state = EntityState()
    first = Event(10_000.0, "a", {"card": "K"}, {"amount": 5.0})
    assert plan.apply(state, first) == "placed"
    assert plan.apply(state, first) == "duplicate"  # a retry of the same transaction
    old = Event(10_000.0 - 601.0, "b", {"card": "K"}, {"amount": 7.0})
    vector, late = online.features({"card": state}, old, {})
    assert late == ["card"] and all(math.isnan(v) for v in vector)
    assert plan.apply(state, old) == "late" and state.late == 1
    fresh = Event(10_030.0, "c", {"card": "K"}, {"amount": 1.0})
    assert online.features({"card": state}, fresh, {}) == ([1.0, 5.0], [])  # the late one was not placed


def test_a_stored_state_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError):
        decode(b"\x93not a state")
