"""Closing a secure round: rebuild the secrets the unmasking shares allow, remove the masks, decode the sum.

Only the sum of the summed banks' vectors comes out. For a model round that is the sum of their
clipped (and, with privacy on, noised) steps plus four totals (examples, the served model's loss and
the local model's loss, each times examples, and how many steps were clipped); the next global model
is the reference plus the mean step. For round 0 it is the pooled count, sums and sums of squares,
from which the shared scaler is derived.

The mean step of clipped updates cannot be longer than the clip bound (plus the noise): a sum that
is, means a bank sent a vector it did not clip (the protocol cannot stop a bank from lying about its
own vector, only bound what an honest bank's does), and the round keeps the model unchanged.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass

import numpy as np

from fraudops_bank import secagg, secure_round
from fraudops_bank.roster import unb64
from shared.domain.documents.federated import RoundState
from shared.domain.errors import FraudOpsError
from shared.federated.config import INITIAL_CLIP
from shared.federated.repository import RoundRepository
from shared.federated.secure import EXTRAS

log = logging.getLogger(__name__)

CLIP_TARGET = 0.5  # adaptive clipping aims at the median step (Andrew et al., 2021)
CLIP_RATE = 0.2
NOISE_MARGIN = 6.0  # standard deviations of noise the mean step's norm may exceed the bound by


class SecureSumError(FraudOpsError):
    """The unmasking shares do not rebuild what the round needs."""


@dataclass(frozen=True)
class SecureSum:
    """The decoded sum of a secure round and the banks it is over."""

    values: np.ndarray  # float64
    summed: list[str]


def rebuilt(repo: RoundRepository, state: RoundState) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Each summed bank's self-mask seed and each dropped bank's mask key, from ``threshold`` checked shares."""
    t = state.threshold or 0
    summed = sorted(state.masked)
    dropped = sorted(set(state.shared) - set(state.masked))
    b_shares: dict[str, list[secagg.Share]] = {b: [] for b in summed}
    s_shares: dict[str, list[secagg.Share]] = {b: [] for b in dropped}
    for holder in sorted(state.unmasked):
        doc = json.loads(repo.update_bytes(state.unmasked[holder]))  # checked against commitments when counted
        for owner, text in doc["b"].items():
            b_shares[owner].append(secagg.share_from_text(text))
        for owner, text in doc["s"].items():
            s_shares[owner].append(secagg.share_from_text(text))
    seeds, keys = {}, {}
    for owner, shares in b_shares.items():
        if len(shares) < t:
            raise SecureSumError(f"{len(shares)} shares of bank {owner}'s self mask came back; {t} are needed")
        seeds[owner] = secagg.combine(shares, threshold=t)
    for owner, shares in s_shares.items():
        if len(shares) < t:
            raise SecureSumError(f"{len(shares)} shares of dropped bank {owner}'s key came back; {t} are needed")
        key = secagg.combine(shares, threshold=t)
        if secagg.public_key(key) != unb64(state.adverts[owner].s_pk, what="s_pk", size=32):
            raise SecureSumError(f"the shares of dropped bank {owner}'s key do not give the key it advertised")
        keys[owner] = key
    return seeds, keys


def secure_sum(repo: RoundRepository, state: RoundState, *, length: int) -> SecureSum:
    """The decoded sum of the summed banks' vectors (the masks removed), never one bank's vector."""
    seeds, dropped = rebuilt(repo, state)
    masked = {}
    for bank in sorted(state.masked):
        data = repo.update_bytes(state.masked[bank])
        if len(data) != 8 * length:
            raise SecureSumError(f"bank {bank}'s stored masked vector has {len(data) // 8} values, not {length}")
        masked[bank] = np.frombuffer(data, dtype="<u8").astype(np.uint64)
    s_pks = {b: unb64(state.adverts[b].s_pk, what="s_pk", size=32) for b in state.shared}
    total = secure_round.unmasked_sum(
        masked, seeds=seeds, dropped=dropped, s_pks=s_pks, experiment=repo.experiment, n=state.round
    )
    values = secagg.decode(total, secure_round.fraction_bits(state.kind))
    log.info("round %d: the secure sum of %d banks is rebuilt (%d dropped out)", state.round, len(masked), len(dropped))
    return SecureSum(values, sorted(masked))


def pooled_statistics(values: np.ndarray) -> dict[str, np.ndarray]:
    """Round 0's pooled count, sums and sums of squares, from the sum of the banks' vectors."""
    d = (values.size - 1) // 2
    unit = secure_round.STATISTICS_UNIT
    return {
        "count": np.array([round(values[0])], np.float32),
        "sum": (values[1 : 1 + d] * unit).astype(np.float32),
        "sumsq": (values[1 + d :] * unit).astype(np.float32),
    }


@dataclass(frozen=True)
class ModelStep:
    """A model round's outcome from its secure sum: the mean step, the totals, and whether it was kept."""

    mean_step: np.ndarray
    metrics: dict[str, float]
    clipped_share: float
    kept: bool
    why: str | None
    noise_std: float


def model_step(values: np.ndarray, *, banks: int, state: RoundState, dims: int) -> ModelStep:
    """The mean step and the round's totals; not ``kept`` when the mean is longer than clipped steps allow."""
    step, extras = values[:dims], dict(zip(EXTRAS, values[dims:], strict=True))
    mean = step / banks
    examples = extras["examples"] * secure_round.COUNT_UNIT
    metrics = {"examples": float(round(examples))}
    if extras["examples"] > 0:
        metrics["served_loss"] = float(extras["served_loss"] / extras["examples"])
        metrics["local_loss"] = float(extras["local_loss"] / extras["examples"])
    if extras["holdout_examples"] > 0:  # on the banks' held-out recent rows: the federation against each alone
        metrics["holdout_examples"] = float(round(extras["holdout_examples"] * secure_round.COUNT_UNIT))
        metrics["served_holdout_loss"] = float(extras["served_holdout_loss"] / extras["holdout_examples"])
        metrics["alone_holdout_loss"] = float(extras["alone_holdout_loss"] / extras["holdout_examples"])
    bound = state.clip_bound or INITIAL_CLIP
    noise = 0.0
    if state.noise_multiplier:
        t = state.threshold or banks
        noise = state.noise_multiplier * bound * math.sqrt(banks / t) / banks  # each bank adds its 1/t share
    norm = float(np.linalg.norm(mean))
    allowed = bound + NOISE_MARGIN * noise * math.sqrt(dims)
    why = None
    if norm > allowed * (1 + 1e-6):
        why = (
            f"the mean step's norm is {norm:.3g}, more than the {allowed:.3g} clipped steps allow: a bank did not "
            "clip its update; the model is kept unchanged this round"
        )
    return ModelStep(mean, metrics, float(extras["clipped"]) / banks, why is None, why, noise)


def next_clip(state: RoundState, clipped_share: float) -> float:
    """The next adaptive bound: down when fewer than half the steps were clipped, up when more were."""
    bound = state.clip_bound or INITIAL_CLIP
    unclipped = 1.0 - min(max(clipped_share, 0.0), 1.0)
    return float(bound * math.exp(-CLIP_RATE * (unclipped - CLIP_TARGET)))
