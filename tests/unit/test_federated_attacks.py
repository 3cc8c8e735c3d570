"""Hostile banks and crashed instances against the federated state machine (issue 18), on the in-memory store.

Each test performs one attack or injects one fault and asserts the safe outcome. The HTTP-level
attacks (headers, bodies, the OpenAPI document) are in tests/integration/test_federated_attacks_http.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

from fraudops_bank.signing import sign
from shared.adapters.memory_store import MemoryBlobStore
from shared.domain.errors import ConcurrentUpdateError, ConfigurationError, RetryLaterError
from shared.federated import aggregate, model, privacy
from shared.federated.aggregators import aggregator_for
from shared.federated.auth import AuthError, single_headers, verify
from shared.federated.banks import BankIdError, bank_id
from shared.federated.merge import capped_weights, merge
from shared.federated.params import BadParametersError, from_stored, from_wire, to_wire
from shared.federated.rounds import RoundConfig, Rounds, RoundStateError
from shared.federated.statistics import combine
from tests.unit.federated_parts import INITIAL, Clock, update


@pytest.fixture
def store() -> MemoryBlobStore:
    s = MemoryBlobStore()
    s.ensure_containers()
    return s


def _rounds(store, experiment="exp", clock=None, **config):
    r = Rounds(store, experiment, RoundConfig(**{"min_clients": 3, **config}), clock=clock or Clock())
    r.start(INITIAL)
    return r


# ---- 1. one bank as many participants -------------------------------------------------------------


class CaseFoldingKeys:
    """A key store that folds case as Key Vault's secret names do: fl-bank-Bank-A is fl-bank-bank-a."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        self.keys = {k.lower(): v for k, v in keys.items()}
        self.lookups: list[str] = []

    def get(self, bank: str) -> bytes | None:
        self.lookups.append(bank)
        return self.keys.get(bank.lower())


def test_one_key_cannot_sign_in_as_several_spellings_of_one_bank(store):
    keys = CaseFoldingKeys({"bank-a": b"key-a"})
    r = _rounds(store)
    path = "/api/federated/rounds/1/updates"
    participants = set()
    for spelling in ("bank-a", "Bank-a", "BANK-A"):
        body = update(1.0 + len(participants))
        headers = {k.lower(): v for k, v in sign(b"key-a", "POST", path, body, bank=spelling, now=1e9).items()}
        who = verify(headers, "POST", path, body, keys=keys, store=store, now=1e9)
        assert who == "bank-a"  # one canonical id, whatever the spelling
        try:
            r.submit(1, who, body, 100, {})
            participants.add(who)
        except RoundStateError as exc:
            assert "already sent" in exc.reason
    state = r.state(1)
    assert list(state.participants) == ["bank-a"] and state.status == "open"  # the quorum of 3 is not filled
    assert set(keys.lookups) == {"bank-a"}
    # nonces are per canonical bank too: the same nonce under another spelling is a replay
    body = update(9.0)
    headers = {k.lower(): v for k, v in sign(b"key-a", "POST", path, body, bank="bank-a", now=1e9).items()}
    verify(headers, "POST", path, body, keys=keys, store=store, now=1e9)
    headers["x-fl-bank"] = "BANK-A"
    with pytest.raises(AuthError, match="already used"):
        verify(headers, "POST", path, body, keys=keys, store=store, now=1e9)


@pytest.mark.parametrize("raw", ["", "bank a", "bank_a", "-bank", "bank-", "b" * 65, "bänk", "bank\n", "../x"])
def test_bank_ids_outside_the_one_pattern_are_refused(raw):
    with pytest.raises(BankIdError, match="a bank id is"):
        bank_id(raw)
    assert bank_id("Bank-A7") == "bank-a7"


def test_the_state_machine_canonicalises_ids_on_its_own(store):
    r = _rounds(store)
    r.submit(1, "bank-b", update(1.0), 10, {})
    with pytest.raises(RoundStateError, match="already sent"):
        r.submit(1, "BANK-B", update(2.0), 10, {})


# ---- 2. "robust" aggregation that is not; example counts that overflow ----------------------------


def test_trimmed_mean_is_scipys_trim_mean_coordinatewise():
    """The pure function stays what Flower's aggregate_trimmed_avg is (both are scipy's trim_mean)."""
    from scipy.stats import trim_mean

    rng = np.random.default_rng(3)
    for clients, beta in ((3, 0.2), (3, 0.34), (5, 0.2), (10, 0.1), (7, 0.45)):
        results = [([rng.normal(size=(6, 3)).astype(np.float32)], 1) for _ in range(clients)]
        stacked = np.stack([p[0] for p, _ in results])
        ours = aggregate.trimmed_mean([([p[0].copy()], n) for p, n in results], beta)[0]
        assert np.allclose(ours, trim_mean(stacked, beta, axis=0), atol=1e-6)


