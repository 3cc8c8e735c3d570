"""The single-node engine: the whole window in this process's memory."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from training.evaluation import evaluate
from training.fitting import deadline_of_fits, families_and_baseline, search_and_threshold
from training.gate import champion_scores
from training.monitoring import check_drift
from training.steps import Fitted, Prepared
from training.window import layout, load_window

if TYPE_CHECKING:
    from shared.adapters.model_store import ModelStore
    from shared.adapters.storage import BlobStore
    from shared.domain.config import TrainingConfig
    from shared.domain.contract import DatasetContract
    from training.config import TrainConfig
    from training.gate import ChampionScorer


class LocalEngine:
    """``prepare`` and ``fit`` on one instance."""

    distributed = False

    def __init__(self, *, store: BlobStore, config: TrainingConfig, contract: DatasetContract) -> None:
        self.store, self.config, self.contract = store, config, contract

    def prepare(self, dataset_version: str | None, run_config: TrainConfig) -> Prepared:
        """Load the window, lay it out by time (refusing a part with one class), and check drift."""
        from shared.adapters.erasures import erased

        contract = self.contract
        window = load_window(
            self.store,
            contract,
            dataset_version,
            max_rows=run_config.window_rows,
            max_days=run_config.window_days,
            erased=erased(self.store),  # customers who asked to be erased: never back in a model
        )
        plan = layout(window)
        split = {**plan.describe(window.time), "column": contract.time_column.name if contract.time_column else None}
        split["files"], split["files_left_out"] = len(window.files), window.left_out
        drift_result = check_drift(self.store, config=self.config, files=window.files)
        return Prepared(window, plan, split, drift_result)

    def fit(self, prepared: Prepared, run_config: TrainConfig, *, deadline: float) -> Fitted:
        """Search on the folds, choose the threshold out of fold, fit the backtest and published models, the
        baseline and the other families, and explain the published model."""
        from training.explain import explain
        from training.families import lightgbm_row
        from training.search import fit_model

        p, w, config = prepared, prepared.window, run_config
        features = w.features if w.features is not None else self.contract.feature_names
        costs = {"cost_fn": config.cost_fn, "cost_fp": config.cost_fp}
        fits_deadline = deadline_of_fits(deadline, config)
        found, oof_y, curve, threshold = search_and_threshold(w, p.plan, features, config, fits_deadline=fits_deadline)
        backtest_rounds = found.rounds_for(p.plan.dev_stop, config.num_boost_round)
        backtest = fit_model(
            found, p.x_dev, p.y_dev, features, rounds=backtest_rounds, deadline=fits_deadline, seed=config.seed
        )
        began = time.perf_counter()
        backtest_p = backtest.predict(p.x_test)
        score_ms = 1e6 * (time.perf_counter() - began) / max(p.y_test.size, 1)  # per thousand rows
        published_rounds = found.rounds_for(w.rows, config.num_boost_round)
        published = fit_model(
            found, w.x, w.y, features, rounds=published_rounds, deadline=fits_deadline, seed=config.seed
        )
        comparison = [
            lightgbm_row(
                w.y, p.plan, found.oof, fit_seconds=found.fold_fit_seconds, score_ms_per_1k=score_ms, costs=costs
            )
        ]
        others, baseline, baseline_threshold = families_and_baseline(
            w, p.plan, features, config, p.x_dev, p.y_dev, oof_y=oof_y, threshold=threshold, fits_deadline=fits_deadline
        )
        comparison.extend(others)
        baseline_p = baseline.predict_proba(p.x_test)[:, 1]
        x_sample = p.x_test_sample
        explanations = explain(
            published, features, x_sample, p.y_test_sample, published.predict(x_sample), threshold, seed=config.seed
        )
        return Fitted(
            found,
            threshold,
            curve,
            backtest,
            backtest_rounds,
            backtest_p,
            published,
            published_rounds,
            evaluate(p.y_test, baseline_p, baseline_threshold, **costs),
            baseline_p,
            comparison,
            explanations,
        )

    def champion_scorer(self, prepared: Prepared, models: ModelStore) -> ChampionScorer:
        """The champion scored here, on the test part's rows in memory."""
        x_test = prepared.x_test
        encoding = prepared.window.encoding
        return lambda version: champion_scores(models, version, self.contract, x_test, encoding)
