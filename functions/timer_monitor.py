"""Timer trigger: the daily monitoring run on ``%MONITOR_SCHEDULE%``; it judges the previous UTC day."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import azure.functions as func

if TYPE_CHECKING:
    from shared.bootstrap import Services

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
    outcome = run_monitor(
        services.blob_store, services.settings.monitoring, day=yesterday, anchor=services.audit_anchor
    )
    log.info("monitor %s: %s, report %s", outcome.day, outcome.level, outcome.report)
    if services.model_store.reconcile_audit() is not None:
        log.warning("monitor: the champion's last move was missing from the audit chain; recorded now")
    _resume_erasures(services)


def _resume_erasures(services: Services) -> None:
    """Erasures asked for and not finished (an instance recycled under one, a claim that stayed busy) run now."""
    from shared.adapters.audit import service_actor
    from shared.domain.errors import NoCustomerColumnError
    from shared.domain.pseudonym import for_settings
    from shared.governance.gdpr import resume_erasures

    settings = services.settings
    try:
        done = resume_erasures(
            services.blob_store,
            for_settings(settings),
            actor=service_actor("monitor"),
            dataset=settings.dataset_name,
            online=services.behaviour,
        )
    except NoCustomerColumnError:
        return  # the dataset keeps nothing by customer: no erasure can be pending
    if done:
        log.warning("monitor: %d erasures left unfinished were finished now", len(done))
