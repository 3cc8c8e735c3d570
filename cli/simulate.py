"""``fraudops federated simulate``: several banks run the real HTTP protocol against the local API.

The data (a file, or generated transactions) is split into a holdout (20%) and the banks'
shares (IID at random, or non-IID: sorted by Amount, so each bank sees a different kind of
spending). Round 0 gathers sufficient statistics for the shared scaler; each later round every
bank trains from the global model and posts its update; ``poison`` banks send their step
sign-flipped and scaled by 10; ``lie`` banks claim the largest example count the server accepts;
``poison_statistics`` banks send round-0 statistics of their rows scaled by 1,000 and shifted by
10,000 (valid statistics, so only the robust combination can keep them out of the shared scaler).
After each round the global model is scored on the holdout, beside the centralised baseline: the
same model family fitted on the pooled data.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

POISON_SCALE = -10.0
POISON_STATS_SCALE, POISON_STATS_SHIFT = 1_000.0, 10_000.0


def _data(path: Path | None, rows: int, seed: int, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    if path is None:
        from training.generate import sample_features

        return sample_features(rows, seed, fraud_rate=0.01)
    from fraudops_bank.contract import Columns
    from fraudops_bank.engines.numpy import read  # the bank client's reader: the same columns, casts and refusals
    from shared.domain.contracts import get_contract

    contract = get_contract(dataset)
    assert contract.label is not None
    engine = read(path, Columns(tuple(contract.feature_names), contract.label.name))
    return engine.x, engine.y


def _scores(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    return float(roc_auc_score(y, p)), float(average_precision_score(y, p))


def _step_in_turn(clients: list[Any], parts: list[Any], *, drop_after_masking: int) -> None:
    """Step every bank's ``SecureParticipant`` in turn until the round closes; the first ``drop_after_masking``
    banks go silent once their masked vector is sent (the others and the server finish without them)."""
    from fraudops_bank.secure import SecureParticipant
    from fraudops_bank.status import RoundStatus

    pending = [(c, p) for c, p in zip(clients, parts, strict=True) if isinstance(p, SecureParticipant)]
    silent = {p.bank for _, p in pending[:drop_after_masking]}
    for _ in range(10_000):
        state = None
        for client, part in pending:
            state = client.round_status(part.round)
            if part.bank in silent and part.phase == "masked sent":
                continue
            part.step(state)
        if state is None or state["status"] == RoundStatus.CLOSED:
            return
        time.sleep(0.02)  # a dropout's phase ends at its deadline (FL_PHASE_SECONDS)
    raise RuntimeError("the simulated secure round did not close")


def simulate(
    *,
    banks: int,
    rounds: int,
    data: Path | None = None,
    rows: int = 60_000,
    non_iid: bool = False,
    poison: int = 0,
    lie: int = 0,
    poison_statistics: int = 0,
    aggregator: str = "fedavg",
    seed: int = 0,
    steps: int = 50,
    mode: str = "secure",
    clip_bound: float | None = None,
    noise_multiplier: float | None = None,
    drop_after_masking: int = 0,
) -> dict[str, Any]:
    from pydantic import SecretStr

    from cli.server import running_server
    from fraudops_bank.client import BankClient, Safeguards
    from fraudops_bank.engines.numpy import NumpyEngine
    from fraudops_bank.roster import Roster, identity_from_secret, identity_public, new_identity_key
    from fraudops_bank.served import ServedPolicy
    from shared.adapters.function_keys import function_app_client
    from shared.bootstrap import bootstrap
    from shared.federated import model as lr
    from shared.federated.headers import MAX_EXAMPLES
    from shared.federated.rounds import RoundConfig, Rounds

    if mode == "secure" and aggregator != "fedavg":
        raise ValueError(f"--aggregator {aggregator} needs each bank's update: use it with --mode visible")
    for name, count in (("--poison", poison), ("--lie", lie), ("--poison-statistics", poison_statistics)):
        if not 0 <= count < banks:
            raise ValueError(f"{name} must be below --banks")
    x, y = _data(data, rows, seed, bootstrap().settings.dataset_name)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    holdout, train = order[: len(x) // 5], order[len(x) // 5 :]
    if non_iid:
        train = train[np.argsort(x[train, -1], kind="stable")]  # by Amount
    shares = np.array_split(train, banks)
    keys = {f"bank-{i}": secrets.token_hex(16) for i in range(banks)}
    identities = {bank: new_identity_key() for bank in keys}  # each bank's own; the server never holds them
    server_secret = secrets.token_urlsafe(32)
    roster = Roster(
        {b: identity_public(k) for b, k in identities.items()}, identity_public(identity_from_secret(server_secret))
    )
    experiment = f"sim-{secrets.token_hex(4)}"
    # this run's own settings, passed to the server it starts: nothing global is changed
    settings = bootstrap().settings.model_copy(
        update={
            "fl_bank_keys": SecretStr(json.dumps(keys)),
            "fl_experiment": experiment,
            "fl_min_clients": banks,
            "fl_aggregator": aggregator,
            "fl_mode": mode,
            "fl_phase_seconds": 2.0 if drop_after_masking else 600.0,
            "fl_clip_bound": clip_bound,
            "fl_noise_multiplier": noise_multiplier,
            "fl_server_signing_key": SecretStr(server_secret),
            "fl_admin_key": SecretStr(secrets.token_hex(16)),
        }
    )
    history = []
    config = RoundConfig(
        min_clients=banks, aggregator=aggregator, mode=mode, clip_bound=clip_bound, noise_multiplier=noise_multiplier
    )
    Rounds(bootstrap(settings).blob_store, experiment, config).start_with_statistics(x.shape[1])
    # a simulation's banks are small and split by spending: its limits on what a bank is served are loose
    policy = ServedPolicy(min_rows=1, min_frauds=1, max_mean_shift=1e6, max_scale_ratio=1e6)
    function_key = secrets.token_urlsafe(24)
    with (
        running_server(function_key=function_key, settings=settings) as url,
        function_app_client(url, function_key=function_key, timeout=120) as http,
    ):
        clients = [
            BankClient(
                http,
                bank,
                key.encode(),
                safeguards=Safeguards(roster, identities[bank], policy, allow_visible=mode == "visible"),
            )
            for bank, key in keys.items()
        ]
        columns = clients[0].columns()  # as a bank's client reads them: the dataset contract's, from the server
        for r in range(rounds + 1):
            parts = []
            for i, (client, share) in enumerate(zip(clients, shares, strict=True)):
                part = x[share]
                if r == 0 and i < poison_statistics:
                    part = part * POISON_STATS_SCALE + POISON_STATS_SHIFT
                parts.append(
                    client.prepare(
                        NumpyEngine(part, y[share], columns),
                        steps=steps,
                        tamper=POISON_SCALE if i < poison and r > 0 else None,
                        claim=MAX_EXAMPLES if i < lie else None,
                    )
                )
            if mode == "secure":
                _step_in_turn(clients, parts, drop_after_masking=drop_after_masking if r > 0 else 0)
            if r == 0:
                continue
            _, _, arrays = clients[0].model()
            scaler = {"mean": arrays["scaler_mean"], "scale": arrays["scaler_scale"]}
            auc, pr_auc = _scores(y[holdout], lr.predict_proba(arrays, scaler, x[holdout]))
            history.append({"round": r, "auc": round(auc, 5), "pr_auc": round(pr_auc, 5)})
            log.info("federated round %d: holdout AUC %.4f, PR-AUC %.4f", r, auc, pr_auc)
    pooled = np.concatenate(shares)
    central_scaler = lr.scaler_from(lr.sufficient_statistics(x[pooled]))
    central = lr.train_local(lr.initial(x.shape[1]), central_scaler, x[pooled], y[pooled], steps=steps * rounds)
    c_auc, c_pr = _scores(y[holdout], lr.predict_proba(central, central_scaler, x[holdout]))
    return {
        "rounds": rounds,
        "banks": banks,
        "aggregator": aggregator,
        "mode": mode,
        "poisoned_banks": poison,
        "lying_banks": lie,
        "poisoned_statistics_banks": poison_statistics,
        "non_iid": non_iid,
        "holdout_rows": len(holdout),
        "history": history,
        "federated_auc": history[-1]["auc"] if history else None,
        "federated_pr_auc": history[-1]["pr_auc"] if history else None,
        "centralized_auc": round(c_auc, 5),
        "centralized_pr_auc": round(c_pr, 5),
        "experiment": experiment,
    }
