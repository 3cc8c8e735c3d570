"""Secure aggregation (issue 40) on the in-memory store: the real state machine and the banks' real step
machine, joined by a transport that calls what the routes call. Each attack test performs the attack and
asserts the safe outcome; the HTTP path is in tests/integration/test_federated_simulate.py."""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import pytest

from cli.devtools.secure_rounds import Direct, run_round
from cli.devtools.secure_rounds import status as round_status
from fraudops_bank import secagg, secure_round
from fraudops_bank.roster import Roster, RosterError, identity_public, new_identity_key
from fraudops_bank.secure import SecureParticipant, SecureRoundRefused, model_vector
from fraudops_bank.status import RoundStatus
from shared.adapters.memory_store import MemoryBlobStore
from shared.domain.errors import ConfigurationError
from shared.domain.layout import CONTAINERS
from shared.federated.params import BadParametersError
from shared.federated.rounds import RoundConfig, Rounds, RoundStateError
from shared.federated.secure import vector_length
from tests.unit.federated_parts import INITIAL, Clock

DIGEST = hashlib.sha256(b"the model every bank was served").hexdigest()
DIMS = 5  # INITIAL: coef (4) and intercept (1)
LENGTH = vector_length("model", DIMS)


def status(rounds: Rounds, n: int = 1) -> dict:
    return round_status(rounds, n)


@pytest.fixture
def store() -> MemoryBlobStore:
    s = MemoryBlobStore()
    s.ensure_containers()
    return s


def _federation(banks: int):
    ids = {f"bank-{chr(97 + i)}": new_identity_key() for i in range(banks)}
    return ids, Roster({b: identity_public(k) for b, k in ids.items()})


def _rounds(store, clock, banks, **config) -> Rounds:
    r = Rounds(store, "exp", RoundConfig(min_clients=banks, mode="secure", clip_bound=1.0, **config), clock=clock)
    r.start(INITIAL)
    return r


def _steps(banks: int, seed: int = 7) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {
        f"bank-{chr(97 + i)}": {
            "coef": rng.normal(0, 0.6, 4).astype(np.float32),
            "intercept": rng.normal(0, 0.6, 1).astype(np.float32),
        }
        for i in range(banks)
    }


def _participants(rounds, ids, roster, vectors, transports=None, digests=None):
    out = []
    for bank, vector in vectors.items():
        transport = (transports or {}).get(bank) or Direct(rounds, bank, DIGEST)
        out.append(
            SecureParticipant(
                transport=transport,
                bank=bank,
                experiment="exp",
                round=1,
                kind="model",
                vector=vector,
                model_sha256=(digests or {}).get(bank, DIGEST),
                identity_key=ids[bank],
                roster=roster,
                clip_bound=1.0,
                noise_multiplier=None,
            )
        )
    return out