def test_a_trimmed_mean_that_trims_nothing_at_its_quorum_is_refused_with_a_reason(store):
    with pytest.raises(ConfigurationError, match=r"drops int\(0.2 x 3\) = 0 updates.*at least 0.334"):
        Rounds(store, "x", RoundConfig(min_clients=3, aggregator="trimmed_mean", trim_beta=0.2))
    with pytest.raises(ConfigurationError, match="no more robust than a mean"):
        Rounds(store, "x", RoundConfig(min_clients=2, aggregator="median"))


def test_the_default_trimmed_mean_survives_one_huge_update_among_three(store):
    """Before: beta 0.2 at a quorum of 3 trimmed nothing, and one update of 3e38 set the model."""
    r = _rounds(store, aggregator="trimmed_mean")  # trim_beta unset: the default for the quorum
    r.submit(1, "a", update(1.0), 10, {})
    r.submit(1, "b", update(2.0), 10, {})
    closed = r.submit(1, "evil", update(3e38), 10, {})
    assert closed.status == "closed" and closed.trim_beta == pytest.approx(0.334)
    assert np.allclose(r.global_model(2)["coef"], 2.0)  # the median of three: the attacker is trimmed


def test_claimed_example_counts_cannot_overflow_the_weights(store):
    """Before: two banks claiming 1e308 made the total infinite; the cap was skipped and every weight was 0."""
    with pytest.raises(ValueError, match="total finite"):
        capped_weights([10**308, 10**308, 10], 0.5)
    with pytest.raises(ValueError, match="more than a float"):
        aggregate.fedavg([([np.ones(2)], 1e308), ([np.ones(2)], 1e308)])
    r = _rounds(store)
    for claim in (10**308, 10**400, 2**63, 1_000_000_001, 0, -5, True, 1.5):
        with pytest.raises(BadParametersError, match="whole number from 1 to 1000000000"):
            r.submit(1, "a", update(1.0), claim, {})  # type: ignore[arg-type]
    assert r.state(1).participants == {}


def test_the_largest_allowed_claim_still_leaves_the_cap_in_force(store):
    r = _rounds(store, max_weight_share=0.5)
    r.submit(1, "a", update(1.0), 100, {})
    r.submit(1, "b", update(1.0), 100, {})
    closed = r.submit(1, "liar", update(10.0), 1_000_000_000, {})
    share = closed.weights["liar"] / sum(closed.weights.values())
    assert share == pytest.approx(0.5)
    assert np.allclose(r.global_model(2)["coef"], 0.5 * 10 + 0.5 * 1)


# ---- 3. round 0 poisons the shared scaler ---------------------------------------------------------


def _stats_rounds(store, **config):
    r = Rounds(store, "stats", RoundConfig(**{"min_clients": 3, **config}), clock=Clock())
    r.start_with_statistics(4)
    return r


def _stats(x: np.ndarray) -> bytes:
    return to_wire(model.sufficient_statistics(x))


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda s: s.update(count=np.array([-100], np.float32)), "whole number of rows"),
        (lambda s: s.update(count=np.array([99.5], np.float32)), "whole number of rows"),
        (lambda s: s.update(count=np.array([5000], np.float32)), "X-FL-Examples says 100"),
        (lambda s: s.update(sumsq=-s["sumsq"]), "negative"),
        (lambda s: s.update(sumsq=s["sumsq"] * 1e-6), "negative variance"),
        (lambda s: s.update(sum=np.full(4, np.inf, np.float32)), "NaN or infinite"),
    ],
)
def test_round_zero_statistics_that_no_rows_could_give_are_refused(store, tamper, reason):
    r = _stats_rounds(store)
    stats = model.sufficient_statistics(np.random.default_rng(0).normal(3, 2, size=(100, 4)))
    tamper(stats)
    with pytest.raises(BadParametersError, match=reason):
        r.submit(0, "evil", to_wire(stats), 100, {})
    assert r.state(0).participants == {}


def test_one_bank_cannot_move_the_shared_scaler_far_with_valid_but_extreme_statistics(store):
    rng = np.random.default_rng(1)
    r = _stats_rounds(store, aggregator="median")
    for bank in ("a", "b"):
        r.submit(0, bank, _stats(rng.normal(3, 2, size=(1000, 4))), 1000, {})
    r.submit(0, "evil", _stats(rng.normal(1e6, 1e5, size=(1000, 4))), 1000, {})
    scaler = r.scaler()
    assert scaler is not None
    assert np.all(np.abs(scaler["mean"] - 3) < 0.5) and np.all(np.abs(scaler["scale"] - 2) < 0.5)
    assert r.state(1).status == "open"


