"""The retraining run that the timer function and ``fraudops train`` run, as named steps.

``prepare`` (window, layout, drift) -> ``fit`` (search, threshold, backtest, refit, baseline, comparison,
explanations) -> ``export`` (ONNX, parity) -> the gate's ``judge_scores`` (the one promotion rule,
shared with federated rounds) -> ``publish`` (version, conditional promotion, reports, MLflow), each
handing the next a typed value (``training.steps``). ``prepare`` and ``fit`` are the engine's
(``training.engines``: this instance, or a Dask cluster when the window needs one); the rest is the
same for both (``training.finish``).

Backtest, then refit. Every choice is made on rows later than the rows it was fitted on: the
configuration and the boosting rounds by rolling-origin folds of the oldest 80 % of the window
(``dev``), the threshold of least business cost on those folds' out-of-fold probabilities. The
*backtest model*, that configuration fitted on all of dev, is measured once on the newest 20 %
(the test part): those are the figures the gate judges and the report shows. The *published model*
is the same configuration refitted on every row of the window, the newest included, so the served
model learns from all labelled data; it has no held-out figure of its own, and the manifest and the
report say which model each figure belongs to. A failed run leaves the champion untouched, writes a
failure report, and raises.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared.domain.contracts import get_contract
from shared.domain.errors import FraudOpsError, TrainingError
from shared.domain.progress import report
from shared.domain.telemetry import instruments, span
from training.config import TrainConfig
from training.engines import engine_for
from training.finish import finish
from training.records import audit_outcome, record_failure
from training.window import plan_window

STEPS = "training steps"  # the progress line's name for prepare, fit, and export-judge-publish

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.domain.config import StorageConfig, TrainingConfig
    from training.run import TrainingRun

__all__ = ["TrainConfig", "run_training"]


def run_training(
    store: BlobStore,
    *,
    config: TrainingConfig,
    storage: StorageConfig,
    dataset_version: str | None = None,
    run_config: TrainConfig | None = None,
) -> TrainingRun:
    """One retraining run; returns its summary (also written to ``reports/training/``).

    Any failure writes ``reports/training/failed-<time>.json``, is logged as a FAILED MLflow run,
    and raises (``TrainingError`` for a failed run, the storage error for an outage). ``storage`` is
    where the Dask workers read the window from, when the run goes to a cluster.
    """
    run_config = run_config or TrainConfig.from_config(config)
    started_at = datetime.now(UTC)
    try:
        with span("train.run", dataset=config.dataset_name):
            run = _run(
                store,
                config=config,
                storage=storage,
                dataset_version=dataset_version,
                run_config=run_config,
                started_at=started_at,
            )
    except Exception as exc:
        reason = exc.reason if isinstance(exc, FraudOpsError) else f"{type(exc).__name__}: {exc}"
        instruments().retrains.add(1, {"outcome": "failed"})
        record_failure(store, config=config, reason=reason, started_at=started_at, dataset_version=dataset_version)
        audit_outcome(store, "failed", reason, {"dataset_version": dataset_version})
        if isinstance(exc, FraudOpsError):
            raise
        raise TrainingError(f"training failed: {reason}") from exc
    outcome = "promoted" if run.promoted else "kept_champion"
    instruments().retrains.add(1, {"outcome": outcome})
    details = {"model": config.model_name, "version": run.model_version, "dataset_version": run.dataset_version}
    audit_outcome(store, outcome, run.promotion_reason, details)
    return run


def _run(
    store: BlobStore,
    *,
    config: TrainingConfig,
    storage: StorageConfig,
    dataset_version: str | None,
    run_config: TrainConfig,
    started_at: datetime,
) -> TrainingRun:
    """The named steps: prepare, fit (the engine's), then export, judge, publish (the same for both engines)."""
    started = time.monotonic()
    contract = get_contract(config.dataset_name)
    _, _, _, counts = plan_window(
        store, contract, dataset_version, max_rows=run_config.window_rows, max_days=run_config.window_days
    )
    deadline = started + run_config.budget_seconds
    rows = sum(max(c, 0) for c in counts)
    with engine_for(store, contract, config=config, storage=storage, rows=rows) as engine:
        where = {"distributed": True} if engine.distributed else {}
        report(STEPS, 0, 3)  # prepare, fit (the search's trials report their own), then export, judge, publish
        with span("train.prepare", **where):
            prepared = engine.prepare(dataset_version, run_config)
        report(STEPS, 1, 3)
        with span("train.fit", rows=prepared.rows, **where):
            fitted = engine.fit(prepared, run_config, deadline=deadline)
        report(STEPS, 2, 3)
        run = finish(
            store,
            engine,
            prepared,
            fitted,
            config=config,
            run_config=run_config,
            contract=contract,
            started=started,
            started_at=started_at,
        )
        report(STEPS, 3, 3)
        return run
