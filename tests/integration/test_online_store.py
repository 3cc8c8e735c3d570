"""The online store on a real Redis server (Debian's ``redis-server``, private, on a free loopback port): the
port's compare-and-set, the served features against the offline builder through it, exactly once under
re-batched redeliveries and concurrent instances, one round trip each way per batch, erasure, expiry, and what
happens when the store is down or a record is not a state."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from cli.devtools.redis import RedisServer
from shared.adapters.online_store import (
    MemoryEntityStore,
    RedisEntityStore,
    StoreUnreachableError,
    Write,
    connect,
    record_key,
)
from shared.domain.entity_state import Event, Online, decode
from shared.domain.errors import OnlineStoreUnavailableError
from shared.domain.windows import History
from shared.scoring.online import LATE, OK, UNAVAILABLE, OnlineFeatures
from tests.unit.behaviour_cases import SPEC, ZONE, arrivals, event, history, offline


@pytest.fixture
def redis_store(redis_module: RedisServer) -> Iterator[RedisEntityStore]:
    client = connect(redis_module.url(), password=redis_module.password, timeout=2.0)
    client.flushdb()
    yield RedisEntityStore(client)
    client.close()


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> MemoryEntityStore | RedisEntityStore:
    if request.param == "memory":
        return MemoryEntityStore()
    return request.getfixturevalue("redis_store")  # type: ignore[no-any-return]


def test_a_write_succeeds_only_on_the_version_it_read(store: MemoryEntityStore | RedisEntityStore) -> None:
    [missing] = store.read(["k"])
    assert missing.state is None and missing.version == ""
    assert store.write([Write("k", b"one", "", 60.0)]) == [True]
    assert store.write([Write("k", b"lost", "", 60.0)]) == [False]  # another instance wrote first
    [now] = store.read(["k"])
    assert now.state == b"one"
    assert store.write([Write("k", b"two", now.version, 60.0), Write("j", b"x", "7", 60.0)]) == [True, False]
    assert store.read(["k"])[0].state == b"two"
    assert store.erase(["k", "nothing"]) == 1 and store.read(["k"])[0].state is None
    assert store.size().entities == 0


def _serve_in_batches(features: OnlineFeatures, seed: int, n: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Transactions in a shuffled arrival order, cut into batches of 1 to 40 (a redelivery lands in another
    batch than the first delivery), labels applied as they become known; the first served vectors, the
    builder's rows for the same transactions, and every delivery's status."""
    rng = np.random.default_rng(seed)
    h = history(rng, n)
    served = np.full((n, len(SPEC.names())), np.nan)
    first, arrived, statuses = np.zeros(n, dtype=bool), [], []
    batch: list[int] = []

    def flush() -> None:
        got = features.serve([event(h, j) for j in batch])
        for row, j in enumerate(batch):
            statuses.append(got.status[row])
            if not first[j]:
                served[j], first[j] = got.vectors[row], True
                arrived.append(j)
        batch.clear()

    size = int(rng.integers(1, 41))
    for _, kind, i in arrivals(h, SPEC, rng, redeliver=0.2):
        if kind == 0:  # a label: what arrived before it is placed first
            flush()
            known = h.labelled_at[i] if not np.isnan(h.labelled_at[i]) else h.time[i] + SPEC.label_delay
            features.label(str(h.ids[i]), float(h.time[i]), dict(event(h, i).keys), h.label[i] == 1, float(known))
            continue
        batch.append(i)
        if len(batch) >= size:
            flush()
            size = int(rng.integers(1, 41))
    flush()
    return served, offline(h, SPEC, arrived), statuses


@pytest.mark.parametrize("seed", [1, 2])
def test_served_features_through_redis_are_the_builders_rows(redis_store: RedisEntityStore, seed: int) -> None:
    features = OnlineFeatures(redis_store, Online(SPEC, ZONE), "cards")
    served, built, statuses = _serve_in_batches(features, seed, 400)
    np.testing.assert_allclose(served, built, rtol=0, atol=1e-6, equal_nan=True)
    assert set(statuses) <= {OK, LATE} and statuses.count(OK) >= 400