def test_the_fedavg_scaler_is_the_pooled_one_for_honest_banks():
    rng = np.random.default_rng(2)
    parts = [rng.normal(5, 3, size=(n, 4)) for n in (300, 500, 700)]
    pooled = model.scaler_from(model.sufficient_statistics(np.concatenate(parts)))
    counts = [len(p) for p in parts]
    got = combine(
        [model.sufficient_statistics(p) for p in parts],
        [float(c) for c in counts],
        aggregator_for("fedavg", trim_beta=0),
    )
    assert np.allclose(got["mean"], pooled["mean"], rtol=1e-5) and np.allclose(got["scale"], pooled["scale"], rtol=1e-4)


def test_a_poisoned_stored_scaler_is_a_409_with_a_reason_and_an_admin_rederives_it(store):
    """Before: an infinite mean made the scale NaN; scaler.npz was create-only, so every GET of the model failed."""
    rng = np.random.default_rng(4)
    r = _stats_rounds(store)
    for bank in ("a", "b", "c"):
        r.submit(0, bank, _stats(rng.normal(3, 2, size=(200, 4))), 200, {})
    good = r.scaler()
    # what an older server wrote from a poisoned round 0 (the checks on reading are what is tested)
    poisoned = to_wire({"mean": np.full(4, np.inf), "scale": np.full(4, np.nan)})
    store.put_bytes("federated", "stats/scaler.safetensors", poisoned)
    with pytest.raises(RoundStateError, match=r"scaler is unusable.*rounds/0/aggregate"):
        r.scaler()
    r.aggregate(0, force=True)  # the admin route
    repaired = r.scaler()
    assert repaired is not None and good is not None
    assert np.allclose(repaired["mean"], good["mean"]) and np.allclose(repaired["scale"], good["scale"])


# ---- 4. a round stuck in aggregating; a crash between two writes -----------------------------------


class CrashOnce(MemoryBlobStore):
    """Raises once on the first write whose name contains ``trigger`` (a storage error or a recycled instance)."""

    def __init__(self, trigger: str, error: Exception | None = None) -> None:
        super().__init__()
        self.trigger, self.error, self.armed = trigger, error or OSError("the instance was recycled"), False

    def put_bytes(self, container, name, data, **kwargs):
        if self.armed and self.trigger in name:
            self.armed = False
            raise self.error
        return super().put_bytes(container, name, data, **kwargs)


def test_a_close_that_fails_releases_its_lease_and_a_later_call_finishes_it():
    store = CrashOnce("global/round-2")
    store.ensure_containers()
    clock = Clock()
    r = _rounds(store, clock=clock)
    r.submit(1, "a", update(1.0), 10, {})
    r.submit(1, "b", update(2.0), 10, {})
    store.armed = True
    with pytest.raises(RetryLaterError, match=r"could not be aggregated.*every update is kept.*after 1010"):
        r.submit(1, "c", update(3.0), 10, {})
    stuck = r.state(1)
    assert stuck.status == "aggregating" and stuck.lease_until == 1010.0 and "recycled" in (stuck.last_error or "")
    assert "last_error" not in stuck.public()  # it may name blobs; it is in the logs
    assert sorted(stuck.participants) == ["a", "b", "c"]  # every update kept
    assert r.aggregate(1).status == "aggregating"  # within the backoff nobody re-runs it
    clock.now += 11
    closed = r.aggregate(1)
    assert closed.status == "closed" and np.allclose(r.global_model(2)["coef"], 2.0)
    assert r.state(2).status == "open"


def test_a_close_that_keeps_failing_backs_off_instead_of_rerunning_on_every_call():
    class Broken(MemoryBlobStore):
        def put_bytes(self, container, name, data, **kwargs):
            if "global/round-2" in name:
                raise OSError("the disk is full")
            return super().put_bytes(container, name, data, **kwargs)

    store = Broken()
    store.ensure_containers()
    clock = Clock()
    r = _rounds(store, clock=clock)
    r.submit(1, "a", update(1.0), 10, {})
    r.submit(1, "b", update(2.0), 10, {})
    waits = []
    for _ in range(4):
        with pytest.raises(RetryLaterError):
            r.aggregate(1) if waits else r.submit(1, "c", update(3.0), 10, {})
        waits.append(r.state(1).lease_until - clock.now)
        clock.now = r.state(1).lease_until
    assert waits == [10.0, 20.0, 40.0, 80.0]  # doubling up to the lease, never a tight loop


