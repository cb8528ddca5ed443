"""Scheduled national reporting in ``soc run`` (APScheduler): periodic summaries and the outbox.

Times are in the report zone (``SOC_TIMEZONE``): the daily summary of yesterday at 00:30, the
weekly one on Mondays at 01:00, the monthly one on the 1st at 01:30, Mẫu 05 for the past half
year on 1 January and 1 July at 02:00 and for the past year on 1 January at 02:30. Each build is
idempotent (the report number is the period's), so a restart or a second process does not build
twice; the new report is enqueued for the recipients that take summaries. The outbox worker runs
every 30 seconds.
"""

from __future__ import annotations

import logging
from typing import Any

from soc.config import Settings
from soc.store.base import Store

log = logging.getLogger(__name__)

SCHEDULES: dict[str, dict[str, Any]] = {
    "daily": {"hour": 0, "minute": 30},
    "weekly": {"day_of_week": "mon", "hour": 1, "minute": 0},
    "monthly": {"day": 1, "hour": 1, "minute": 30},
    "semiannual": {"month": "1,7", "day": 1, "hour": 2, "minute": 0},
    "annual": {"month": 1, "day": 1, "hour": 2, "minute": 30},
}


def build_and_enqueue_summary(store: Store, settings: Settings, period_type: str) -> str | None:
    from soc.export.outbox import OutboxError, enqueue
    from soc.export.reports import Reports

    try:
        built = Reports(store, settings).build_summary(period_type)
    except Exception as error:  # a missing setting must not stop the scheduler: say it
        log.error("scheduled %s summary could not be built: %s", period_type, error)
        return None
    if built.created:
        try:
            enqueue(store, settings, built.report_no)
        except OutboxError as error:
            log.info("%s", error)
    return built.report_no


def deliver(store: Store, settings: Settings) -> None:
    from soc.export.outbox import deliver_due

    try:
        deliver_due(store, settings)
    except Exception:
        log.exception("outbox worker pass failed")


def register_report_jobs(scheduler: Any, store: Store, settings: Settings) -> list[str]:
    """Add the summary builds and the outbox worker to an APScheduler scheduler; returns job ids."""
    if not settings.reporting.schedule:
        return []
    ids = []
    for period_type, when in SCHEDULES.items():
        job_id = f"report-{period_type}"
        scheduler.add_job(build_and_enqueue_summary, "cron", args=[store, settings, period_type], id=job_id,
                          replace_existing=True, timezone=settings.timezone, misfire_grace_time=6 * 3600,
                          coalesce=True, **when)
        ids.append(job_id)
    scheduler.add_job(deliver, "interval", args=[store, settings], seconds=30, id="report-outbox",
                      replace_existing=True, coalesce=True, max_instances=1)
    ids.append("report-outbox")
    return ids
