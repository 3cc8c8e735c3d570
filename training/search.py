"""LightGBM configuration search with Optuna on rolling-origin folds, inside a wall-clock deadline.

The objective is the mean, over the folds of ``training.window.layout``, of each validation block's
log loss: every fold is later than its training rows, and together they hold several times the
frauds of one validation part, so a choice rests on hundreds of frauds rather than one noisy
hundred. Log loss is a proper scoring rule: the true probabilities minimise it, so a configuration
that lowers it comes closer to them everywhere, in the ranking of the hard frauds among the
legitimate mass (ROC-AUC) as well as at the top of the list (PR-AUC). Average precision alone, the
previous objective, ignores where the frauds that look legitimate are ranked: on the ``mixture``
mechanism it chose 54-leaf trees whose ROC-AUC was 0.04 below the optimum while PR-AUC was within
0.007. Boosting stops early on the same log loss. The lowest mean wins; nothing needs to beat a
favoured configuration. Each trial's mean fold PR-AUC is kept beside it, for the report.

The search starts from five configurations far apart (``STARTS``): many small smooth trees, on the
inputs alone and with the linear score (``training.linear``: a logistic regression's log-odds as one
more column, for fraud that shifts many features a little in one direction); an additive model of one
exact split per tree over the inputs plus the products of the pairs that interact
(``training.interactions``), a pairwise-interaction model in the manner of GA2M / explainable boosting
machines; LightGBM's usual middle ground; and bigger trees. So whether the data's log-odds are smooth,
linear, full of interactions or steps, a suitable region is tried before TPE explores. None of them was
chosen on a particular generator; they span the space. Whether each kind of derived column is used is
itself a dimension of the search: each fold measures its columns on its own training rows, so a trial
with them is measured as honestly as one without.

Time: each start has a fair share of the time left (the rest of the budget divided by the starts still
to run, and within a start by its folds still to run), so a slow or busy machine cuts every start short
rather than letting the first one eat the budget and the others never run (every start runs: past the
deadline its share is zero and it boosts one round a fold, still measured). A start cut short competes
as it is (fewer boosting rounds than its early stopping wanted: it can only look worse) and is marked
``cut_short`` in the history. After the starts, TPE's trials have what is left: a later trial cut short
by the deadline is discarded, trials behind the median after a fold are pruned, and the search stops at
``trials`` or at the deadline. Same seed, same trials, no start cut short: same result.

Binning: LightGBM buckets each feature into equal-frequency bins before it grows a tree; its default
of 255 bins puts about a thousand rows into each bin at 300,000 rows, so the extreme tails where
fraud concentrates are a handful of bins wide. ``MAX_BIN`` of 4,095 (``TRAIN_MAX_BIN``) keeps splits
close to the exact thresholds an exact-split learner would find, at two bytes per binned value instead
of one. The search's bin count is carried in its result, so every later fit bins the same way.

What it hands on (``SearchResult``): the chosen parameters, which derived columns are used, each fold's
best boosting round and training size (``rounds_for`` scales them to a fit on more rows), and the
chosen configuration's out-of-fold probabilities, from which the decision threshold is chosen by cost.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.domain.progress import report
from training.boosting import DATASET_PARAMS as DATASET_PARAMS
from training.boosting import FIXED, MAX_BIN, dataset, dataset_params, deadline_callback, fit_booster
from training.inputs import Features, categorical_of
from training.model import Choice, Model, derive

if TYPE_CHECKING:
    import lightgbm as lgb
    import optuna

    from training.window import Fold, Layout

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
ADDITIVE: dict[str, Any] = {  # one exact split per tree, over the inputs and their products: additive in both
    "learning_rate": 0.1,
    "num_leaves": 2,
    "min_child_samples": 200,
    "feature_fraction": 1.0,
    "bagging_fraction": 0.8,
    "lambda_l2": 10.0,
    "scale_pos_weight": 1.0,
    "extra_trees": False,
}
STARTS = (
    {**SMOOTH, "interactions": False, "linear": False},
    {**SMOOTH, "interactions": False, "linear": True},
    {**ADDITIVE, "interactions": True, "linear": False},
    {**MIDDLE, "interactions": False, "linear": False},
    {**LARGER, "interactions": False, "linear": False},
)
DEFAULTS = SMOOTH  # the first trial (on the inputs alone): what a search cut short after one trial returns
EARLY_STOPPING_ROUNDS = 100


@dataclass
class SearchResult:
    """The chosen configuration and what the search learnt about it."""

    params: dict[str, Any]
    interactions: bool  # the chosen configuration appends the products of interacting pairs
    linear: bool  # and the linear score (``training.linear``)
    cv_log_loss: float  # the objective: mean fold log loss (lower is better)
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
    max_bin: int = MAX_BIN  # how the folds were binned: later fits bin the same way

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
        "interactions": trial.suggest_categorical("interactions", [False, True]),
        "linear": trial.suggest_categorical("linear", [False, True]),
    }


def _category_space(trial: optuna.Trial, rows: int) -> dict[str, Any]:
    """How finely LightGBM may split categories: LightGBM's defaults (100 rows per category, smoothing 10) suit
    millions of rows; a smaller window needs smaller groups, so the search decides, from a start scaled to it."""
    start = int(min(100, max(5, rows // 1000)))
    low, high = min(5, start), max(200, start)
    return {
        "min_data_per_group": trial.suggest_int("min_data_per_group", low, high, log=True),
        "cat_smooth": trial.suggest_float("cat_smooth", 1.0, 50.0, log=True),
    }


class _FoldData:
    """One fold's binned training and validation sets, for each choice of derived columns (built on first use)."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        fold: Fold,
        features: list[str],
        seed: int,
        binning: dict[str, Any],
    ) -> None:
        self.x, self.y, self.fold, self.features, self.seed, self.binning = x, y, fold, features, seed, binning
        self._sets: dict[Choice, tuple[lgb.Dataset, lgb.Dataset, np.ndarray, np.ndarray]] = {}

    def sets(self, choice: Choice, deadline: float) -> tuple[lgb.Dataset, lgb.Dataset, np.ndarray, np.ndarray]:
        if choice not in self._sets:
            self._sets[choice] = self._build(choice, deadline)
        return self._sets[choice]

    def _build(self, choice: Choice, deadline: float) -> tuple[lgb.Dataset, lgb.Dataset, np.ndarray, np.ndarray]:

        stop, end = self.fold.train_stop, self.fold.valid_stop
        train_x, train_y = self.x[:stop], self.y[:stop]
        valid_x, valid_y = self.x[stop:end], self.y[stop:end]
        names = self.features
        derived = derive(train_x, train_y, names, choice, seed=self.seed, binning=self.binning, deadline=deadline)
        if derived is not None:
            train_x, valid_x, names = derived.apply(train_x), derived.apply(valid_x), names + derived.names(names)
        # binned now, raw data freed: a fold keeps two bytes a value per choice, not a float32 copy of its
        # widened rows (at 1,000,000 rows those copies took the peak past 1.8 GB); validation rows are kept
        # as an array, for the predictions
        categorical = Features(names, categorical=categorical_of(self.features))
        train = dataset(train_x, train_y, categorical, self.binning, free_raw_data=True).construct()
        valid = dataset(valid_x, valid_y, categorical, self.binning, reference=train, free_raw_data=True).construct()
        return train, valid, valid_x, valid_y