def test_a_quorum_committed_just_before_a_crash_is_closed_by_the_next_call(store):
    r = _rounds(store)
    r.submit(1, "a", update(1.0), 10, {})
    r.submit(1, "b", update(2.0), 10, {})
    doc, etag = r.repository.read(1)  # what a crash between bank c's commit and its aggregate() leaves
    doc = doc.evolve(participants={**doc.participants, "c": doc.participants["b"]})
    r.repository.write(1, doc, etag)
    assert r.state(1).status == "open"
    assert r.ensure_open().round == 2 and r.state(1).status == "closed"


def test_a_failed_publication_is_recorded_and_the_admin_route_retries_it(store):
    calls: list[int] = []

    def flaky(n, params, scaler, state):
        calls.append(n)
        if len(calls) == 1:
            raise OSError("the model store is down")

    r = Rounds(store, "pub", RoundConfig(min_clients=3), clock=Clock(), on_close=flaky)
    r.start_with_statistics(4)
    rng = np.random.default_rng(0)
    for bank in ("a", "b", "c"):
        r.submit(0, bank, to_wire(model.sufficient_statistics(rng.normal(size=(50, 4)))), 50, {})
    for bank in ("a", "b", "c"):
        closed = r.submit(1, bank, to_wire(model.initial(4)), 10, {})
    assert closed.status == "closed" and closed.published is False and calls == [1]
    assert r.aggregate(1).published is False  # a plain call does not re-run publishing
    assert r.aggregate(1, force=True).status == "closed" and calls == [1, 1]
    assert r.state(1).published is True
    r.aggregate(1, force=True)
    assert calls == [1, 1]  # published once it succeeded: never again


def test_a_crashed_aggregator_leaves_a_lease_that_expires_and_is_resumed(store):
    clock = Clock()
    r = _rounds(store, clock=clock, lease_seconds=60)
    r.submit(1, "a", update(1.0), 10, {})
    r.submit(1, "b", update(2.0), 10, {})
    r.submit(1, "c", update(3.0), 10, {})
    # simulate a crash right after the flip: put round 1 back to aggregating with a live lease
    doc, etag = r.repository.read(1)
    doc = doc.evolve(status="aggregating", lease_until=clock.now + 60, attempts=1, closed_at=None)
    r.repository.write(1, doc, etag)
    assert r.aggregate(1).status == "aggregating"  # the lease is live: nobody else touches it
    clock.now += 61
    resumed = r.aggregate(1)
    assert resumed.status == "closed" and resumed.attempts == 2
    assert np.allclose(r.global_model(2)["coef"], 2.0)  # the model written first is kept


def test_an_aggregating_round_is_resumed_by_the_next_bank_that_calls(store):
    clock = Clock()
    r = _rounds(store, clock=clock, lease_seconds=60)
    for bank, v in (("a", 1.0), ("b", 2.0), ("c", 3.0)):
        r.submit(1, bank, update(v), 10, {})
    doc, etag = r.repository.read(1)
    doc = doc.evolve(status="aggregating", lease_until=clock.now - 1)
    r.repository.write(1, doc, etag)
    for name in ("exp/round-2/state.json", "exp/global/round-2.safetensors"):  # the crash came before both
        store.delete("federated", name)
    state = r.ensure_open()  # what GET /api/federated/model does
    assert state.round == 2 and state.status == "open" and r.state(1).status == "closed"


def test_a_crash_between_closing_a_round_and_opening_the_next_is_repaired(store):
    r = _rounds(store)
    for bank, v in (("a", 1.0), ("b", 2.0), ("c", 3.0)):
        r.submit(1, bank, update(v), 10, {})
    store.delete("federated", "exp/round-2/state.json")  # round 2 never got opened
    assert r.ensure_open().round == 2  # the model route repairs it
    store.delete("federated", "exp/round-2/state.json")
    assert r.submit(2, "a", update(1.0), 10, {}).status == "open"  # so does a bank's update


def test_an_x_fl_examples_of_400_digits_cannot_jam_a_round(store):
    r = _rounds(store)
    with pytest.raises(BadParametersError):
        r.submit(1, "a", update(1.0), int("9" * 400), {})
    for bank in ("a", "b", "c"):
        r.submit(1, bank, update(1.0), 10, {})
    assert r.state(1).status == "closed"


# ---- 5. a partial submit must not lock a bank out -------------------------------------------------


def test_a_crash_after_the_update_blob_is_written_leaves_the_bank_free_to_retry():
    store = CrashOnce("round-1/state.json")
    store.ensure_containers()
    r = _rounds(store)
    store.armed = True
    with pytest.raises(OSError):
        r.submit(1, "a", update(1.0), 10, {})  # blob written, state write lost
    assert r.state(1).participants == {}
    assert r.submit(1, "a", update(1.0), 10, {}).participants["a"].examples == 10  # the retry counts


