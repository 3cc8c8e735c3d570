"""LightGBM configuration search with Optuna on rolling-origin folds, inside a wall-clock deadline.

The objective is the mean, over the folds of ``training.window.layout``, of each validation block's
average precision (PR-AUC): every fold is later than its training rows, and together they hold
several times the frauds of one validation part, so a choice rests on hundreds of frauds rather
than one noisy hundred. Boosting stops early on each block's log loss (steadier than average
precision). The best trial by that mean wins; nothing needs to beat a favoured configuration.

The search starts from three configurations far apart (``STARTS``: many small smooth trees,
LightGBM's usual middle ground, and bigger trees), so whether the data's log-odds are smooth, full
of interactions or steps, a suitable region is tried before TPE explores. None of them was chosen
on a particular generator; they span the space. Each fold's boosting stops at the deadline; a
later trial cut short by it is discarded (only the first, which must return something, keeps a
partial result), trials behind the median after a fold are pruned, and the search stops at
``trials`` or at the deadline. Same seed, same trials: same result.

What it hands on (``SearchResult``): the chosen parameters, each fold's best boosting round and
training size (``rounds_for`` scales them to a fit on more rows), and the chosen configuration's
out-of-fold probabilities, from which the decision threshold is chosen by cost.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import lightgbm as lgb
    import optuna

    from training.window import Layout

log = logging.getLogger(__name__)

SMOOTH: dict[str, Any] = {
    "learning_rate": 0.05,
    "num_leaves": 4,
    "min_child_samples": 200,
    "feature_fraction": 0.7,
    "bagging_fraction": 0.5,
    "lambda_l2": 10.0,
    "scale_pos_weight": 1.0,
    "extra_trees": True,
}
MIDDLE: dict[str, Any] = {
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "lambda_l2": 1.0,
    "scale_pos_weight": 1.0,
    "extra_trees": False,
}
LARGER: dict[str, Any] = {
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 50,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "lambda_l2": 3.0,
    "scale_pos_weight": 1.0,
    "extra_trees": False,
}
STARTS = (SMOOTH, MIDDLE, LARGER)
DEFAULTS = SMOOTH  # the first trial: what a search cut short after one trial returns
FIXED: dict[str, Any] = {
    "objective": "binary",
    "metric": "binary_logloss",
    "bagging_freq": 1,
    "deterministic": True,
    "num_threads": 2,
    "verbose": -1,
}
DATASET_PARAMS = {"feature_pre_filter": False, "verbose": -1}
EARLY_STOPPING_ROUNDS = 100


@dataclass
class SearchResult:
    """The chosen configuration and what the search learnt about it."""

    params: dict[str, Any]
    cv_pr_auc: float
    fold_pr_auc: list[float]
    best_iterations: list[int]
    fold_train_rows: list[int]
    oof: np.ndarray  # the chosen trial's probabilities on the folds' validation blocks, in row order
    fold_fit_seconds: float  # the chosen trial's mean fit time per fold
    trials: int
    pruned: int
    stopped_by: str
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)

    def rounds_for(self, rows: int, cap: int) -> int:
        """Boosting rounds for a fit on ``rows``: each fold's best round scaled by the square root of the
        growth in rows (sub-linear, as the best round grows with data), averaged over the folds."""
        scaled = [b * math.sqrt(rows / n) for b, n in zip(self.best_iterations, self.fold_train_rows, strict=True)]
        return int(min(max(round(float(np.mean(scaled))), 1), cap))


def _space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 2, 64, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 20, 1000, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.4, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-2, 30.0, log=True),
        "scale_pos_weight": trial.suggest_float("scale_pos_weight", 1.0, 20.0, log=True),
        "extra_trees": trial.suggest_categorical("extra_trees", [True, False]),
    }


def deadline_callback(deadline: float) -> Any:
    """Stop boosting (keeping the trees so far) once ``deadline`` (monotonic) passes."""
    import lightgbm as lgb

    def callback(env: lgb.callback.CallbackEnv) -> None:
        if time.monotonic() > deadline:
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list or [])

    callback.order = 40  # type: ignore[attr-defined]  # after LightGBM's own early stopping (30)
    return callback


def fit_booster(
    params: dict[str, Any], x: np.ndarray, y: np.ndarray, features: list[str], *, rounds: int, deadline: float
) -> lgb.Booster:
    """One fit of a chosen configuration for a fixed number of rounds (no validation rows needed)."""
    import lightgbm as lgb

    data = lgb.Dataset(x, y, feature_name=features, params=DATASET_PARAMS)
    return lgb.train(params, data, num_boost_round=rounds, callbacks=[deadline_callback(deadline)])


def search_lightgbm(
    x: np.ndarray,
    y: np.ndarray,
    plan: Layout,
    feature_names: list[str],
    *,
    seed: int,
    trials: int,
    deadline: float,
    num_boost_round: int,
) -> SearchResult:
    """Search on the folds of ``plan`` (rows of ``x``) until ``trials`` or ``deadline`` (monotonic)."""
    import lightgbm as lgb
    import optuna
    from sklearn.metrics import average_precision_score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.monotonic()
    # One binned dataset per fold for every trial: pre-filtering features by the first trial's
    # min_data_in_leaf would force a rebuild whenever a later trial asks for less.
    folds = []
    for fold in plan.folds:
        train = lgb.Dataset(
            x[: fold.train_stop],
            y[: fold.train_stop],
            feature_name=feature_names,
            free_raw_data=False,
            params=DATASET_PARAMS,
        )
        valid_x, valid_y = x[fold.train_stop : fold.valid_stop], y[fold.train_stop : fold.valid_stop]
        valid = lgb.Dataset(valid_x, valid_y, reference=train, free_raw_data=False, params=DATASET_PARAMS)
        folds.append((train, valid, valid_x, valid_y))
    best: dict[str, Any] = {}
    history: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        params = {**FIXED, **_space(trial), "seed": seed}
        scores, iterations, oof = [], [], []
        began = time.monotonic()
        for k, (train, valid, valid_x, valid_y) in enumerate(folds):
            if best and time.monotonic() > deadline:
                raise optuna.TrialPruned("deadline")
            booster = lgb.train(
                params,
                train,
                num_boost_round=num_boost_round,
                valid_sets=[valid],
                callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False), deadline_callback(deadline)],
            )
            if best and time.monotonic() > deadline:  # this fold was cut short: not comparable
                raise optuna.TrialPruned("deadline")
            p = np.asarray(booster.predict(valid_x, num_iteration=booster.best_iteration or None))
            scores.append(float(average_precision_score(valid_y, p)))
            iterations.append(int(booster.best_iteration or booster.current_iteration()))
            oof.append(p)
            trial.report(float(np.mean(scores)), k)
            if trial.should_prune():
                raise optuna.TrialPruned(f"behind the median after fold {k + 1}")
        value = float(np.mean(scores))
        entry = {
            "trial": trial.number,
            "cv_pr_auc": round(value, 5),
            "fold_pr_auc": [round(s, 5) for s in scores],
            "best_iterations": iterations,
            **{name: params[name] for name in SMOOTH},
        }
        if not best or value > best["value"]:
            seconds = (time.monotonic() - began) / len(folds)
            best.update(
                value=value,
                params=params,
                scores=scores,
                iterations=iterations,
                oof=np.concatenate(oof),
                seconds=seconds,
            )
        entry["kept"] = best["params"] is params
        history.append(entry)
        return value

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=len(STARTS), n_warmup_steps=0),
    )
    for start in STARTS:
        study.enqueue_trial(start)
    study.optimize(
        objective, n_trials=trials, timeout=max(deadline - time.monotonic(), 1e-3), catch=(), gc_after_trial=True
    )
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    stopped_by = "trials" if len(study.trials) >= trials else "deadline"
    if not best:  # unreachable in practice: the first trial is never pruned or discarded
        from shared.domain.errors import TrainingError

        raise TrainingError("the hyperparameter search finished no trial within its time budget")
    log.info(
        "search: %d trials (%d pruned) in %.1fs, stopped by %s; kept mean fold PR-AUC %.4f",
        len(study.trials),
        pruned,
        time.monotonic() - started,
        stopped_by,
        best["value"],
    )
    return SearchResult(
        params=best["params"],
        cv_pr_auc=best["value"],
        fold_pr_auc=best["scores"],
        best_iterations=best["iterations"],
        fold_train_rows=[f.train_stop for f in plan.folds],
        oof=best["oof"],
        fold_fit_seconds=round(best["seconds"], 3),
        trials=len(study.trials),
        pruned=pruned,
        stopped_by=stopped_by,
        seconds=round(time.monotonic() - started, 3),
        history=history,
    )
