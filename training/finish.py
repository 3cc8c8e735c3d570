"""The steps after the fit, the same whichever engine fitted: export, the gate, publish."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from shared.adapters.model_store import ModelStore
from shared.domain.telemetry import span
from training.gate import judge_scores
from training.inputs import Features
from training.onnx_export import check_parity, to_onnx
from training.publish import publish
from training.steps import Exported, Fitted, Prepared

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.domain.config import TrainingConfig
    from shared.domain.contract import DatasetContract
    from training.config import TrainConfig
    from training.engines import Engine
    from training.run import TrainingRun


def export(fitted: Fitted, prepared: Prepared, features: list[str]) -> Exported:
    """The published booster as ONNX, checked against LightGBM on the test rows this process holds."""
    model = fitted.published
    onnx_bytes = to_onnx(model.booster, features, model.derived)
    parity = check_parity(model.booster, onnx_bytes, prepared.x_test_sample, derived=model.derived)
    return Exported(onnx_bytes, parity)


def gate_config(config: TrainingConfig, run_config: TrainConfig) -> TrainingConfig:
    """The config the gate reads, with the run's own costs and margin (a test's ``TrainConfig`` wins)."""
    return config.model_copy(
        update={
            "cost_fn": run_config.cost_fn,
            "cost_fp": run_config.cost_fp,
            "promotion_pr_auc_margin": run_config.pr_auc_margin,
        }
    )


def finish(
    store: BlobStore,
    engine: Engine,
    prepared: Prepared,
    fitted: Fitted,
    *,
    config: TrainingConfig,
    run_config: TrainConfig,
    contract: DatasetContract,
    started: float,
    started_at: datetime,
) -> TrainingRun:
    """Export, judge and publish: the same for a run on one instance and one on a Dask cluster."""
    with span("train.export"):
        exported = export(fitted, prepared, contract.model_features)
    models = ModelStore(store, config.model_name)
    with span("train.judge"):
        verdict, champion_p = judge_scores(
            models,
            dataset_version=prepared.dataset_version,
            split=prepared.split,
            threshold=fitted.threshold,
            y_test=prepared.y_test,
            test_probabilities=fitted.backtest_test_probabilities,
            baseline_metrics=fitted.baseline_metrics,
            config=gate_config(config, run_config),
            test_files=prepared.test_files,
            score_champion=engine.champion_scorer(prepared, models),
        )
    with span("train.publish"):
        return publish(
            store,
            models,
            prepared,
            fitted,
            exported,
            verdict,
            champion_p,
            config=config,
            features=Features.of(contract),
            started=started,
            started_at=started_at,
        )