class Conflicts(MemoryBlobStore):
    """Every conditional write of a round state loses ``times`` times (other banks winning the race)."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times

    def put_bytes(self, container, name, data, **kwargs):
        if self.times and name.endswith("state.json") and kwargs.get("if_match"):
            self.times -= 1
            raise ConcurrentUpdateError("the blob changed")
        return super().put_bytes(container, name, data, **kwargs)


def test_fifty_lost_races_say_retry_and_the_retry_is_counted():
    store = Conflicts(times=50)
    store.ensure_containers()
    r = _rounds(store)
    with pytest.raises(RetryLaterError, match="your update was not counted: send it again"):
        r.submit(1, "a", update(1.0), 10, {})
    assert r.state(1).participants == {}
    assert "a" in r.submit(1, "a", update(1.0), 10, {}).participants


def test_a_retry_of_a_counted_update_gets_the_same_answer_and_counts_once(store):
    r = _rounds(store)
    first = r.submit(1, "a", update(1.0), 10, {"loss": 0.1})
    again = r.submit(1, "a", update(1.0), 10, {"loss": 0.1})
    assert first.participants == again.participants and len(again.participants) == 1
    digest = hashlib.sha256(update(1.0)).hexdigest()
    assert again.participants["a"].sha256 == digest


def test_an_update_blob_changed_in_storage_is_not_aggregated(store):
    r = _rounds(store)
    r.submit(1, "a", update(1.0), 10, {})
    r.submit(1, "b", update(2.0), 10, {})
    stored = r.state(1).participants["a"].update
    store.put_bytes("federated", stored, update(1e6))  # someone rewrote a's update behind the state's back
    with pytest.raises(RetryLaterError, match="does not match the digest"):
        r.submit(1, "c", update(3.0), 10, {})


# ---- 6. decompression bombs, and bodies that lie about their size ---------------------------------
# Wire format 2 (safetensors) has nothing to inflate: its header is checked against the body's length before a
# value is read. Format 1 (.npz) is read only from what an older server stored (``from_stored``); its reader keeps
# every check it had, tested below on those stored bytes. A bank's .npz is refused with the upgrade to make.


def _safetensors(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + body


@pytest.mark.parametrize(
    ("header", "body", "reason"),
    [
        ({"coef": {"dtype": "F32", "shape": [2**31], "data_offsets": [0, 2**33]}}, 4000, "more than 5000000"),
        ({"coef": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}, 40, "body holds 40"),
        ({"coef": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}}, 16, "not float32"),
        ({"coef": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, 4, "declares 2 values in 4 bytes"),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            12,
            "overlap or leave gaps",
        ),
        ({"coef": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, 4, "no valid shape"),
    ],
)
def test_a_safetensors_body_that_lies_about_its_arrays_is_refused_before_any_value_is_read(header, body, reason):
    tracemalloc.start()
    try:
        with pytest.raises(BadParametersError, match=reason):
            from_wire(_safetensors(header, bytes(body)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000


def test_a_header_longer_than_the_body_or_than_allowed_is_refused():
    with pytest.raises(BadParametersError, match="header declares"):
        from_wire((2**40).to_bytes(8, "little") + b"{}")
    with pytest.raises(BadParametersError, match="fewer than 8 bytes"):
        from_wire(b"abc")


def test_a_bank_sending_wire_format_1_is_told_to_upgrade():
    buf = io.BytesIO()
    np.savez(buf, coef=np.zeros(4, np.float32), intercept=np.zeros(1, np.float32))
    with pytest.raises(BadParametersError, match=r"wire format 1 .* upgrade the bank package"):
        from_wire(buf.getvalue())
    assert from_stored(buf.getvalue())["coef"].shape == (4,)  # what an older server stored stays readable


def _npy_header(shape: tuple[int, ...]) -> bytes:
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def _bomb(shape: tuple[int, ...], payload: int, declared: int | None = None) -> bytes:
    """An .npz whose one member declares ``shape`` float32 values but holds ``payload`` bytes of zeros."""
    member = _npy_header(shape) + bytes(payload)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("coef.npy", member)
    data = out.getvalue()
    if declared is not None:  # rewrite the declared uncompressed size in both headers
        real = struct.pack("<I", len(member))
        data = data.replace(real, struct.pack("<I", declared))
    return data


@pytest.mark.parametrize(
    ("shape", "payload", "declared", "reason"),
    [
        ((2**31,), 4_000_000, None, "more than 5000000 parameters declared"),  # 8 GB declared in 4 MB of zeros
        ((1000,), 4_000_000, None, r"declares \d+ bytes, but its header says \d+"),
        ((1000,), 4000, 2**31, "declares 2147483648 bytes"),
    ],
)
def test_a_stored_npz_that_would_inflate_to_gigabytes_is_refused_before_inflating(shape, payload, declared, reason):
    bomb = _bomb(shape, payload, declared)
    assert len(bomb) < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(BadParametersError, match=reason):
            from_stored(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # a few header bytes were inflated, not the payload


def test_a_corrupt_deflate_stream_is_422_not_500():
    member = io.BytesIO()
    np.save(member, np.arange(4000, dtype=np.float32))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("coef.npy", member.getvalue())
    broken = bytearray(out.getvalue())
    start = broken.index(b"coef.npy") + len("coef.npy")
    broken[start + 5 : start + 40] = b"\xff" * 35  # damage the compressed bytes, not the zip directory
    with pytest.raises(BadParametersError, match=r"not a readable \.npz"):
        from_stored(bytes(broken))


def test_a_pickled_or_non_npy_member_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("coef.pkl", b"cos\nsystem\n(S'echo hi'\ntR.")
    with pytest.raises(BadParametersError, match=r"not an \.npy array"):
        from_stored(out.getvalue())
    buf = io.BytesIO()
    np.savez(buf, coef=np.array([object()], dtype=object))
    with pytest.raises(BadParametersError, match=r"not float32|readable"):
        from_stored(buf.getvalue())


# ---- 7. differential privacy that can be subtracted -----------------------------------------------


def test_the_noise_cannot_be_regenerated_from_any_setting():
    """Before: the noise came from default_rng(TRAIN_SEED + round): anyone could regenerate and subtract it."""
    params = [np.zeros(50_000, np.float32)]
    a, b = privacy.add_noise(params, 0.5)[0], privacy.add_noise(params, 0.5)[0]
    assert not np.allclose(a, b)
    assert a.std() == pytest.approx(0.5, rel=0.02) and abs(float(a.mean())) < 0.02
    for seed in (42, 43, 0, 1):  # what TRAIN_SEED + round gave
        again = params[0] + np.random.default_rng(seed).normal(0.0, 0.5, params[0].shape)
        assert not np.allclose(a, again)


def test_noise_is_calibrated_to_the_clip_bound_and_epsilon_is_reported(store):
    from dp_accounting import dp_event
    from dp_accounting.rdp import rdp_privacy_accountant

    r = _rounds(store, clip_bound=1.0, noise_multiplier=1.1, dp_delta=1e-5)
    for round_number in (1, 2):
        for bank, v in (("a", 1.0), ("b", 0.1), ("c", 0.2)):
            r.submit(round_number, bank, update(v), 10, {})
        closed = r.state(round_number)
        assert closed.noise_std == pytest.approx(1.1 * 1.0 / 3)
        if round_number == 1:
            assert closed.clipped == ["a"]  # clipped to the bound, not refused
        accountant = rdp_privacy_accountant.RdpAccountant()
        accountant.compose(dp_event.GaussianDpEvent(1.1), round_number)
        assert closed.epsilon == pytest.approx(accountant.get_epsilon(1e-5))
    assert r.state(2).epsilon > r.state(1).epsilon  # privacy spent adds up over rounds
    assert r.state(2).noise_history == [1.1, 1.1] and r.state(2).rounds_without_noise == []
    assert "clipped" not in r.state(1).public() and r.state(1).public()["participants"] == sorted(
        r.state(1).participants
    )
    assert r.state(1).for_admin()["participants"]["a"]["norm"] is not None


def test_a_round_released_without_noise_leaves_no_finite_epsilon(store):
    plain = _rounds(store, experiment="mixed")
    for bank in ("a", "b", "c"):
        plain.submit(1, bank, update(0.1), 10, {})
    noisy = Rounds(store, "mixed", RoundConfig(min_clients=3, clip_bound=1.0, noise_multiplier=2.0), clock=Clock())
    doc, etag = noisy.repository.read(2)  # round 2 opened by the plain server; the noisy one takes over from here on
    doc = doc.evolve(clip_bound=1.0, noise_multiplier=2.0, dp_delta=1e-5)
    noisy.repository.write(2, doc, etag)
    for bank in ("a", "b", "c"):
        noisy.submit(2, bank, update(0.1), 10, {})
    closed = noisy.state(2)
    assert closed.noise_std == pytest.approx(2.0 / 3) and closed.epsilon is None
    assert closed.noise_history == [None, 2.0] and closed.rounds_without_noise == [1]


def test_dp_settings_that_cannot_be_accounted_are_refused(store):
    with pytest.raises(ConfigurationError, match="needs FL_CLIP_BOUND"):
        Rounds(store, "x", RoundConfig(noise_multiplier=1.0))
    with pytest.raises(ConfigurationError, match="no stated epsilon"):
        Rounds(store, "x", RoundConfig(noise_multiplier=1.0, clip_bound=1.0, aggregator="median"))


def test_with_dp_each_step_is_clipped_and_weighted_equally():
    reference = [np.zeros(2, np.float32)]
    result = merge(
        reference,
        [([np.array([30.0, 40.0], np.float32)], 1_000_000), ([np.array([0.3, 0.4], np.float32)], 1)],
        aggregator=aggregator_for("fedavg", trim_beta=0),
        max_weight_share=1.0,
        clip_bound=1.0,
        noise_multiplier=1e-9,
    )
    assert result.clipped == [True, False] and result.weights == [1.0, 1.0]
    assert np.allclose(result.params[0], [0.45, 0.6], atol=1e-6)


# ---- 9. key handling ------------------------------------------------------------------------------


class FakeVault:
    """A SecretClient stand-in: secrets by name, a call counter, and an error to raise on demand."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets, self.calls, self.error = secrets, 0, None

    def get_secret(self, name: str):
        from azure.core.exceptions import ResourceNotFoundError

        self.calls += 1
        if self.error is not None:
            raise self.error
        if name.lower() not in self.secrets:
            raise ResourceNotFoundError("SecretNotFound")
        return type("Secret", (), {"value": self.secrets[name.lower()]})()


