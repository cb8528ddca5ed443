"""The intel jobs of the running service (``soc run``): each feed on its interval, the matching
cycle (live matching, then the retro-hunt) every ``intel.match_interval_seconds``, the hand
list reloaded when its file changes, and (``intel.sightings``) queued sightings sent every 5 minutes. Errors are logged and recorded; the schedule goes on.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soc.config_intel import IntelSettings
from soc.intel.handlist import HAND_LIST, load_hand_list
from soc.intel.matching import IntelMatching
from soc.intel.polling import FeedPoller
from soc.intel.sightings import send_sightings

__all__ = ["HandListWatch", "register_intel_jobs"]

log = logging.getLogger(__name__)


class HandListWatch:
    """Reloads the hand list into the store when the file's modification time changes."""

    def __init__(self, poller: FeedPoller, path: Path) -> None:
        self.poller = poller
        self.path = path
        self._mtime: float | None = None

    def __call__(self) -> dict[str, int] | None:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return None
        if mtime == self._mtime:
            return None
        counts = load_hand_list(self.poller.book, self.path)
        self.poller.record(HAND_LIST, counts, kind="list")
        self._mtime = mtime
        return counts


def register_intel_jobs(scheduler: Any, settings: IntelSettings, poller: FeedPoller, matching: IntelMatching,
                        hand_list: Path | None) -> None:
    """Add the jobs to an APScheduler scheduler (started or not)."""
    if not settings.enabled:
        return
    now = datetime.now(UTC)

    def guarded(name: str, job: Any) -> Any:
        def run() -> None:
            try:
                job()
            except Exception:  # the store is unreachable, for example: log, keep the schedule
                log.exception("intel job %s failed", name)
        return run

    if hand_list is not None and settings.hand_list:
        scheduler.add_job(guarded("hand-list", HandListWatch(poller, hand_list)), "interval", seconds=60,
                          id="intel-hand-list", next_run_time=now)
    for feed in settings.feeds:
        scheduler.add_job(guarded(f"feed {feed.name}", lambda n=feed.name: poller.poll(n, when_due=True)), "interval",
                          minutes=feed.interval_minutes, id=f"intel-feed-{feed.name}", next_run_time=now)
    scheduler.add_job(guarded("matching", matching.run_once), "interval", seconds=settings.match_interval_seconds,
                      id="intel-matching", next_run_time=now, max_instances=1, coalesce=True)
    if settings.sightings and any(f.share_sightings for f in settings.feeds):
        scheduler.add_job(guarded("sightings", lambda: send_sightings(poller.store, settings.feeds, clock=poller.clock)),
                          "interval", minutes=5, id="intel-sightings", max_instances=1, coalesce=True)
