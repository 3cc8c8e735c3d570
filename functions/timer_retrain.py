"""Timer trigger: nightly retraining on the schedule in ``%RETRAIN_SCHEDULE%``; never on startup."""

from __future__ import annotations

import logging

import azure.functions as func

log = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.function_name("retrain_model")
@bp.timer_trigger(arg_name="timer", schedule="%RETRAIN_SCHEDULE%", run_on_startup=False, use_monitor=True)
def retrain_model(timer: func.TimerRequest) -> None:
    """Retrain, evaluate, and promote only a better model."""
    from shared.bootstrap import bootstrap
    from training.retrain import Submitted, retrain

    if timer.past_due:
        log.warning("retraining timer is past due; running now")
    services = bootstrap()
    outcome = retrain(services.blob_store, services.settings)
    if isinstance(outcome, Submitted):  # handed to the Dask cluster, which finishes and publishes it
        log.info("retrain: submitted to the Dask cluster as %s", outcome.key)
        return
    log.info(
        "retrain: model=%s auc=%.4f pr_auc=%.4f promoted=%s (%s)",
        outcome.model_version,
        outcome.auc,
        outcome.pr_auc,
        outcome.promoted,
        outcome.promotion_reason,
    )