def _vectors(local: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {
        b: model_vector(
            INITIAL,
            p,
            clip_bound=1.0,
            noise_std=0.0,
            examples=1000,
            served_loss=0.69,
            local_loss=0.5,
            add_noise=lambda v, _std: v,
        ).vector
        for b, p in local.items()
    }


def _run(rounds, parts, *, silent=(), silent_after="masked sent", clock=None, limit=50):
    def tick() -> None:
        if clock is not None:
            clock.now += 61

    return run_round(rounds, parts, silent=silent, silent_after=silent_after, tick=tick, limit=limit)


def _expected(local, banks) -> np.ndarray:
    steps = []
    for b in banks:
        step = np.concatenate([local[b]["coef"], local[b]["intercept"]]).astype(np.float64)
        norm = np.linalg.norm(step)
        steps.append(step * min(1.0, 1.0 / norm))
    return np.mean(steps, axis=0)


def _served(rounds) -> np.ndarray:
    g = rounds.global_model(2)
    return np.concatenate([g["coef"], g["intercept"]]).astype(np.float64)


# ---- the sum, and nothing else ------------------------------------------------------------------------
def test_the_secure_sum_is_fedavg_of_the_clipped_steps_within_the_documented_bound(store, caplog, telemetry):
    caplog.set_level(logging.DEBUG)
    ids, roster = _federation(5)
    rounds = _rounds(store, Clock(), 5)
    local = _steps(5)
    vectors = _vectors(local)
    closed = _run(rounds, _participants(rounds, ids, roster, vectors))
    assert closed.summed == sorted(local) and closed.threshold == 3
    tolerance = secagg.error_bound(5) / 5 + 1e-7  # the documented bound, plus float32 storage of the model
    assert np.abs(_served(rounds) - _expected(local, sorted(local))).max() <= tolerance
    assert closed.aggregate_metrics["examples"] == 5000 and abs(closed.aggregate_metrics["local_loss"] - 0.5) < 1e-6
    # no stored blob, log line or state holds one bank's vector: neither encoded nor as floats
    blobs = [store.get_bytes(c, n)[0] for c in CONTAINERS for n in store.list_names(c, "")]
    assert len(blobs) > 10
    for vector in vectors.values():
        clear = [secagg.encode(vector).tobytes(), vector.tobytes(), vector[:DIMS].astype(np.float32).tobytes()]
        assert not any(c in blob for c in clear for blob in blobs)
        for blob in blobs:  # a masked vector decodes to noise, never to the bank's vector
            if len(blob) == 8 * LENGTH:
                assert np.abs(secagg.decode(np.frombuffer(blob, "<u8")) - vector).max() > 1e3
        assert not any(f"{v:.4f}" in caplog.text for v in vector[:DIMS] if abs(v) > 1e-3)
    spans = telemetry.spans("federated.transition")
    assert len(spans) >= 4  # every phase the round went through is a span; none carries more than ids
    assert {k for span in spans for k in span.attributes} <= {"experiment", "round", "status"}


def test_the_reconstruction_attack_now_recovers_only_the_sum(store):
    """The hostile aggregator of the issue: the bank's single update gave away its fraud row. What the server
    holds for that bank is its masked vector, which decodes to uniform noise; only the sum comes out."""
    ids, roster = _federation(3)
    rounds = _rounds(store, Clock(), 3)
    local = _steps(3, seed=11)
    vectors = _vectors(local)
    target = "bank-a"
    _run(rounds, _participants(rounds, ids, roster, vectors))
    state = rounds.state(1)
    held = np.frombuffer(store.get_bytes("federated", state.masked[target])[0], "<u8")
    guess = secagg.decode(held)  # the attacker's best use of the bank's own message
    assert np.abs(guess[:DIMS] - vectors[target][:DIMS]).min() > 1e3
    # the published model is the mean of three banks' clipped steps, not the target's step
    assert np.abs(_served(rounds) - vectors[target][:DIMS]).max() > 0.05


# ---- dropouts -------------------------------------------------------------------------------------------
def test_a_bank_dropping_out_after_masking_still_closes_with_its_vector_in_the_sum(store):
    clock = Clock()
    ids, roster = _federation(4)
    rounds = _rounds(store, clock, 4)
    local = _steps(4, seed=3)
    closed = _run(rounds, _participants(rounds, ids, roster, _vectors(local)), silent={"bank-b"}, clock=clock)
    assert closed.summed == sorted(local) and "bank-b" not in closed.unmasked
    assert np.abs(_served(rounds) - _expected(local, sorted(local))).max() <= secagg.error_bound(4) + 1e-7


def test_a_bank_dropping_out_before_masking_is_left_out_and_its_masks_removed(store):
    clock = Clock()
    ids, roster = _federation(4)
    rounds = _rounds(store, clock, 4)
    local = _steps(4, seed=5)
    closed = _run(
        rounds,
        _participants(rounds, ids, roster, _vectors(local)),
        silent={"bank-c"},
        silent_after="shares sent",
        clock=clock,
    )
    kept = ["bank-a", "bank-b", "bank-d"]
    assert closed.summed == kept and "bank-c" in closed.shared
    assert np.abs(_served(rounds) - _expected(local, kept)).max() <= secagg.error_bound(3) + 1e-7


def test_a_phase_stalled_below_the_threshold_starts_the_round_over_and_it_still_closes(store):
    clock = Clock()
    ids, roster = _federation(3)
    rounds = _rounds(store, clock, 3)
    local = _steps(3, seed=9)
    parts = _participants(rounds, ids, roster, _vectors(local))
    for _ in range(3):  # everyone sends keys and shares; then two of three go silent before masking
        for p in parts:
            if p.phase != "shares sent":
                p.step(status(rounds))
    parts[0].step(status(rounds))  # bank-a sends its masked vector
    clock.now += 601
    assert status(rounds)["status"] == RoundStatus.OPEN and rounds.state(1).restarts == 1
    assert "masking phase ended with 1 of the 2 banks" in (rounds.state(1).last_error or "")
    closed = _run(rounds, parts)  # everyone is back: fresh keys, and the round closes
    assert closed.summed == sorted(local)
    assert np.abs(_served(rounds) - _expected(local, sorted(local))).max() <= secagg.error_bound(3) + 1e-7


# ---- a hostile server, a hostile bank ---------------------------------------------------------------------
def test_a_server_serving_two_banks_different_models_is_refused(store):
    ids, roster = _federation(3)
    rounds = _rounds(store, Clock(), 3)
    vectors = _vectors(_steps(3))
    other = hashlib.sha256(b"a crafted model for bank-c").hexdigest()
    # an honest server refuses an advert for a model it did not serve this round
    parts = _participants(rounds, ids, roster, vectors, digests={"bank-c": other})
    with pytest.raises(RoundStateError, match="every bank of a round trains from the same model"):
        for p in parts:
            p.step(status(rounds))
    # a hostile server takes it; the other banks see bank-c's signed digest and refuse the round
    store2 = MemoryBlobStore()
    store2.ensure_containers()
    rounds2 = _rounds(store2, Clock(), 3)
    transports = {"bank-c": Direct(rounds2, "bank-c", other)}
    parts = _participants(rounds2, ids, roster, vectors, transports=transports, digests={"bank-c": other})
    with pytest.raises(SecureRoundRefused, match="bank-c was served another model than this bank"):
        for _ in range(3):
            for p in parts:
                p.step(status(rounds2))


def test_keys_the_server_swaps_for_its_own_are_refused_by_the_roster(store):
    ids, roster = _federation(3)
    rounds = _rounds(store, Clock(), 3)

    def swap(doc):  # the server relays its own mask key in place of bank-b's
        doc["keys"]["bank-b"]["s_pk"] = (
            __import__("base64").b64encode(secagg.public_key(secagg.new_private_key())).decode()
        )
        return doc

    parts = _participants(
        rounds,
        ids,
        roster,
        _vectors(_steps(3)),
        transports={"bank-a": Direct(rounds, "bank-a", DIGEST, tamper_keys=swap)},
    )
    with pytest.raises(RosterError, match="not signed by the key the roster pins"):
        for _ in range(3):
            for p in parts:
                p.step(status(rounds))


def test_a_lowered_threshold_or_a_sum_below_it_is_refused_by_the_bank(store):
    ids, roster = _federation(3)
    rounds = _rounds(store, Clock(), 3)
    parts = _participants(
        rounds,
        ids,
        roster,
        _vectors(_steps(3)),
        transports={"bank-a": Direct(rounds, "bank-a", DIGEST, tamper_keys=lambda d: {**d, "threshold": 1})},
    )
    with pytest.raises(SecureRoundRefused, match="threshold of 1 among 3 banks"):
        for _ in range(3):
            for p in parts:
                p.step(status(rounds))
    # the server claiming only this bank and one other were summed (below the threshold of 3 of 4... here 2 of 3)
    honest = parts[1]
    honest.shared, honest.threshold, honest.phase = ["bank-a", "bank-b", "bank-c"], 2, "masked sent"
    with pytest.raises(SecureRoundRefused, match="below the threshold 2"):
        honest._send_unmask({"masked": ["bank-b"]})


def test_a_replayed_or_second_masked_vector_and_a_share_of_another_round_are_refused(store):
    clock = Clock()
    ids, roster = _federation(3)
    rounds = _rounds(store, clock, 3)
    local = _steps(3)
    parts = _participants(rounds, ids, roster, _vectors(local))
    while rounds.state(1).status != RoundStatus.UNMASKING:
        for p in parts:
            p.step(status(rounds))
    masked_a = next(b for w, b in parts[0].transport.sent if w == "masked")
    assert rounds.secure.mask(1, "bank-a", masked_a, length=LENGTH).status == RoundStatus.UNMASKING  # a retry
    with pytest.raises(RoundStateError, match="is in its unmasking phase"):
        rounds.secure.mask(1, "bank-a", masked_a[::-1], length=LENGTH)
    # bank-a's unmasking shares with its round-1 shares replaced by another round's (a re-dealt polynomial)
    answer = {"round": 1, "b": {}, "s": {}}
    for owner in ("bank-a", "bank-b", "bank-c"):
        x, _ = parts[0].received[owner]["b"]
        other_round = secagg.split(secagg.new_private_key(), holders=3, threshold=2)[x - 1]
        answer["b"][owner] = secagg.share_to_text(other_round)
    with pytest.raises(BadParametersError, match=r"not the one bank-a dealt it in round 1"):
        rounds.secure.unmask(1, "bank-a", json.dumps(answer).encode())
    with pytest.raises(BadParametersError, match="is for round 2"):
        rounds.secure.unmask(1, "bank-a", json.dumps({**answer, "round": 2}).encode())
    assert rounds.state(1).unmasked == {}  # nothing counted; the honest answers still close the round
    closed = _run(rounds, parts)
    assert closed.summed == sorted(local)


def test_a_declared_clip_bound_other_than_the_round_s_is_refused(store):
    ids, roster = _federation(3)
    rounds = _rounds(store, Clock(), 3)
    [p] = _participants(rounds, ids, roster, {"bank-a": np.zeros(LENGTH)})
    p.clip_bound = 50.0
    with pytest.raises(BadParametersError, match=r"declares clip_bound=50\.0 but round 1 runs with 1\.0"):
        p.step(status(rounds))


def test_a_bank_that_does_not_clip_leaves_the_model_unchanged(store):
    ids, roster = _federation(3)
    rounds = _rounds(store, Clock(), 3)
    vectors = _vectors(_steps(3))
    vectors["bank-a"][:DIMS] *= 100  # a step 100 times longer than the bound it declared
    closed = _run(rounds, _participants(rounds, ids, roster, vectors))
    assert "a bank did not clip its update" in (closed.outcome or "")
    assert np.array_equal(_served(rounds), np.zeros(DIMS))


# ---- configuration --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"aggregator": "median"}, "needs each bank's update, which FL_MODE=secure hides"),
        ({"min_clients": 2}, "hides nothing"),
        ({"mode": "visible", "noise_multiplier": 1.0}, "needs FL_CLIP_BOUND"),
    ],
)
def test_incoherent_secure_configurations_are_refused_with_the_reason(store, config, reason):
    with pytest.raises(ConfigurationError, match=reason):
        Rounds(store, "x", RoundConfig(**{"min_clients": 3, "mode": "secure", **config}))


