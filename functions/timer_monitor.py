"""Timer trigger: the daily monitoring run on ``%MONITOR_SCHEDULE%``; it judges the previous UTC day."""

from __future__ import annotations

import logging

import azure.functions as func

log = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.function_name("monitor_daily")
@bp.timer_trigger(arg_name="timer", schedule="%MONITOR_SCHEDULE%", run_on_startup=False, use_monitor=True)
def monitor_daily(timer: func.TimerRequest) -> None:
    """Realised performance, live drift and alert verdicts for yesterday; written to reports/monitoring/."""
    from datetime import UTC, datetime, timedelta

    from shared.bootstrap import bootstrap
    from shared.monitoring.service import run_monitor

    if timer.past_due:
        log.warning("monitoring timer is past due; running now")
    services = bootstrap()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    outcome = run_monitor(services.blob_store, services.settings.monitoring, day=yesterday)
    log.info("monitor %s: %s, report %s", outcome.day, outcome.level, outcome.report)