def test_a_revoked_key_stops_working_after_the_ttl():
    from shared.adapters.bank_keys import KeyVaultKeys

    vault, clock = FakeVault({"fl-bank-bank-a": "k"}), Clock()
    keys = KeyVaultKeys(vault, ttl=300, negative_ttl=60, clock=clock)
    assert keys.get("bank-a") == b"k"
    del vault.secrets["fl-bank-bank-a"]  # revoked
    clock.now += 299
    assert keys.get("bank-a") == b"k"  # cached within the TTL
    clock.now += 2
    assert keys.get("bank-a") is None  # before: cached forever on a warm instance


def test_unknown_banks_cost_one_vault_call_per_window_not_per_request():
    from shared.adapters.bank_keys import KeyVaultKeys

    vault, clock = FakeVault({}), Clock()
    keys = KeyVaultKeys(vault, ttl=300, negative_ttl=60, clock=clock)
    for _ in range(100):
        assert keys.get("nobody") is None
    assert vault.calls == 1
    vault.secrets["fl-bank-nobody"] = "new"
    clock.now += 61
    assert keys.get("nobody") == b"new"  # a key added later works without a restart


def test_a_throttled_vault_is_retry_later_not_a_crash_and_not_unknown_bank():
    from azure.core.exceptions import HttpResponseError, ServiceRequestError

    from shared.adapters.bank_keys import KeyVaultKeys

    for error in (HttpResponseError("Too Many Requests"), ServiceRequestError("no route to host")):
        vault = FakeVault({"fl-bank-bank-a": "k"})
        vault.error = error
        keys = KeyVaultKeys(vault, clock=Clock())
        with pytest.raises(RetryLaterError, match="cannot be read right now; retry"):
            keys.get("bank-a")
        vault.error = None
        assert keys.get("bank-a") == b"k"  # the failure was not cached