def test_a_secure_round_takes_no_update_in_clear(store):
    rounds = _rounds(store, Clock(), 3)
    from tests.unit.federated_parts import update

    with pytest.raises(RoundStateError, match="takes no update in clear"):
        rounds.submit(1, "bank-a", update(1.0), 10, {})


# ---- the primitives -------------------------------------------------------------------------------------
def test_shamir_against_a_known_vector_and_any_threshold_of_shares():
    """The textbook example (secret 1234, f(x) = 1234 + 166x + 94x^2, six holders, threshold three)."""
    coefficients = iter([166, 94])
    secret = (1234).to_bytes(32, "big")
    shares = secagg.split(secret, holders=6, threshold=3, coefficient=lambda: next(coefficients))
    assert shares == [(1, 1494), (2, 1942), (3, 2578), (4, 3402), (5, 4414), (6, 5614)]
    for chosen in ([0, 1, 2], [5, 3, 1], [2, 4, 5]):
        assert secagg.combine([shares[i] for i in chosen], threshold=3) == secret
    with pytest.raises(Exception, match="3 shares from distinct holders"):
        secagg.combine(shares[:2], threshold=3)
    real = secagg.new_private_key()
    parts = secagg.split(real, holders=5, threshold=3)
    assert secagg.combine(parts[2:], threshold=3) == real
    assert secagg.combine([parts[0], parts[1], (3, (parts[2][1] + 1) % secagg.FIELD_PRIME)], threshold=3) != real


