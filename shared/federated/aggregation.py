"""Closing a round: its stored updates, checked against their digests, merged into what the next round needs.

A model round's close writes the next global model (the robust, clipped, possibly noised average of
the banks' steps); round 0's close writes the shared scaler from the banks' statistics and round 1's
zero model. Every write here is create-only or idempotent, so a close that crashed half-way is re-run
from the stored updates by whoever takes the expired lease; the caller commits the closed state.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np

from shared.domain.documents.federated import RoundState
from shared.domain.errors import ConfigurationError, FraudOpsError
from shared.federated.aggregators import Aggregator, aggregator_for
from shared.federated.config import RoundConfig
from shared.federated.merge import capped_weights, merge
from shared.federated.model import initial, scaler_from
from shared.federated.params import from_stored
from shared.federated.repository import RoundRepository
from shared.federated.scaler import checked_statistics, derive_scaler, write_scaler
from shared.federated.statistics import check_statistics, combine
from shared.federated.transitions import closed, privacy_spent

log = logging.getLogger(__name__)

Params = dict[str, np.ndarray]


def aggregator_of(state: RoundState, config: RoundConfig, count: int | None = None) -> Aggregator:
    """The strategy the round was opened with (its own trim share), refused if it would trim nothing."""
    name, beta = state.aggregator, state.trim_beta or config.beta
    if name == "trimmed_mean" and int(beta * (count or len(state.participants))) < 1:
        raise ConfigurationError(f"trimmed_mean with beta {beta:g} would trim nothing of this round's updates")
    return aggregator_for(name, trim_beta=beta)


def stored_updates(repo: RoundRepository, state: RoundState, reference: Params) -> list[tuple[str, Params, int]]:
    """Each participant's stored update, checked against the digest recorded when it was counted."""
    shapes = {k: v.shape for k, v in reference.items()}
    out = []
    for bank in sorted(state.participants):
        entry = state.participants[bank]
        data = repo.update_bytes(entry.update)
        if entry.sha256 not in (None, hashlib.sha256(data).hexdigest()):
            raise FraudOpsError(f"bank {bank}'s stored update does not match the digest recorded for it")
        out.append((bank, from_stored(data, expected=shapes), int(entry.examples)))
    return out


def aggregated(
    repo: RoundRepository, n: int, state: RoundState, *, config: RoundConfig, now: float, publishes: bool
) -> RoundState:
    """Compute round ``n``'s close from its stored updates and write what it produces; the closed state, for
    the caller to commit. ``publishes``: whether a closed model round waits to be published."""
    if state.mode == "secure":
        return secure_aggregated(repo, n, state, now=now, publishes=publishes)
    reference = repo.global_model(n)
    names = sorted(reference)
    updates = stored_updates(repo, state, reference)
    banks = [b for b, _, _ in updates]
    how = aggregator_of(state, config)
    if n == 0:  # the scaler from each bank's moments; round 1 starts from zero
        weights = capped_weights([c for _, _, c in updates], state.max_weight_share)
        write_scaler(repo.store, repo.experiment, combine([p for _, p, _ in updates], weights, how))
        repo.create_global(1, initial(reference["sum"].size))
        return closed(state, now, dict(zip(banks, weights, strict=True)))
    result = merge(
        [reference[k] for k in names],
        [([p[k] for k in names], c) for _, p, c in updates],
        aggregator=how,
        max_weight_share=state.max_weight_share,
        clip_bound=state.clip_bound,
        noise_multiplier=state.noise_multiplier,
    )
    if not repo.create_global(n + 1, dict(zip(names, result.params, strict=True))):
        log.warning("round %d's global model was already written by an earlier attempt; keeping it", n + 1)
    previous = repo.find(n - 1) if n > 1 else None
    return closed(
        state,
        now,
        dict(zip(banks, result.weights, strict=True)),
        clipped=[b for b, c in zip(banks, result.clipped, strict=True) if c],
        published=False if publishes else None,
        **privacy_spent(n, result.noise_std, state, previous),
    )


def secure_aggregated(repo: RoundRepository, n: int, state: RoundState, *, now: float, publishes: bool) -> RoundState:
    """A secure round's close: the sum of the summed banks' vectors, never one of them (``secure_close``)."""
    from shared.federated import secure_close
    from shared.federated.secure import vector_length

    reference = repo.global_model(n)
    names = sorted(reference)
    dims = sum(reference[k].size for k in names)
    total = secure_close.secure_sum(repo, state, length=vector_length(state.kind, dims))
    weights = dict.fromkeys(total.summed, 1.0)
    if n == 0:
        stats = secure_close.pooled_statistics(total.values)
        check_statistics(stats, int(stats["count"][0]))
        write_scaler(repo.store, repo.experiment, scaler_from(stats))
        repo.create_global(1, initial(reference["sum"].size))
        return closed(state, now, weights, summed=total.summed).evolve(
            aggregate_metrics={"examples": float(stats["count"][0])}
        )
    step = secure_close.model_step(total.values, banks=len(total.summed), state=state, dims=dims)
    params, start = {}, 0
    for k in names:
        size = reference[k].size
        moved = (
            reference[k] + step.mean_step[start : start + size].reshape(reference[k].shape)
            if step.kept
            else reference[k]
        )
        params[k] = np.asarray(moved, np.float32)
        start += size
    if not repo.create_global(n + 1, params):
        log.warning("round %d's global model was already written by an earlier attempt; keeping it", n + 1)
    previous = repo.find(n - 1) if n > 1 else None
    done = closed(
        state,
        now,
        weights,
        summed=total.summed,
        outcome=step.why,
        next_clip_bound=secure_close.next_clip(state, step.clipped_share) if state.clip_adaptive else None,
        published=False if publishes else None,
        **privacy_spent(n, step.noise_std, state, previous),
    )
    return done.evolve(aggregate_metrics=step.metrics)


def repair_scaler(repo: RoundRepository, state: RoundState, config: RoundConfig) -> None:
    """Re-derive the scaler from round 0's stored statistics, leaving out any bank whose numbers fail the check."""
    kept = checked_statistics(stored_updates(repo, state, repo.global_model(0)))
    how = aggregator_of(state, config, len(kept))
    write_scaler(repo.store, repo.experiment, derive_scaler(kept, max_weight_share=state.max_weight_share, how=how))