def test_two_instances_at_once_lose_nothing_and_count_nothing_twice(redis_module: RedisServer) -> None:
    """Two instances (clients) serve the same transactions, each delivered to both, on few cards at once:
    every compare-and-set that loses is computed again, and each card's state counts each transaction once."""
    spec = SPEC
    h = history(np.random.default_rng(5), 600)
    order = np.lexsort((h.ids.astype(str), h.time))
    clients = [connect(redis_module.url(), password=redis_module.password, timeout=2.0) for _ in range(2)]
    clients[0].flushdb()
    instances = [OnlineFeatures(RedisEntityStore(c), Online(spec, ZONE), "cards") for c in clients]
    errors: list[BaseException] = []

    def run(features: OnlineFeatures) -> None:
        import random

        from shared.domain.errors import RetryLaterError

        try:
            for start in range(0, len(order), 7):
                batch = [event(h, int(i)) for i in order[start : start + 7]]
                for attempt in range(20):  # as the stream and the HTTP caller do: the batch again, later
                    try:
                        features.serve(batch)
                        break
                    except RetryLaterError:  # lost 8 compare-and-sets in a row to the other instance (a busy host)
                        if attempt == 19:
                            raise
                        time.sleep(random.uniform(0.0, 0.01))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f,)) for f in instances]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    # a probe per card after everything: its windows count each transaction once, as the builder does
    cards = sorted({str(c) for c in h.columns["card"]})
    end = float(h.time.max()) + 1.0
    probes = History(
        np.append(h.time, [end] * len(cards)),
        np.append(h.ids, [f"~probe-{c}" for c in cards]),
        {
            "card": np.append(h.columns["card"], cards),
            "terminal": np.append(h.columns["terminal"], [None] * len(cards)),
            "amount": np.append(h.columns["amount"], [1.0] * len(cards)),
        },
        np.append(h.label, [np.nan] * len(cards)),
        np.append(h.labelled_at, [np.nan] * len(cards)),
    )
    expected = offline(probes, spec)[len(h.time) :]
    got = instances[0].serve([event(probes, len(h.time) + k) for k in range(len(cards))])
    card_columns = [j for j, n in enumerate(spec.names()) if n.startswith("card_")]
    np.testing.assert_allclose(
        got.vectors[:, card_columns], expected[:, card_columns], rtol=0, atol=1e-6, equal_nan=True
    )
    for c in clients:
        c.close()


def test_a_batch_costs_one_round_trip_each_way(redis_store: RedisEntityStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import redis.connection

    sent: list[int] = []
    original = redis.connection.Connection.send_packed_command

    def counting(self: object, command: object, check_health: bool = True) -> None:
        sent.append(1)
        original(self, command, check_health)  # type: ignore[arg-type]

    features = OnlineFeatures(redis_store, Online(SPEC, ZONE), "cards")
    h = history(np.random.default_rng(3), 1000)
    features.serve([event(h, 0)])  # the script is loaded once per connection
    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)
    got = features.serve([event(h, i) for i in range(1, 1000)])
    assert len(sent) == 2, f"{len(sent)} round trips for a batch of 999"
    assert got.vectors.shape == (999, len(SPEC.names()))


def test_an_erased_entity_has_no_state_and_records_expire(redis_store: RedisEntityStore) -> None:
    features = OnlineFeatures(redis_store, Online(SPEC, ZONE), "cards")

    def payment(time: float, tx: str) -> Event:
        keys = {"card": "pseudo-K", "terminal": "T"}
        return Event(time, tx, keys, {"amount": 3.0}, keys)

    features.serve([payment(1_790_000_000.0, "t1")])
    key = record_key("cards", "card", "pseudo-K")
    ttl = redis_store.client.pttl(key)
    assert 0 < ttl <= (7 * 86400 + SPEC.lateness) * 1000  # past the longest window, not forever
    assert features.erase("card", "pseudo-K") == 1
    assert redis_store.read([key])[0].state is None
    got = features.serve([payment(1_790_000_100.0, "t2")])
    assert got.vectors[0][SPEC.names().index("card_count_amount_1h")] == 0.0  # nothing of the erased history


def test_a_store_that_is_down_scores_with_features_missing_or_refuses(redis_module: RedisServer) -> None:
    from cli.server import free_port

    closed = connect(f"redis://127.0.0.1:{free_port()}/0", password="x", timeout=0.2)
    h = history(np.random.default_rng(9), 5)
    events = [event(h, i) for i in range(5)]
    missing = OnlineFeatures(RedisEntityStore(closed), Online(SPEC, ZONE), "cards").serve(events)
    assert missing.status == [UNAVAILABLE] * 5
    calendar = [j for j, n in enumerate(SPEC.names()) if n.startswith("calendar_")]
    others = [j for j in range(len(SPEC.names())) if j not in calendar]
    assert np.isnan(missing.vectors[:, others]).all() and not np.isnan(missing.vectors[:, calendar]).any()
    refusing = OnlineFeatures(RedisEntityStore(closed), Online(SPEC, ZONE), "cards", on_unavailable="refuse")
    with pytest.raises(OnlineStoreUnavailableError, match="configured to refuse"):
        refusing.serve(events)
    with pytest.raises(StoreUnreachableError, match="did not answer"):
        RedisEntityStore(closed).read(["k"])


def test_a_record_that_is_not_a_state_is_reported_and_started_again(redis_store: RedisEntityStore) -> None:
    features = OnlineFeatures(redis_store, Online(SPEC, ZONE), "cards")
    key = record_key("cards", "card", "K")
    redis_store.client.hset(key, mapping={"v": "3", "s": b"\xc1 not msgpack"})
    tx = Event(1_790_000_000.0, "t1", {"card": "K", "terminal": None}, {"amount": 3.0}, {"card": "K"})
    got = features.serve([tx])
    assert got.status == [UNAVAILABLE] and features.counts["corrupt"] == 1
    assert np.isnan(got.vectors[0][SPEC.names().index("card_count_amount_1h")])
    fresh = decode(redis_store.read([key])[0].state or b"")  # a fresh, readable state, the batch placed in it
    assert fresh.newest == tx.time and [r.id for r in fresh.tail] == ["t1"]