def test_fixed_point_sums_stay_within_the_documented_bound_and_refuse_out_of_range():
    rng = np.random.default_rng(1)
    values = rng.normal(0, 1000, size=(50, 200))
    total = np.zeros(200, np.uint64)
    for v in values:
        total += secagg.encode(v)
    assert np.abs(secagg.decode(total) - values.sum(axis=0)).max() <= secagg.error_bound(50)
    with pytest.raises(Exception, match="at most"):
        secagg.encode(np.array([secagg.limit() * 2]))
    with pytest.raises(Exception, match="NaN or infinite"):
        secagg.encode(np.array([np.nan]))


def test_sealed_shares_do_not_open_for_another_round_or_bank():
    a, b = secagg.new_private_key(), secagg.new_private_key()
    key_ab = secure_round.share_key(a, secagg.public_key(b), "exp", 1, "bank-a", "bank-b")
    assert key_ab == secure_round.share_key(b, secagg.public_key(a), "exp", 1, "bank-b", "bank-a")
    sealed = secagg.seal(key_ab, b"share", aad=secure_round.share_aad("exp", 1, "bank-a", "bank-b"))
    assert secagg.unseal(key_ab, sealed, aad=secure_round.share_aad("exp", 1, "bank-a", "bank-b")) == b"share"
    for aad in (
        secure_round.share_aad("exp", 2, "bank-a", "bank-b"),
        secure_round.share_aad("exp", 1, "bank-a", "bank-c"),
    ):
        with pytest.raises(Exception, match="does not open"):
            secagg.unseal(key_ab, sealed, aad=aad)


