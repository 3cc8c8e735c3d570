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
    from shared.adapters.storage import get_blob_store
    from shared.domain.settings import get_settings
    from training.pipeline import run_training

    if timer.past_due:
        log.warning("retraining timer is past due; running now")
    settings = get_settings()
    summary = run_training(get_blob_store(settings), settings)
    log.info(
        "retrain: model=%s auc=%.4f pr_auc=%.4f promoted=%s (%s)",
        summary.model_version,
        summary.auc,
        summary.pr_auc,
        summary.promoted,
        summary.promotion_reason,
    )