def fit_model(
    found: SearchResult,
    x: np.ndarray,
    y: np.ndarray,
    features: list[str],
    *,
    rounds: int,
    deadline: float,
    seed: int,
) -> Model:
    """The chosen configuration on ``x``: its derived columns measured on these rows; the thresholds are
    exact in float32 (``training.onnx_export.float32_thresholds``)."""
    from training.onnx_export import float32_thresholds

    binning = dataset_params(found.max_bin)
    choice = (found.interactions, found.linear and not bool(np.isnan(x).any()))
    derived = derive(x, y, features, choice, seed=seed, binning=binning, deadline=deadline)
    wide, names = (x, features) if derived is None else (derived.apply(x), features + derived.names(features))
    names = Features(names, categorical=categorical_of(features))
    booster = fit_booster(found.params, wide, y, names, rounds=rounds, deadline=deadline, max_bin=found.max_bin)
    return Model(float32_thresholds(booster), derived)  # served in float32 (ONNX): decided the same way


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
    max_bin: int = MAX_BIN,
) -> SearchResult:
    """Search on the folds of ``plan`` (rows of ``x``) until ``trials`` or ``deadline`` (monotonic)."""
    import lightgbm as lgb
    import optuna
    from sklearn.metrics import average_precision_score, log_loss

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.monotonic()
    # One binned dataset per fold and feature set for every trial: pre-filtering features by the first
    # trial's min_data_in_leaf would force a rebuild whenever a later trial asks for less. The products
    # of a fold are detected on its training rows the first time a trial asks for them.
    binning = dataset_params(max_bin)
    folds = [_FoldData(x, y, fold, feature_names, seed, binning) for fold in plan.folds]
    missing = bool(np.isnan(x).any())  # the linear score (training.linear) takes complete rows only
    best: dict[str, Any] = {}
    history: list[dict[str, Any]] = []

    categorical = bool(categorical_of(feature_names))

    def objective(trial: optuna.Trial) -> float:
        report("search trials", trial.number + 1, trials)
        space = _space(trial) | (_category_space(trial, len(y)) if categorical else {})
        choice = (bool(space.pop("interactions")), bool(space.pop("linear")) and not missing)
        params = {**FIXED, **space, "seed": seed}
        losses, scores, iterations, oof = [], [], [], []
        began = time.monotonic()
        start = trial.number < len(STARTS)
        # a start has its fair share of what is left, so every start is measured however slow the machine is
        until = began + (deadline - began) / (len(STARTS) - trial.number) if start else deadline
        cut = False
        for k, fold in enumerate(folds):
            now = time.monotonic()
            if not start and best and now > deadline:
                raise optuna.TrialPruned("deadline")
            fold_deadline = now + max(until - now, 0.0) / (len(folds) - k) if start else deadline
            train, valid, valid_x, valid_y = fold.sets(choice, fold_deadline)
            booster = lgb.train(
                params,
                train,
                num_boost_round=num_boost_round,
                valid_sets=[valid],
                callbacks=[
                    lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False),
                    deadline_callback(fold_deadline),
                ],
            )
            if time.monotonic() > fold_deadline:
                if not start and best:  # this fold was cut short: not comparable
                    raise optuna.TrialPruned("deadline")
                cut = True  # a start cut short by its share competes as it is: it can only look worse
            p = np.asarray(booster.predict(valid_x, num_iteration=booster.best_iteration or None))
            losses.append(float(log_loss(valid_y, p, labels=[0, 1])))
            scores.append(float(average_precision_score(valid_y, p)))
            iterations.append(int(booster.best_iteration or booster.current_iteration()))
            oof.append(p)
            trial.report(float(np.mean(losses)), k)
            if trial.should_prune():
                raise optuna.TrialPruned(f"behind the median after fold {k + 1}")
        value = float(np.mean(losses))
        entry = {
            "trial": trial.number,
            "cv_log_loss": round(value, 6),
            "cv_pr_auc": round(float(np.mean(scores)), 5),
            "fold_pr_auc": [round(s, 5) for s in scores],
            "best_iterations": iterations,
            **{name: params[name] for name in SMOOTH},
            "interactions": choice[0],
            "linear": choice[1],
            "cut_short": cut,
        }
        if not best or value < best["value"]:
            seconds = (time.monotonic() - began) / len(folds)
            best.update(
                value=value,
                params=params,
                choice=choice,
                scores=scores,
                iterations=iterations,
                oof=np.concatenate(oof),
                seconds=seconds,
            )
        entry["kept"] = best["params"] is params
        history.append(entry)
        return value

    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=len(STARTS), n_warmup_steps=0),
    )
    for start in STARTS:
        study.enqueue_trial(
            {**start, "min_data_per_group": int(min(100, max(5, len(y) // 1000))), "cat_smooth": 10.0}
            if categorical
            else start
        )
    # every start runs, each within its share (zero once the deadline has passed: one round a fold, still
    # measured); then TPE's trials, only while there is time
    starts = min(len(STARTS), trials)
    study.optimize(objective, n_trials=starts, catch=(), gc_after_trial=True)
    if trials > starts and time.monotonic() < deadline:
        study.optimize(
            objective,
            n_trials=trials - starts,
            timeout=max(deadline - time.monotonic(), 1e-3),
            catch=(),
            gc_after_trial=True,
        )
    # enqueued starts the search never reached stay WAITING in ``study.trials``: they are not trials run
    ran = [t for t in study.trials if t.state != optuna.trial.TrialState.WAITING]
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in ran)
    stopped_by = "trials" if len(ran) >= trials else "deadline"
    if not best:  # unreachable in practice: the first trial is never pruned or discarded
        from shared.domain.errors import TrainingError

        raise TrainingError("the hyperparameter search finished no trial within its time budget")
    log.info(
        "search: %d trials (%d pruned) in %.1fs, stopped by %s; kept mean fold log loss %.6f (PR-AUC %.4f)",
        len(ran),
        pruned,
        time.monotonic() - started,
        stopped_by,
        best["value"],
        float(np.mean(best["scores"])),
    )
    return SearchResult(
        params=best["params"],
        interactions=best["choice"][0],
        linear=best["choice"][1],
        cv_log_loss=best["value"],
        cv_pr_auc=float(np.mean(best["scores"])),
        fold_pr_auc=best["scores"],
        best_iterations=best["iterations"],
        fold_train_rows=[f.train_stop for f in plan.folds],
        oof=best["oof"],
        fold_fit_seconds=round(best["seconds"], 3),
        trials=len(ran),
        pruned=pruned,
        stopped_by=stopped_by,
        seconds=round(time.monotonic() - started, 3),
        history=history,
        max_bin=max_bin,
    )
