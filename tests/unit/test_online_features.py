"""Placing a batch in the store's port (the memory fake): an entity that lost its write to another instance is
computed again from the newer state, alone, and nothing is counted twice."""

from __future__ import annotations

from collections.abc import Sequence

from shared.adapters.online_store import MemoryEntityStore, Write
from shared.domain.behaviour import Aggregates, Behaviour
from shared.domain.entity_state import Event, Online
from shared.scoring.online import OK, OnlineFeatures

SPEC = Behaviour(aggregates=(Aggregates("card", "card", "amount", (3600.0,), ("count", "sum")),))


def _pay(time: float, tx: str, amount: float) -> Event:
    return Event(time, tx, {"card": "K"}, {"amount": amount})


class _Racing(MemoryEntityStore):
    """Before this instance's first write lands, another instance places a payment on the same card."""

    def __init__(self) -> None:
        super().__init__()
        self.raced = False

    def write(self, writes: Sequence[Write]) -> list[bool]:
        if not self.raced:
            self.raced = True
            OnlineFeatures(self, Online(SPEC), "cards").serve([_pay(1000.0, "other", 7.0)])
        return super().write(writes)


def test_an_entity_that_lost_its_write_is_computed_again_and_counts_each_payment_once() -> None:
    store = _Racing()
    mine = OnlineFeatures(store, Online(SPEC), "cards")
    got = mine.serve([_pay(1010.0, "mine", 5.0)])
    assert mine.counts["conflict"] == 1 and got.status == [OK]
    assert got.vectors.tolist() == [[1.0, 7.0]]  # computed again: the other payment, earlier, is in its window
    probe = OnlineFeatures(store, Online(SPEC), "cards").serve([_pay(1020.0, "probe", 1.0)])
    assert probe.vectors.tolist() == [[2.0, 12.0]]  # both payments, once each
    again = mine.serve([_pay(1010.0, "mine", 5.0)])  # a retry of the same payment
    assert again.vectors.tolist() == [[1.0, 7.0]] and again.placed["duplicate"] == 1
    assert OnlineFeatures(store, Online(SPEC), "cards").serve([_pay(1030.0, "p2", 1.0)]).vectors[0][0] == 3.0


def test_what_each_transaction_got_is_counted_in_the_metrics(telemetry) -> None:
    store = MemoryEntityStore()
    features = OnlineFeatures(store, Online(SPEC), "cards")
    before = {s: telemetry.total("fraudops.behaviour.transactions", status=s) for s in ("ok", "late", "unavailable")}
    features.serve([_pay(10_000.0, "a", 1.0), _pay(10_010.0, "b", 1.0)])
    features.serve([_pay(10_000.0 - 700.0, "old", 1.0)])  # beyond the 600 s bound: late
    store.reachable = False
    got = features.serve([_pay(10_020.0, "c", 1.0)])
    assert got.status == ["unavailable"]
    after = {s: telemetry.total("fraudops.behaviour.transactions", status=s) for s in before}
    assert {s: after[s] - before[s] for s in before} == {"ok": 2, "late": 1, "unavailable": 1}


def test_a_payment_dated_far_ahead_is_not_placed_and_spoils_nothing() -> None:
    """One event in 2099 would make every real payment of the card late for ever: it is refused (future)."""
    store = MemoryEntityStore()
    features = OnlineFeatures(store, Online(SPEC), "cards", clock=lambda: 10_100.0)
    ahead = features.serve([_pay(4e9, "typo", 9.0)])
    assert ahead.status == ["future"] and all(v != v for v in ahead.vectors[0])
    now = features.serve([_pay(10_050.0, "real", 2.0), _pay(10_060.0, "next", 3.0)])
    assert now.status == ["ok", "ok"] and now.vectors.tolist() == [[0.0, 0.0], [1.0, 2.0]]


def test_a_fraud_label_on_a_payment_refused_as_late_never_counts() -> None:
    """A payment refused as late is in no window of its card; a fraud verdict on it must not raise the share."""
    from shared.domain.behaviour import FraudShare

    spec = Behaviour(fraud_share=(FraudShare("card", "card", (3600.0,)),), lateness=600.0)
    features = OnlineFeatures(MemoryEntityStore(), Online(spec), "cards")
    features.serve([_pay(10_000.0, "a", 1.0)])
    assert features.serve([_pay(9_000.0, "old", 1.0)]).status == ["late"]
    assert features.label("old", 9_000.0, {"card": "K"}, True, 9_500.0) == 0
    assert features.serve([_pay(10_010.0, "b", 1.0)]).vectors.tolist() == [[0.0]]  # "a" genuine, "old" no one's
