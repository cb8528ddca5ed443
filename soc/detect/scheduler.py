"""Scheduled detection: every rule on its interval, gap-free, once, on any number of processes.

Each rule keeps its state in the store (collection ``rule_state``):

* ``watermark`` -- ingest time (``event.ingested``) up to which the rule has been evaluated. A run
  covers ``[watermark - overlap, now - settle)``; the next one starts from where it ended. A
  restart, an outage or a late batch therefore leaves no gap (the late events carry a later
  ingest time), and the overlap absorbs clock skew between writers and commits that became
  visible late. Re-reading the overlap never duplicates: alerts are create-only by id.
* a **lease** -- before running, a scheduler claims the rule's next window with a
  compare-and-set on the state document (``lease_owner``, ``lease_until``). Another scheduler
  that reads the same version loses the race and skips; a scheduler that dies mid-run leaves a
  lease that expires, and the next claimant re-runs the same window from the old watermark. So
  with N scheduler processes no window runs twice and none is skipped. While a run goes on,
  a heartbeat renews the lease every ``lease / 3`` seconds (again by compare-and-set), so a
  slow run keeps its claim and the lease can be short.
* **health** -- last run, duration, hits, covered range, error, consecutive errors, whether
  the run hit its alert budget. One broken rule never stops the others.

Detection runs on a bounded thread pool (``max_concurrent_rules``) so it cannot starve ingest;
on a search store every query also carries a timeout (``query_timeout_seconds``: the search's
own ``timeout`` and the client's request timeout). A query that times out or answers from only
some shards fails the run -- it never counts as a complete, shorter answer: the watermark stays,
the health says ``last_timed_out`` (and counts ``timeouts``), and the next run retries the same
window. (A slow run keeps its claim: the lease is renewed while the run goes on.)

Across processes (``soc detect``, one process per replica): every process schedules every rule;
the lease decides which one runs a given window. A process that loses a claim skips that rule
until its next interval; a killed process leaves its claim behind until ``lease_until``, after
which any other process claims the same window again (from the old watermark, so the window
is not lost) and records a ``takeovers`` count and ``last_takeover`` in the health.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor as _Pool
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from soc.clock import epoch_clock
from soc.detect.compiler import Detection
from soc.detect.engine import DetectionEngine, RunResult
from soc.store.base import StoreError, Window
from soc.store.lease import LeaseLost, Leases

log = logging.getLogger(__name__)
RULE_STATE = "rule_state"
#: seconds after another process's run within which its writes may not be searchable yet (a
#: search store's refresh interval is 1 s)
VISIBILITY = 5.0


@dataclass(frozen=True)
class Timing:
    interval: float = 60.0
    overlap: float = 120.0
    settle: float = 5.0
    initial_lookback: float = 86400.0  # a new rule first looks this far back in ingest time
    lease: float = 120.0  # a claim not renewed for this long is considered abandoned (heartbeat: lease / 3)


class RuleRunner:
    """Runs detections window by window with persisted watermarks and leases."""

    def __init__(self, engine: DetectionEngine, timing: Timing, *, owner: str | None = None,
                 on_alerts: Callable[[Detection, RunResult], None] | None = None,
                 on_run: Callable[[Detection, RunResult, dict[str, Any]], None] | None = None,
                 clock: Callable[[], float] = time.time):
        """``on_alerts`` is called after a run whose health was recorded and which created
        alerts (notify here); ``on_run`` after every run this runner claimed, with the health
        it recorded (``health["recorded"]`` is False when the lease was lost meanwhile)."""
        self.engine = engine
        self.store = engine.store
        self.timing = timing
        self.on_alerts = on_alerts
        self.on_run = on_run
        self.clock = clock
        #: the rule-state documents' leases (``lease_owner``, ``lease_until`` in epoch seconds)
        self.leases = Leases(self.store, RULE_STATE, seconds=timing.lease, owner=owner, clock=epoch_clock(clock))
        self.owner = self.leases.owner

    def run_once(self, detection: Detection) -> RunResult | None:
        """Claim and run this rule's next window. ``None`` when there was nothing to do or
        another scheduler holds the rule."""
        now = self.clock()
        at = datetime.fromtimestamp(now, UTC)
        doc = self.store.get(RULE_STATE, detection.info.id)
        state: dict[str, Any] = dict(doc.body) if doc else {"rule_id": detection.info.id}
        if self.leases.held_by_other(state, at):
            return None
        watermark = state.get("watermark")
        # a rule's first window starts initial_lookback before its first claim; kept, so that a
        # failed first run is retried from the same start
        origin = state.get("origin", now - self.timing.initial_lookback)
        start = (watermark if watermark is not None else origin) - self.timing.overlap
        end = now - self.timing.settle
        if watermark is not None and end <= watermark:
            return None
        changes = dict(state, origin=origin, claimed_window=[start, end])
        previous = self.leases.holder(state)
        if previous not in (None, self.owner):  # its claim expired: it died or stalled mid-run
            changes.update(takeovers=state.get("takeovers", 0) + 1,
                           last_takeover={"from": previous, "at": now, "window": state.get("claimed_window")})
        claim = self.leases.claim(detection.info.id, doc, at=at, changes=changes)
        if claim is None:
            return None  # another scheduler claimed it first
        if previous not in (None, self.owner):
            log.warning("rule %s: the lease of %s expired; %s runs its window again from the "
                        "watermark", detection.info.id, previous, self.owner)
        if state.get("last_owner") not in (None, self.owner) and now - state.get("last_finished", 0) < VISIBILITY:
            # another process ran this rule moments ago: make its alerts searchable here, so that
            # a correlation episode it recorded is extended rather than recorded a second time
            try:
                self.store.refresh()
            except StoreError as error:
                log.warning("rule %s: refresh before the run failed: %s", detection.info.id, error)
        # renewed every lease / 3 while the run goes on: a slow run keeps its window
        with claim.keep_alive(f"rule {detection.info.id}"):
            result = self.engine.run(detection, Window(start, end, "event.ingested"))
        health = self._health(claim.body, result, now, start, end)
        try:
            claim.release(health)  # the lease fields go: the state document is free again
        except LeaseLost:
            log.warning("rule %s: lease lost during the run (another scheduler took the rule over); "
                        "the window will be evaluated again", detection.info.id)
            if self.on_run is not None:
                self.on_run(detection, result, dict(health, recorded=False))
            return result
        if self.on_run is not None:
            self.on_run(detection, result, dict(health, recorded=True))
        if result.created and self.on_alerts is not None:
            self.on_alerts(detection, result)
        return result

    def run_all_once(self, detections: Sequence[Detection], max_workers: int = 2) -> list[RunResult]:
        """Claim and run every rule's next window once, at most ``max_workers`` at a time;
        rules another scheduler holds are skipped. The results of the runs made."""
        def one(detection: Detection) -> RunResult | None:
            try:
                return self.run_once(detection)
            except Exception:  # the store is unreachable, for example: the others still run
                log.exception("rule %s: run failed", detection.info.id)
                return None

        with _Pool(max_workers=max(1, max_workers), thread_name_prefix="soc-detect") as pool:
            return [r for r in pool.map(one, detections) if r is not None]

    def _health(self, state: dict[str, Any], result: RunResult, now: float, start: float, end: float) -> dict[str, Any]:
        health = dict(state)
        health.pop("claimed_window", None)
        health.update(
            last_run=now, last_duration=round(result.duration, 4), last_hits=len(result.created),
            last_matches=result.matches, last_window=[start, end], truncated=result.truncated,
            total_alerts=state.get("total_alerts", 0) + len(result.created),
            runs=state.get("runs", 0) + 1, title=self.engine.ruleset.detections[result.rule_id].info.title,
        )
        # alerts held back by exceptions in this run (an alert in the overlap with the previous
        # window is counted again: these are per-run figures, not a running total)
        health.update(last_suppressed=result.suppressed,
                      last_suppressed_by=[{"exception": k, "count": v} for k, v in sorted(result.suppressed_by.items())])
        timed_out = bool(result.error) and _timed_out(result.error or "")
        health.update(last_owner=self.owner, last_finished=self.clock(), last_timed_out=timed_out,
                      timeouts=state.get("timeouts", 0) + int(timed_out))
        if result.error:
            health.update(last_error=result.error, consecutive_errors=state.get("consecutive_errors", 0) + 1)
            # the watermark stays: the failed window is retried on the next run
        else:
            health.update(watermark=end, covered_until=end, last_error=None, consecutive_errors=0)
            health.setdefault("covered_from", start)
        return health


class DetectionScheduler:
    """APScheduler jobs, one per runnable rule, on a bounded pool."""

    def __init__(self, runner: RuleRunner, detections: list[Detection], *, max_workers: int = 2):
        self.runner = runner
        self.detections = detections
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=max_workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone="UTC",
        )
        self._lock = threading.Lock()
        self.last_results: dict[str, RunResult] = {}

    def _job(self, detection: Detection) -> None:
        try:
            result = self.runner.run_once(detection)
        except Exception:  # the store is unreachable, for example: log, keep the schedule
            log.exception("rule %s: run failed", detection.info.id)
            return
        if result is not None:
            with self._lock:
                self.last_results[detection.info.id] = result

    def start(self) -> None:
        interval = self.runner.timing.interval
        for detection in self.detections:
            self.scheduler.add_job(self._job, "interval", args=[detection], seconds=interval,
                                   id=detection.info.id, name=detection.info.title,
                                   next_run_time=_now_dt())
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.shutdown(wait=True)


def _timed_out(error: str) -> bool:
    """A run error that is a query timeout or a partial answer (the search store raises
    ``QueryTimeout`` or ``PartialResult``; other stores may just say "timed out")."""
    return error.startswith(("QueryTimeout", "PartialResult")) or "timed out" in error


def _now_dt() -> datetime:
    return datetime.now(UTC)