# ---- noise at the bank ----------------------------------------------------------------------------------
def test_noise_added_by_the_banks_sums_to_the_calibrated_noise_and_epsilon_is_accounted(store):
    from dp_accounting import dp_event
    from dp_accounting.rdp import rdp_privacy_accountant

    from fraudops_bank.privacy import add_noise, bank_noise_std

    ids, roster = _federation(5)
    rounds = _rounds(store, Clock(), 5, noise_multiplier=2.0)
    local = _steps(5)
    t = secure_round.threshold(5)
    std = bank_noise_std(2.0, 1.0, t)
    noisy = {
        b: model_vector(
            INITIAL, p, clip_bound=1.0, noise_std=std, examples=10, served_loss=0.7, local_loss=0.6, add_noise=add_noise
        ).vector
        for b, p in local.items()
    }
    parts = _participants(rounds, ids, roster, noisy)
    for p in parts:
        p.noise_multiplier = 2.0
    closed = _run(rounds, parts)
    accountant = rdp_privacy_accountant.RdpAccountant()
    accountant.compose(dp_event.GaussianDpEvent(2.0))
    assert closed.epsilon == pytest.approx(accountant.get_epsilon(1e-5))
    # the sum's noise has std sqrt(5 / t) x 2.0 x bound >= the calibrated 2.0 x bound, whoever of the t is summed
    assert closed.noise_std == pytest.approx(2.0 * (5 / t) ** 0.5 / 5)
    off = _served(rounds) - _expected(local, sorted(local))
    assert 0.05 < np.abs(off).max() < 6 * closed.noise_std * 3  # noise is there, and of the stated size