def test_random_bank_ids_cannot_grow_the_cache_or_lock_out_a_known_bank():
    from azure.core.exceptions import HttpResponseError

    from shared.adapters.bank_keys import KeyVaultKeys

    vault, clock = FakeVault({"fl-bank-bank-a": "k"}), Clock()
    keys = KeyVaultKeys(vault, ttl=300, negative_ttl=60, clock=clock, max_cached=100)
    assert keys.get("bank-a") == b"k"
    for i in range(1_000):
        keys.get(f"random-{i}")
    assert len(keys._cache) == 100  # bounded: the least recently used went first
    keys = KeyVaultKeys(vault, ttl=300, clock=clock)
    assert keys.get("bank-a") == b"k"
    clock.now += 301  # bank-a's entry has expired, and now the vault throttles (others flooded it)
    vault.error = HttpResponseError("429 Too Many Requests")
    assert keys.get("bank-a") == b"k"  # the key it had, not a 503
    with pytest.raises(RetryLaterError):
        keys.get("never-seen")


def test_malformed_requests_cost_no_key_lookup(store):
    keys = CaseFoldingKeys({"bank-a": b"key-a"})
    path, body = "/p", b"x"
    good = {k.lower(): v for k, v in sign(b"key-a", "POST", path, body, bank="bank-a", now=1e9).items()}
    for change in ({"x-fl-signature": "zz"}, {"x-fl-timestamp": "nan"}, {"x-fl-nonce": "a"}, {"x-fl-bank": "a b"}):
        with pytest.raises(AuthError):
            verify({**good, **change}, "POST", path, body, keys=keys, store=store, now=1e9)
    assert keys.lookups == []


