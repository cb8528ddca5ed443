"""Scheduler leases and windows with a controlled clock (SQLite store, no server needed).

The same RuleRunner runs against OpenSearch in ``tests/test_search_detection.py`` with real
processes and real time; here the clock is injected so that lease expiry, take-overs and
retried windows are exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soc.catalog import default_catalog
from soc.detect.compiler import Detection
from soc.detect.engine import DetectionEngine, RunResult
from soc.detect.scheduler import RULE_STATE, RuleRunner, Timing
from soc.store.base import Window
from soc.store.sqlite import SQLiteStore
from tests.test_search_detection import BRUTE_FORCE, ruleset


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class Flaky(DetectionEngine):
    """Fails while ``failing`` is set, like a store that times out."""

    failing = False

    def run(self, detection: Detection, window: Window) -> RunResult:
        if self.failing:
            return RunResult(detection.info.id, (window.start, window.end),
                             error="QueryTimeout: rule query timed out after 0.2 s")
        return super().run(detection, window)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "soc.db", numeric_fields=default_catalog().numeric_fields)
    yield s
    s.close()


def _runner(store: SQLiteStore, owner: str, clock: Clock, engine: DetectionEngine | None = None) -> RuleRunner:
    timing = Timing(interval=60, overlap=120, settle=5, initial_lookback=3600, lease=600)
    return RuleRunner(engine or DetectionEngine(store, ruleset("sqlite")), timing, owner=owner, clock=clock)


def _state(store: SQLiteStore) -> dict[str, Any]:
    doc = store.get(RULE_STATE, BRUTE_FORCE)
    assert doc is not None
    return doc.body


def test_a_failed_first_window_is_retried_from_the_same_start(store: SQLiteStore) -> None:
    clock = Clock()
    engine = Flaky(store, ruleset("sqlite"))
    runner = _runner(store, "a", clock, engine)
    detection = ruleset("sqlite").detections[BRUTE_FORCE]
    engine.failing = True
    first = runner.run_once(detection)
    assert first is not None and first.error
    assert first.window == (clock.now - 3600 - 120, clock.now - 5)
    state = _state(store)
    assert state["last_timed_out"] is True and state["timeouts"] == 1 and "watermark" not in state
    clock.now += 300
    engine.failing = False
    second = runner.run_once(detection)
    assert second is not None and second.error is None
    assert second.window == (first.window[0], clock.now - 5)  # same start, later end
    assert _state(store)["watermark"] == clock.now - 5
    assert _state(store)["last_timed_out"] is False


def test_leases_skip_take_over_after_expiry_and_chain_windows(store: SQLiteStore) -> None:
    clock = Clock()
    detection = ruleset("sqlite").detections[BRUTE_FORCE]
    a, b = _runner(store, "a", clock), _runner(store, "b", clock)
    assert a.run_once(detection) is not None
    first_end = _state(store)["watermark"]
    # "a" claims the next window and dies before recording it
    clock.now += 60
    doc = store.get(RULE_STATE, BRUTE_FORCE)
    assert doc is not None
    dead_window = [first_end - 120, clock.now - 5]
    store.put(RULE_STATE, BRUTE_FORCE, dict(doc.body, lease_owner="a", lease_until=clock.now + 600,
                                             claimed_window=dead_window), expected_version=doc.version)
    clock.now += 599
    assert b.run_once(detection) is None  # the lease still holds
    clock.now += 2
    taken = b.run_once(detection)
    assert taken is not None and taken.error is None
    assert taken.window[0] == dead_window[0]  # the dead owner's window, from the old watermark
    state = _state(store)
    assert state["takeovers"] == 1 and state["last_takeover"]["from"] == "a"
    assert state["last_takeover"]["window"] == dead_window
    assert state["last_owner"] == "b" and "lease_owner" not in state
    assert state["watermark"] == clock.now - 5
    # nothing new yet: no run; a later one starts at the watermark minus the overlap
    assert a.run_once(detection) is None
    clock.now += 60
    later = a.run_once(detection)
    assert later is not None and later.window[0] == state["watermark"] - 120


def test_a_stale_claim_loses_the_compare_and_set(store: SQLiteStore) -> None:
    clock = Clock()
    detection = ruleset("sqlite").detections[BRUTE_FORCE]
    a, b = _runner(store, "a", clock), _runner(store, "b", clock)
    assert a.run_once(detection) is not None
    clock.now += 60
    real_get = store.get
    seen: dict[str, Any] = {}

    def racing_get(collection: str, id: str) -> Any:
        doc = real_get(collection, id)
        if collection == RULE_STATE and "raced" not in seen:
            seen["raced"] = True
            assert b.run_once(detection) is not None  # "b" claims and runs in between
        return doc

    store.get = racing_get  # type: ignore[method-assign]
    assert a.run_once(detection) is None  # its read is stale: the claim conflicts, it skips
    store.get = real_get  # type: ignore[method-assign]
    assert _state(store)["last_owner"] == "b" and _state(store)["runs"] == 2


def test_run_all_once_skips_rules_another_scheduler_holds(store: SQLiteStore) -> None:
    clock = Clock()
    rules = ruleset("sqlite")
    store.put(RULE_STATE, BRUTE_FORCE, {"rule_id": BRUTE_FORCE, "lease_owner": "other",
                                        "lease_until": clock.now + 600})
    results = _runner(store, "a", clock).run_all_once(rules.runnable(), max_workers=2)
    assert {r.rule_id for r in results} == {d.info.id for d in rules.runnable()} - {BRUTE_FORCE}


def test_soc_detect_once_on_sqlite(tmp_path: Path) -> None:
    """The command end to end on the embedded store: one JSON line per run, alerts recorded,
    and a second --once finds nothing new to run."""
    import json

    from typer.testing import CliRunner

    from soc.cli import app
    from tests.test_search_detection import OPENSSH, SSH_RULES, _file_events, alerts_of, write

    path = tmp_path / "soc.db"
    store = SQLiteStore(path, numeric_fields=default_catalog().numeric_fields)
    write(store, [dict(e) for e in _file_events(OPENSSH)])
    args = ["detect", "--store-url", f"sqlite:///{path}", "--rules", str(SSH_RULES), "--once",
            "--settle", "0", "--owner", "cron"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    runs = [json.loads(line) for line in first.stdout.splitlines() if line.startswith("{")]
    assert {r["owner"] for r in runs} == {"cron"} and all(r["recorded"] and not r["error"] for r in runs)
    assert len(runs) == len(ruleset("sqlite").runnable())
    created = sum(r["created"] for r in runs)
    assert created == len(alerts_of(store)) > 0
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert sum(json.loads(line)["created"] for line in second.stdout.splitlines() if line.startswith("{")) == 0
    store.close()


def test_a_slow_run_keeps_its_claim_through_the_heartbeat(store: SQLiteStore) -> None:
    """A run three times longer than the lease is not taken over: its lease is renewed while
    it goes on; the other scheduler's attempts during the run all skip."""
    import threading
    import time

    class Slow(DetectionEngine):
        def run(self, detection: Detection, window: Window) -> RunResult:
            time.sleep(1.5)
            return super().run(detection, window)

    timing = Timing(interval=60, overlap=120, settle=0, initial_lookback=3600, lease=0.5)
    detection = ruleset("sqlite").detections[BRUTE_FORCE]
    slow = RuleRunner(Slow(store, ruleset("sqlite")), timing, owner="slow")
    other = RuleRunner(DetectionEngine(store, ruleset("sqlite")), timing, owner="other")
    outcome: list[RunResult | None] = []
    thread = threading.Thread(target=lambda: outcome.append(slow.run_once(detection)))
    thread.start()
    time.sleep(0.2)
    attempts = []
    while thread.is_alive():
        attempts.append(other.run_once(detection))
        time.sleep(0.1)
    thread.join()
    assert len(attempts) >= 8 and all(a is None for a in attempts)
    assert outcome and outcome[0] is not None and outcome[0].error is None
    state = _state(store)
    assert state["last_owner"] == "slow" and "lease_owner" not in state and "takeovers" not in state