def test_a_bank_refuses_a_round_past_its_own_epsilon_ceiling(tmp_path):
    from fraudops_bank.privacy import Ledger, PrivacyBudgetError, epsilon

    ledger = Ledger(tmp_path / "ledger.json")
    spent = [ledger.check("exp", n, 1.0, 1e-5, ceiling=20.0) for n in (1, 2, 3)]
    for n in (1, 2, 3):
        ledger.record("exp", n, 1.0)
    assert spent[0] == pytest.approx(epsilon([1.0], 1e-5)) and ledger.spent("exp", 1e-5) == pytest.approx(
        epsilon([1.0] * 3, 1e-5)
    )
    with pytest.raises(PrivacyBudgetError, match=r"would bring this bank's epsilon to .* past its ceiling of 10"):
        ledger.check("exp", 4, 1.0, 1e-5, ceiling=10.0)
    with pytest.raises(PrivacyBudgetError, match="adds no noise, so no finite epsilon holds"):
        ledger.check("exp", 4, None, 1e-5, ceiling=1e6)
    assert ledger.check("other", 1, 1.0, 1e-5, ceiling=10.0) < 10  # per experiment
    (tmp_path / "ledger.json").write_text("{not json")
    with pytest.raises(Exception, match=r"privacy ledger .* is unreadable"):
        ledger.spent("exp", 1e-5)


def test_with_an_adaptive_bound_the_noised_count_is_accounted_with_the_step(store):
    """Andrew et al.: the count of clipped steps the bound learns from is released too, noised by the banks; the
    round is accounted at the multiplier the two releases compose to, never at the step's alone."""
    from dp_accounting import dp_event
    from dp_accounting.rdp import rdp_privacy_accountant

    from fraudops_bank.privacy import accounted_multiplier, add_noise, count_noise_std

    ids, roster = _federation(3)
    r = Rounds(store, "exp", RoundConfig(min_clients=3, mode="secure", noise_multiplier=1.0), clock=Clock())
    r.start(INITIAL)
    assert r.state(1).clip_adaptive and r.state(1).clip_bound == 1.0
    t = secure_round.threshold(3)
    vectors = {
        b: model_vector(
            INITIAL,
            p,
            clip_bound=1.0,
            noise_std=1.0 / t**0.5,
            examples=10,
            served_loss=0.7,
            local_loss=0.6,
            add_noise=add_noise,
            count_noise_std=count_noise_std(3) / t**0.5,
        ).vector
        for b, p in _steps(3).items()
    }
    parts = _participants(r, ids, roster, vectors)
    for p in parts:
        p.noise_multiplier = 1.0
    closed = _run(r, parts)
    z = accounted_multiplier(1.0, adaptive=True, min_clients=3)
    assert z < 1.0 and z == pytest.approx((1.0 + (2 * count_noise_std(3)) ** -2) ** -0.5)
    accountant = rdp_privacy_accountant.RdpAccountant()
    accountant.compose(dp_event.GaussianDpEvent(z))
    assert closed.epsilon == pytest.approx(accountant.get_epsilon(1e-5)) and closed.noise_history == [z]
    assert closed.next_clip_bound is not None and closed.next_clip_bound > 0