# ---- 10. input edges that gave 500 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"x-fl-signature": "é" * 64}, "64 hexadecimal digits"),  # before: TypeError in compare_digest
        ({"x-fl-timestamp": "nan"}, "whole Unix seconds"),  # before: passed the skew check
        ({"x-fl-timestamp": "1e9"}, "whole Unix seconds"),
        ({"x-fl-timestamp": "-5"}, "whole Unix seconds"),
    ],
)
def test_signature_headers_with_odd_values_are_401_with_a_reason(store, change, reason):
    path, body = "/p", b"x"
    good = {k.lower(): v for k, v in sign(b"key-a", "POST", path, body, bank="bank-a", now=1e9).items()}
    with pytest.raises(AuthError, match=reason):
        verify({**good, **change}, "POST", path, body, keys=CaseFoldingKeys({"bank-a": b"key-a"}), store=store, now=1e9)


def test_a_header_given_twice_is_refused():
    with pytest.raises(AuthError, match="X-FL-Examples is given more than once"):
        single_headers([("X-FL-Examples", "10"), ("content-type", "a"), ("X-FL-Examples", "1000000")])
    assert single_headers([("Accept", "a"), ("accept", "b")])["accept"] == "b"  # other headers: as before


@pytest.mark.parametrize(
    "raw",
    [
        "NaN",
        '{"auc": NaN}',
        '{"auc": 1e999}',
        '{"auc": Infinity}',
        "[" * 100_000,
        '{"a": {"b": 1}}',
        '{"a": 1e5}',
        '{"a": 1234567890123}',
        '{"a": true}',
        '{"a": "0.9"}',
        '{"a b": 1}',
    ],
)
def test_metrics_outside_the_declared_syntax_are_refused_with_a_reason(raw):
    from shared.federated.headers import parse_metrics

    with pytest.raises(BadParametersError, match="X-FL-Metrics must be a flat JSON object"):
        parse_metrics(raw)


def test_metrics_the_client_writes_are_what_the_server_reads():
    from fraudops_bank.errors import ParametersError
    from fraudops_bank.headers import encode_metrics
    from shared.federated.headers import parse_metrics

    metrics = {"local_loss": 1e-05, "auc": 0.987654321, "n": 3.0, "neg": -2.5, "zero": 0.0, "big": 999999999999.5}
    back = parse_metrics(encode_metrics(metrics))
    assert back.keys() == metrics.keys()
    assert all(abs(back[k] - v) <= 1e-12 * max(1.0, abs(v)) for k, v in metrics.items())
    with pytest.raises(ParametersError, match="finite"):  # the client refuses to write what the server would refuse
        encode_metrics({"x": float("nan")})


def test_every_metrics_header_the_declared_pattern_allows_is_read():
    """The pattern allows 12 digits each side of the point; the largest such number rounds to 1e12 as a
    float, which the check used to refuse (a schema-valid header answered 422); 13 digits are refused."""
    import re

    from shared.federated.headers import METRICS_PATTERN, parse_metrics

    largest = '{"a":999999999999.999999999999,"b":-999999999999.999999999999}'
    assert re.fullmatch(METRICS_PATTERN, largest)
    assert parse_metrics(largest) == {"a": 1e12, "b": -1e12}
    with pytest.raises(BadParametersError, match="flat JSON object"):  # 13 digits: outside the pattern too
        parse_metrics('{"a":1000000000000}')


def test_metrics_from_a_direct_caller_are_checked_too(store):
    r = _rounds(store)
    for metrics in ({"auc": float("nan")}, {"auc": float("inf")}, {"auc": 10**400}, {"x" * 65: 1.0}):
        with pytest.raises(BadParametersError, match="X-FL-Metrics"):
            r.submit(1, "a", update(1.0), 10, metrics)
    assert r.state(1).participants == {}


# ---- issue 19, finding 17: the cost of finding the current round does not grow with every update ----


def test_finding_the_current_round_lists_nothing_however_many_rounds_and_updates():
    class Counting(MemoryBlobStore):
        lists = 0

        def list_names(self, container, prefix=""):
            Counting.lists += 1
            return super().list_names(container, prefix)

    store = Counting()
    store.ensure_containers()
    r = _rounds(store)
    for n in range(1, 6):
        for bank in ("a", "b", "c"):
            r.submit(n, bank, update(float(n)), 10, {})
    Counting.lists = 0
    assert r.ensure_open().round == 6 and r.current() == 6
    assert Counting.lists == 0  # before: every GET /model listed every state and every update blob
    latest = "exp/latest.json"
    store.put_bytes("federated", latest, b'{"round": 4}')  # a crash left the pointer behind
    assert r.current() == 6
    store.delete("federated", latest)  # an experiment from before the pointer: listed once
    assert r.current() == 6 and Counting.lists == 1
