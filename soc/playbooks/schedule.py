"""Playbooks in the embedded service (``soc run``): scheduled playbooks and the sweep.

:func:`attach` adds to an APScheduler scheduler

* one cron job per playbook with a ``schedule`` trigger (in the trigger's zone); each fire
  starts the run keyed by its fire time, so N service processes start it once;
* the recovery sweep every ``sweep_seconds``: runs whose owner died or whose lease expired
  are taken over, waiting runs whose wait is over are continued (also once at start-up);
* a catch-up at start-up: alerts detected in the last ``catch_up_seconds`` are offered to
  the playbooks again (idempotent), so an alert recorded just before a crash is not missed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from soc.playbooks.runner import PlaybookRunner

log = logging.getLogger(__name__)


def _fire(runner: PlaybookRunner, playbook_id: str, trigger: CronTrigger) -> None:
    now = datetime.now(UTC)
    # the fire time this job stands for: the latest schedule time at or before now
    fire = trigger.get_next_fire_time(None, now.replace(second=0, microsecond=0))
    if fire is None or fire > now:
        fire = now
    try:
        run_id, created = runner.on_schedule(playbook_id, fire)
        if created:
            log.info("scheduled playbook %s: run %s", playbook_id, run_id)
    except Exception:
        log.exception("scheduled playbook %s could not run", playbook_id)


def _sweep(runner: PlaybookRunner) -> None:
    try:
        handled = runner.recover()
        if handled:
            log.warning("playbooks: resumed %d run(s) left by a stopped process or due after a wait", len(handled))
    except Exception:
        log.exception("playbook recovery sweep failed")


def _catch_up(runner: PlaybookRunner) -> None:
    try:
        started = runner.catch_up(runner.config.catch_up_seconds)
        if started:
            log.warning("playbooks: %d run(s) started for alerts recorded before a restart", len(started))
    except Exception:
        log.exception("playbook catch-up failed")


def _poll(runner: PlaybookRunner, seconds: float) -> None:
    try:
        started = runner.catch_up(seconds)
        if started:
            log.info("playbooks: %d run(s) started for new alerts", len(started))
    except Exception:
        log.exception("playbook alert poll failed")


def attach(runner: PlaybookRunner, scheduler: Any, *, poll_alerts: bool = False) -> list[str]:
    """Register the scheduled playbooks and the sweep on ``scheduler``; returns the job ids.

    ``poll_alerts`` (``soc playbook worker``, next to separate ``soc detect`` processes): also
    offer the alerts detected in the last few sweep periods to the playbooks every sweep --
    idempotent, so an alert offered twice starts one run."""
    jobs = []
    for playbook in runner.playbooks.values():
        spec = playbook.trigger.schedule
        if spec is None or not playbook.enabled:
            continue
        trigger = CronTrigger.from_crontab(spec.cron, timezone=spec.timezone)
        job_id = f"playbook:{playbook.id}"
        scheduler.add_job(_fire, trigger, args=[runner, playbook.id, trigger], id=job_id,
                          name=f"playbook {playbook.title}", replace_existing=True, coalesce=True,
                          misfire_grace_time=3600)
        jobs.append(job_id)
    scheduler.add_job(_catch_up, args=[runner], id="playbook-catch-up", name="playbook alert catch-up",
                      replace_existing=True)  # once, at start-up
    scheduler.add_job(_sweep, "interval", args=[runner], seconds=runner.config.sweep_seconds,
                      id="playbook-sweep", name="playbook recovery sweep", replace_existing=True,
                      next_run_time=datetime.now(UTC))
    jobs.append("playbook-sweep")
    if poll_alerts:
        window = max(4 * runner.config.sweep_seconds, 300.0)
        scheduler.add_job(_poll, "interval", args=[runner, window], seconds=runner.config.sweep_seconds,
                          id="playbook-alert-poll", name="playbook alert poll", replace_existing=True,
                          max_instances=1, coalesce=True)
        jobs.append("playbook-alert-poll")
    return jobs
