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
) -> dict[str, Any]:
    from pydantic import SecretStr

    from cli.server import running_server
    from fraudops_bank.client import BankClient
    from fraudops_bank.engines.numpy import NumpyEngine
    from shared.adapters.function_keys import function_app_client
    from shared.bootstrap import bootstrap
    from shared.federated import model as lr
    from shared.federated.headers import MAX_EXAMPLES
    from shared.federated.rounds import RoundConfig, Rounds

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
    experiment = f"sim-{secrets.token_hex(4)}"
    # this run's own settings, passed to the server it starts: nothing global is changed
    settings = bootstrap().settings.model_copy(
        update={
            "fl_bank_keys": SecretStr(json.dumps(keys)),
            "fl_experiment": experiment,
            "fl_min_clients": banks,
            "fl_aggregator": aggregator,
            "fl_admin_key": SecretStr(secrets.token_hex(16)),
        }
    )
    history = []
    Rounds(
        bootstrap(settings).blob_store, experiment, RoundConfig(min_clients=banks, aggregator=aggregator)
    ).start_with_statistics(x.shape[1])  # round 0 is combined by the same strategy as the model rounds
    function_key = secrets.token_urlsafe(24)
    with (
        running_server(function_key=function_key, settings=settings) as url,
        function_app_client(url, function_key=function_key, timeout=120) as http,
    ):
        clients = [BankClient(http, bank, key.encode()) for bank, key in keys.items()]
        columns = clients[0].columns()  # as a bank's client reads them: the dataset contract's, from the server
        for r in range(rounds + 1):
            for i, (client, share) in enumerate(zip(clients, shares, strict=True)):
                part = x[share]
                if r == 0 and i < poison_statistics:
                    part = part * POISON_STATS_SCALE + POISON_STATS_SHIFT
                client.take_part(
                    NumpyEngine(part, y[share], columns),
                    steps=steps,
                    tamper=POISON_SCALE if i < poison and r > 0 else None,
                    claim=MAX_EXAMPLES if i < lie else None,
                )
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
