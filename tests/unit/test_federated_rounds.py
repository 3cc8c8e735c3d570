"""The round state machine on the in-memory store (Azurite's contract): transitions, rejections, concurrent banks."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from shared.adapters.memory_store import MemoryBlobStore
from shared.federated.merge import capped_weights
from shared.federated.params import BadParametersError, from_wire, to_wire
from shared.federated.rounds import RoundConfig, Rounds, RoundStateError
from tests.unit.federated_parts import INITIAL, Clock, update


@pytest.fixture
def store():
    s = MemoryBlobStore()
    s.ensure_containers()
    return s


@pytest.fixture
def rounds(store):
    r = Rounds(store, "exp", RoundConfig(min_clients=3, deadline_seconds=60), clock=Clock())
    r.start(INITIAL)
    return r


def test_round_closes_at_min_clients_with_the_weighted_average(rounds):
    rounds.submit(1, "a", update(1.0), 100, {"auc": 0.9})
    state = rounds.submit(1, "b", update(2.0), 100, {"auc": 0.8})
    assert state.status == "open" and sorted(state.participants) == ["a", "b"]
    closed = rounds.submit(1, "c", update(4.0), 200, {"auc": 0.7})
    assert closed.status == "closed" and closed.aggregate_metrics["auc"] == pytest.approx(0.775)
    model = rounds.global_model(2)
    assert np.allclose(model["coef"], (100 * 1 + 100 * 2 + 200 * 4) / 400)
    assert rounds.state(2).status == "open" and rounds.current() == 2


def test_rejections(rounds):
    rounds.submit(1, "a", update(1.0), 10, {})
    assert rounds.submit(1, "a", update(1.0), 10, {}).participants["a"].examples == 10  # a retry: same answer
    with pytest.raises(RoundStateError, match="already sent"):
        rounds.submit(1, "a", update(1.5), 10, {})  # a different update from the same bank
    with pytest.raises(BadParametersError, match="do not match"):
        rounds.submit(1, "b", update(1.0, n=5), 10, {})
    with pytest.raises(BadParametersError, match="NaN"):
        rounds.submit(1, "b", update(float("nan")), 10, {})
    with pytest.raises(BadParametersError, match="whole number from 1"):
        rounds.submit(1, "b", update(1.0), 0, {})
    with pytest.raises(BadParametersError, match="header declares"):
        rounds.submit(1, "b", b"not safetensors", 10, {})
    with pytest.raises(BadParametersError, match="not float32"):
        from safetensors.numpy import save

        rounds.submit(1, "b", save({"coef": np.zeros(4), "intercept": np.zeros(1)}), 10, {})
    rounds.submit(1, "b", update(1.0), 10, {})
    assert rounds.submit(1, "c", update(1.0), 10, {}).status == "closed"
    with pytest.raises(RoundStateError, match="closed, not open"):
        rounds.submit(1, "d", update(1.0), 10, {})


def test_round_without_enough_updates_stays_open_and_says_why(rounds):
    rounds.submit(1, "a", update(1.0), 10, {})
    early = rounds.aggregate(1, force=True)
    assert early.status == "open" and "1 of 3" in early.why
    rounds.clock.now += 120
    late = rounds.aggregate(1, force=True)
    assert late.status == "open" and "deadline has passed" in late.why


def test_a_step_over_the_clipping_bound_is_clipped_not_refused(store):
    r = Rounds(store, "clip", RoundConfig(min_clients=2, clip_bound=1.0))
    r.start(INITIAL)
    assert r.submit(1, "a", update(1.0), 10, {}).participants["a"].norm == pytest.approx(np.sqrt(5))
    closed = r.submit(1, "b", update(0.1), 10, {})
    assert closed.status == "closed" and closed.clipped == ["a"]
    # a's step scaled to norm 1 (each coordinate 1/sqrt(5)), averaged with b's 0.1
    assert np.allclose(r.global_model(2)["coef"], (1 / np.sqrt(5) + 0.1) / 2, atol=1e-6)


def test_concurrent_banks_one_aggregation_every_update_counted(store):
    r = Rounds(store, "busy", RoundConfig(min_clients=6))
    r.start(INITIAL)
    errors: list[Exception] = []

    def send(i: int) -> None:
        try:
            r.submit(1, f"bank{i}", update(float(i)), 10 + i, {})
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    state = r.state(1)
    assert state.status == "closed" and sorted(state.participants) == [f"bank{i}" for i in range(6)]
    expected = sum(i * (10 + i) for i in range(6)) / sum(10 + i for i in range(6))
    assert np.allclose(r.global_model(2)["coef"], expected)
    assert r.state(2).participants == {}
    assert len(store.list_names("federated", "busy/global/")) == 2  # round 1 and round 2: one aggregation


def test_weights_are_capped_so_no_bank_dominates():
    weights = capped_weights([1_000_000, 100, 100, 100], 0.4)
    total = sum(weights)
    assert max(weights) / total == pytest.approx(0.4) and weights[1:] == [100, 100, 100]
    assert capped_weights([5, 5], 0.4) == [1.0, 1.0]


def test_npz_roundtrip_and_limits():
    data = to_wire(INITIAL)
    assert {k: v.shape for k, v in from_wire(data).items()} == {"coef": (4,), "intercept": (1,)}
    with pytest.raises(BadParametersError, match="more than 3"):
        from_wire(data, max_parameters=3)


def test_each_transition_is_a_span_and_a_count(rounds, telemetry):
    """open (round 2 after the close), aggregating, closed: each once, even when a bank retries."""
    for bank in ("a", "b", "c"):
        rounds.submit(1, bank, update(1.0), 10, {})
    rounds.submit(1, "c", update(1.0), 10, {})  # a retry of an accepted update: no new transition
    seen = [(s.attributes["round"], s.attributes["status"]) for s in telemetry.spans("federated.transition")]
    assert seen == [(1, "aggregating"), (1, "closed"), (2, "open")]
    assert telemetry.total("fraudops.federated.transitions", experiment="exp", status="closed") >= 1


def test_each_transition_is_a_line_of_the_audit_chain(rounds, store):
    from shared.adapters.audit import AuditLog

    for bank in ("a", "b", "c"):
        rounds.submit(1, bank, update(1.0), 10, {})
    rounds.submit(1, "c", update(1.0), 10, {})  # a retry: no new transition, no new line
    entries = [e for e in AuditLog(store).entries() if e.act == "round_transition"]
    assert [(e.details["round"], e.details["status"]) for e in entries] == [
        (1, "open"),  # the fixture's start
        (1, "aggregating"),
        (1, "closed"),
        (2, "open"),
    ]
    assert entries[2].details["participants"] == ["a", "b", "c"] and entries[2].reason == "round 1 of exp is closed"
    assert AuditLog(store).verify().intact


def test_a_round_state_written_before_the_typed_document_still_reads_and_closes(store):
    """Issue 35: state.json as the dict-based state machine wrote it (no schema_version, participants without
    digests, no noise history) is read into the typed state, and the round closes from it."""
    import json

    from shared.domain.documents.federated import RoundState

    r = Rounds(store, "old", RoundConfig(min_clients=2), clock=Clock())
    r.start(INITIAL)
    names = {b: r.repository.put_update(1, b, f"{b}-digest", update(v)) for b, v in (("a", 1.0), ("b", 3.0))}
    old = {
        "round": 1,
        "kind": "model",
        "status": "open",
        "opened_at": 1000.0,
        "deadline": 4600.0,
        "min_clients": 2,
        "aggregator": "fedavg",
        "trim_beta": None,
        "clip_bound": None,
        "noise_multiplier": None,
        "dp_delta": None,
        "max_weight_share": 0.5,
        "participants": {
            b: {"examples": 10, "metrics": {"auc": 0.5}, "update": name, "received_at": 1000.0}
            for b, name in names.items()
        },
    }
    _, etag = store.get_bytes("federated", "old/round-1/state.json")
    store.put_bytes("federated", "old/round-1/state.json", json.dumps(old).encode(), if_match=etag)
    state = r.state(1)
    assert isinstance(state, RoundState) and state.schema_version == 1 and state.participants["a"].sha256 is None
    closed = r.aggregate(1)
    assert closed.status == "closed" and closed.noise_history == [None] and closed.aggregate_metrics == {"auc": 0.5}
    assert np.allclose(r.global_model(2)["coef"], 2.0) and r.current() == 2
