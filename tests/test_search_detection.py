"""Detection on the search store, against the real OpenSearch: same alerts as SQLite, several
scheduler processes, a scheduler killed mid-run, late data, timeouts and bounded concurrency.

The data is real (``../shared/data``): the Ubuntu auth.log of the Elastic examples (7,121 lines)
and loghub's OpenSSH_2k (2,000 lines, brute force from 23 addresses), read by the same ingest
pipeline as the service, so every event has the same deterministic id in both stores. The
rules are the project's own SSH rules (``detections/linux/ssh``: auth failures, brute force,
slow brute force, password spraying, login after brute force, root login, reverse DNS).

The scheduler processes are real ``python -m soc.cli detect`` subprocesses (the ``soc detect``
command) with their own store clients and owners; each prints one JSON line per run, which is
how these tests see which process ran which window.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from soc.catalog import default_catalog
from soc.detect.compiler import RuleSet, compile_rules
from soc.detect.engine import ALERTS, DetectionEngine, RunResult
from soc.detect.rules import load_rules
from soc.detect.scheduler import RULE_STATE, DetectionScheduler, RuleRunner, Timing
from soc.ingest.normalize import SourceContext
from soc.ingest.reader import FileIngestor
from soc.model import Event
from soc.store import search_mappings as maps
from soc.store.base import Store, Window
from soc.store.search import OpenSearchStore
from soc.store.sqlite import SQLiteStore
from tests.conftest import ROOT, shared
from tests.search_helpers import drop, open_search_store, store_url

pytestmark = pytest.mark.search

SSH_RULES = ROOT / "detections" / "linux" / "ssh"
AUTH_LOG = ("elastic-examples", "suspicious_login_activity", "data", "auth.log")
OPENSSH = ("loghub", "OpenSSH", "OpenSSH_2k.log")
BRUTE_FORCE = "0b8e3f4c-2a6d-4e71-8c1f-5d9b7a3e6c21"  # SSH Brute Force From One Source
OVERLAP = 30.0


# -- data, rules and helpers --------------------------------------------------------------------
@cache
def _file_events(parts: tuple[str, ...]) -> tuple[Event, ...]:
    context = SourceContext(source="test", agency_id="agency-a", agency_name="agency-a",
                            zone=ZoneInfo("Asia/Ho_Chi_Minh"))
    ingestor = FileIngestor(context, fmt="auto")
    return tuple(e for batch, _ in ingestor.read(shared(*parts)) for e in batch)


def real_events() -> list[Event]:
    """auth.log, then OpenSSH_2k: 9,121 events with ids from file and byte offset."""
    return [dict(e) for e in (*_file_events(AUTH_LOG), *_file_events(OPENSSH))]


@cache
def ruleset(dialect: str) -> RuleSet:
    return compile_rules(load_rules([SSH_RULES]), dialect=dialect)


def write(store: Store, events: list[Event], batch: int = 2000) -> None:
    for start in range(0, len(events), batch):
        result = store.write_events([dict(e) for e in events[start:start + batch]])
        assert not result.rejected and not result.retryable, result
    store.refresh()


def alerts_of(store: Store) -> dict[str, tuple[str, int, tuple[str, ...]]]:
    """alert id -> (rule id, event_count, event ids)."""
    store.refresh()
    return {d.id: (d.body["rule"]["id"], d.body["event_count"], tuple(sorted(d.body["event_ids"])))
            for d in store.iter_all(ALERTS)}


def summary(alerts: dict[str, tuple[str, int, tuple[str, ...]]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for rule, _, _ in alerts.values():
        out[rule] = out.get(rule, 0) + 1
    return out


def run_scheduled(store: Store, owner: str = "test", **timing: float) -> list[RunResult]:
    rules = ruleset(store.dialect)
    runner = RuleRunner(DetectionEngine(store, rules), Timing(settle=0, overlap=OVERLAP, **timing), owner=owner)
    return runner.run_all_once(rules.runnable(), max_workers=2)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, int, tuple[str, ...]]]:
    """The alerts of one scheduler over all the data on SQLite (the embedded reference)."""
    store = SQLiteStore(tmp_path_factory.mktemp("baseline") / "soc.db",
                        numeric_fields=default_catalog().numeric_fields)
    write(store, real_events())
    results = run_scheduled(store)
    assert all(r.error is None for r in results), [r.error for r in results]
    alerts = alerts_of(store)
    store.close()
    counts = summary(alerts)
    assert counts.get(BRUTE_FORCE, 0) >= 20, counts  # the brute force in both files is found
    return alerts


@pytest.fixture
def search_store(opensearch_url: str, unique_name: str) -> Iterator[OpenSearchStore]:
    store = open_search_store(opensearch_url, unique_name)
    yield store
    drop(store)


# -- 1. the same alerts as SQLite ---------------------------------------------------------------
@pytest.mark.timeout(600)
def test_ssh_rules_give_the_same_alert_ids_on_opensearch_as_on_sqlite(
        search_store: OpenSearchStore, baseline: dict[str, Any]) -> None:
    write(search_store, real_events())
    started = time.perf_counter()
    results = run_scheduled(search_store)
    seconds = time.perf_counter() - started
    assert len(results) == len(ruleset("dsl").runnable())
    assert all(r.error is None and not r.truncated for r in results), [r.error for r in results]
    got = alerts_of(search_store)
    assert summary(got) == summary(baseline)
    assert got == baseline  # same ids, same event counts, same events
    # the rule health on the search store records the covered ingest window
    for result in results:
        state = search_store.get(RULE_STATE, result.rule_id)
        assert state is not None and state.body["watermark"] == result.window[1]
        assert state.body["last_timed_out"] is False and state.body["last_error"] is None
    print(f"\nscheduled run of {len(results)} SSH rules over 9,121 events on OpenSearch: {seconds:.2f} s")


@pytest.mark.timeout(600)
def test_run_all_over_event_time_batches_rule_queries_and_agrees(
        search_store: OpenSearchStore, baseline: dict[str, Any]) -> None:
    """``run_all`` (hunts) prefetches the event rules with one find_matches_many per dataset
    group: the same alerts as the scheduled runs."""
    write(search_store, real_events())
    rules = ruleset("dsl")
    engine = DetectionEngine(search_store, rules)
    calls: list[int] = []
    many = search_store.find_matches_many

    def counting(wheres: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(wheres))
        return many(wheres, *args, **kwargs)

    search_store.find_matches_many = counting  # type: ignore[method-assign]
    results = engine.run_all(rules.runnable(), Window(None, None, "@timestamp"))
    assert all(r.error is None for r in results), [r.error for r in results]
    assert calls and sum(calls) >= 4  # the four event rules behind the correlations, batched
    assert alerts_of(search_store) == baseline


# -- 2. several scheduler processes ---------------------------------------------------------------
def _scheduler(url: str, prefix: str, owner: str, lease: float, workers: int = 2) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "soc.cli", "detect", "--store-url", store_url(url), "--index-prefix", prefix,
           "--replicas", "0", "--rules", str(SSH_RULES), "--owner", owner, "--interval", "1",
           "--settle", "0", "--overlap", str(OVERLAP), "--lease", str(lease), "--max-concurrent", str(workers),
           "--query-timeout", "30", "--no-intel"]  # the rules' windows only: no indicator matching
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class RunLog:
    """Collects what a scheduler process prints (JSON run lines on stdout, log on stderr)."""

    def __init__(self, proc: subprocess.Popen[str]):
        self.proc = proc
        self.runs: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._threads = [threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.runs.append(json.loads(line))

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.errors.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.errors[-40:])

    def finish(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=60)
        for thread in self._threads:
            thread.join(timeout=10)


def _wait_for_watermarks(store: Store, rule_ids: list[str], past: float, timeout: float,
                         logs: list[RunLog]) -> dict[str, dict[str, Any]]:
    deadline = time.time() + timeout
    while True:
        states = {r: (d.body if (d := store.get(RULE_STATE, r)) else {}) for r in rule_ids}
        if all((s.get("watermark") or 0) > past and not s.get("lease_owner") for s in states.values()):
            return states
        if time.time() > deadline:
            tails = "\n".join(log.stderr for log in logs)
            pytest.fail(f"watermarks did not pass {past}: {states}\n{tails}")
        time.sleep(0.3)


def _check_windows(runs: list[dict[str, Any]], rule_ids: list[str], past: float) -> None:
    """Recorded runs of each rule form one chain: every window starts at the previous one's
    end minus the overlap (no gap), no window start is run twice, the last passes ``past``."""
    for rule in rule_ids:
        chain = sorted((r for r in runs if r["rule"] == rule and r["recorded"] and not r["error"]),
                       key=lambda r: r["window"][0])
        assert chain, f"rule {rule} never ran"
        starts = [r["window"][0] for r in chain]
        assert len(starts) == len(set(starts)), f"a window of {rule} ran twice: {starts}"
        for before, after in zip(chain, chain[1:], strict=False):
            assert after["window"][0] == pytest.approx(before["window"][1] - OVERLAP, abs=1e-6), (rule, chain)
        assert chain[-1]["watermark"] > past


@pytest.mark.timeout(900)
def test_two_scheduler_processes_give_the_alerts_of_one_without_duplicates(
        opensearch_url: str, unique_name: str, baseline: dict[str, Any]) -> None:
    store = open_search_store(opensearch_url, unique_name)
    rule_ids = [d.info.id for d in ruleset("dsl").runnable()]
    logs: list[RunLog] = []
    try:
        # the first file before the schedulers start, the second in four parts while they run
        # (in event-time order, so bursts straddle windows: an episode one process recorded is
        # extended by the other, under the same id)
        write(store, [dict(e) for e in _file_events(AUTH_LOG)])
        logs = [RunLog(_scheduler(opensearch_url, unique_name, owner, lease=60)) for owner in ("sched-a", "sched-b")]
        time.sleep(4)
        second = [dict(e) for e in _file_events(OPENSSH)]
        for part in range(4):
            write(store, second[part * 500:(part + 1) * 500])
            time.sleep(1.5)
        last_ingest = time.time()
        _wait_for_watermarks(store, rule_ids, last_ingest + 1, 300, logs)
        for log in logs:
            log.finish()
            assert log.proc.returncode == 0, log.stderr  # SIGTERM: runs finished, leases released
        runs = [r for log in logs for r in log.runs]
        owners = {r["owner"] for r in runs}
        assert owners == {"sched-a", "sched-b"}, f"both processes should have run rules: {owners}"
        _check_windows(runs, rule_ids, last_ingest + 1)
        got = alerts_of(store)
        assert got == baseline
        # every alert was created exactly once, by one of the two processes
        created = sum(r["created"] for r in runs)
        assert created == len(baseline)
        print(f"\n{len(runs)} runs: " + ", ".join(f"{o} {sum(r['owner'] == o for r in runs)}" for o in sorted(owners))
              + f"; {sum(r['updated'] for r in runs)} episode updates")
    finally:
        for log in logs:
            if log.proc.poll() is None:
                log.finish(signal.SIGKILL)
        drop(store)


@pytest.mark.timeout(900)
def test_a_scheduler_killed_mid_run_loses_no_window(
        opensearch_url: str, unique_name: str, baseline: dict[str, Any]) -> None:
    store = open_search_store(opensearch_url, unique_name)
    rule_ids = [d.info.id for d in ruleset("dsl").runnable()]
    lease = 6.0
    logs: list[RunLog] = []
    orphan: tuple[str, dict[str, Any]] | None = None
    try:
        write(store, [dict(e) for e in _file_events(AUTH_LOG)])
        for attempt in range(6):  # kill while the process holds a claim (usually the first try)
            victim = RunLog(_scheduler(opensearch_url, unique_name, f"victim-{attempt}", lease=lease, workers=1))
            logs.append(victim)
            deadline = time.time() + 120
            while time.time() < deadline and victim.proc.poll() is None:
                held = [r for r in rule_ids if (d := store.get(RULE_STATE, r))
                        and d.body.get("lease_owner") == f"victim-{attempt}"]
                if held:
                    victim.proc.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.005)
            victim.finish(signal.SIGKILL)
            time.sleep(1.0)  # a write the victim sent just before it died may still land
            for rule in rule_ids:
                doc = store.get(RULE_STATE, rule)
                if doc and doc.body.get("lease_owner") == f"victim-{attempt}":
                    orphan = (rule, doc.body)
            if orphan:
                break
        assert orphan is not None, "could not kill a scheduler while it held a lease"
        rule, state = orphan
        assert state["lease_until"] > time.time() - 1  # the claim was live when the owner died
        # more data arrives; the survivor starts and must take over the dead owner's window
        write(store, [dict(e) for e in _file_events(OPENSSH)])
        last_ingest = time.time()
        left = {r: (d.body if (d := store.get(RULE_STATE, r)) else {}) for r in rule_ids}
        survivor = RunLog(_scheduler(opensearch_url, unique_name, "survivor", lease=lease))
        logs.append(survivor)
        states = _wait_for_watermarks(store, rule_ids, last_ingest + 1, 300, logs)
        survivor.finish()
        takeover = states[rule].get("last_takeover") or {}
        assert states[rule]["takeovers"] >= 1 and takeover["from"] == state["lease_owner"]
        assert takeover["window"] == state["claimed_window"]
        # the survivor ran the orphaned window from the same start (the old watermark)
        orphan_start = state["claimed_window"][0]
        assert any(r["rule"] == rule and r["window"][0] == pytest.approx(orphan_start) and r["owner"] == "survivor"
                   for r in survivor.runs), (orphan_start, survivor.runs)
        # the survivor's windows continue exactly where the dead processes' recorded state ends
        _check_windows(survivor.runs, rule_ids, last_ingest + 1)
        for rule_id, before in left.items():
            first = min(r["window"][0] for r in survivor.runs if r["rule"] == rule_id and r["recorded"])
            if "claimed_window" in before:  # a claim the dead owner left: its start is the old watermark
                assert first == pytest.approx(before["claimed_window"][0])
            if before.get("watermark") is not None:
                assert first == pytest.approx(before["watermark"] - OVERLAP)
        assert alerts_of(store) == baseline
    finally:
        for log in logs:
            if log.proc.poll() is None:
                log.finish(signal.SIGKILL)
        drop(store)


# -- 3. late data ---------------------------------------------------------------------------------
@pytest.mark.timeout(600)
def test_late_events_are_found_by_the_next_run(search_store: OpenSearchStore, baseline: dict[str, Any]) -> None:
    """The later half (event time) of each file arrives first and is evaluated; then the earlier
    half arrives: ingested later, stamped earlier. The next run finds it."""
    events = real_events()
    events.sort(key=lambda e: e["@timestamp"])
    recent, late = events[len(events) // 2:], events[: len(events) // 2]
    write(search_store, recent)
    first = run_scheduled(search_store)
    seen = {e for _, _, ids in alerts_of(search_store).values() for e in ids}
    assert all(r.error is None for r in first)
    write(search_store, late)
    second = run_scheduled(search_store)
    assert all(r.error is None for r in second)
    assert sum(len(r.created) + r.updated for r in second) > 0
    got = alerts_of(search_store)
    late_ids = {e["_id"] for e in late}
    found_late = {e for _, _, ids in got.values() for e in ids} & late_ids
    assert found_late and not found_late & seen
    # every event the baseline alerts on is in an alert of the same rule now
    def covered(alerts: dict[str, Any]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for rule, _, ids in alerts.values():
            out.setdefault(rule, set()).update(ids)
        return out

    assert covered(got) == covered(baseline)
    for result in second:
        state = search_store.get(RULE_STATE, result.rule_id)
        assert state is not None and state.body["watermark"] == result.window[1]


# -- 4. timeouts and bounded concurrency ------------------------------------------------------------
@pytest.mark.timeout(600)
def test_a_query_timeout_is_reported_in_rule_health_and_the_window_retried(
        opensearch_url: str, unique_name: str, baseline: dict[str, Any]) -> None:
    store = open_search_store(opensearch_url, unique_name, query_timeout=0.2)
    try:
        rules = ruleset("dsl")
        sane = RuleRunner(DetectionEngine(store, rules), Timing(settle=0, overlap=OVERLAP), owner="ok")
        assert sane.run_once(rules.detections[BRUTE_FORCE]) is not None  # nothing yet: a watermark
        watermark = store.get(RULE_STATE, BRUTE_FORCE).body["watermark"]  # type: ignore[union-attr]
        write(store, [dict(e) for e in _file_events(OPENSSH)])
        slow = compile_rules(load_rules([SSH_RULES]), dialect="dsl")
        failure = next(d for d in slow.detections.values() if d.info.title == "SSH Authentication Failure")
        # an expensive predicate (a Painless loop per event) that cannot finish in 0.2 s
        failure.where = {"script": {"script": {
            "source": "long x = 0; for (int i = 0; i < 300000; i++) { x += i; } return x > 0;"}}}
        brute = slow.detections[BRUTE_FORCE]
        # the slow run gets a far shorter budget (same indices), so the loop overruns it even on an
        # idle machine where a JIT-compiled loop may finish within 0.2 s
        hurried = open_search_store(opensearch_url, unique_name, query_timeout=0.02)
        runner = RuleRunner(DetectionEngine(hurried, slow), Timing(settle=0, overlap=OVERLAP), owner="slow")
        result = runner.run_once(brute)
        hurried.close()
        assert result is not None and result.error and result.error.startswith("QueryTimeout"), result
        assert result.window[0] == watermark - OVERLAP
        state = store.get(RULE_STATE, BRUTE_FORCE)
        assert state is not None
        assert state.body["last_timed_out"] is True and state.body["timeouts"] == 1
        assert "timed out" in state.body["last_error"]
        assert state.body["watermark"] == watermark  # nothing more counts as covered
        assert alerts_of(store) == {}
        # the next run (a sane query) covers the same window again and finds the brute force
        retry = sane.run_once(rules.detections[BRUTE_FORCE])
        assert retry is not None and retry.error is None
        assert retry.window[0] == result.window[0]
        state = store.get(RULE_STATE, BRUTE_FORCE)
        assert state is not None and state.body["last_timed_out"] is False and state.body["timeouts"] == 1
        expected = {k: v for k, v in baseline.items()
                    if v[0] == BRUTE_FORCE and set(v[2]) <= {e["_id"] for e in _file_events(OPENSSH)}}
        assert {k: v for k, v in alerts_of(store).items()} == expected
    finally:
        drop(store)


@pytest.mark.timeout(300)
def test_detection_runs_at_most_max_concurrent_rules_at_once(search_store: OpenSearchStore) -> None:
    write(search_store, [dict(e) for e in _file_events(OPENSSH)])
    rules = ruleset("dsl")
    lock = threading.Lock()
    active, peak, done = [0], [0], []

    class Counting(DetectionEngine):
        def run(self, detection: Any, window: Window) -> RunResult:
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            try:
                time.sleep(0.3)
                return super().run(detection, window)
            finally:
                with lock:
                    active[0] -= 1
                    done.append(detection.info.id)

    runner = RuleRunner(Counting(search_store, rules), Timing(interval=3600, settle=0), owner="bounded")
    scheduler = DetectionScheduler(runner, rules.runnable(), max_workers=2)
    scheduler.start()
    try:
        deadline = time.time() + 120
        while len(done) < len(rules.runnable()) and time.time() < deadline:
            time.sleep(0.1)
    finally:
        scheduler.stop()
    assert len(done) == len(rules.runnable())
    assert peak[0] == 2
    assert all(r.error is None for r in scheduler.last_results.values())


# -- 5. retention policy and the command ------------------------------------------------------------
def test_retention_policy_is_installed_or_its_absence_is_said(opensearch_url: str, unique_name: str) -> None:
    store = open_search_store(opensearch_url, unique_name, retention_days=45)
    try:
        name = f"{unique_name}-events-retention"
        template = store.transport.request("GET", f"/_index_template/{unique_name}-events")
        meta = template["index_templates"][0]["index_template"]["_meta"]
        assert meta["retention"] == store.retention
        try:
            policy = store.transport.request("GET", f"/_plugins/_ism/policies/{name}")
        except Exception as error:  # the devstack node runs without the ISM plugin
            assert "no handler found" in str(getattr(error, "body", error))
            assert store.retention.startswith("none: the OpenSearch index-management (ISM) plugin is not installed")
        else:
            states = {s["name"]: s for s in policy["policy"]["states"]}
            assert states["hot"]["transitions"][0]["conditions"] == {"min_index_age": "45d"}
            assert policy["policy"]["ism_template"][0]["index_patterns"] == [f"{unique_name}-events-*"]
            assert store.retention.startswith(f"ISM policy {name}")
        # what would be installed: delete whole day indices retention_days after creation
        body = maps.ism_policy(unique_name, 45)["policy"]
        assert body["states"][1]["actions"] == [{"delete": {}}]
    finally:
        drop(store)


def test_soc_detect_help_explains_leases_and_windows() -> None:
    from soc.cli import app

    result = CliRunner().invoke(app, ["detect", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for phrase in ("watermark", "event.ingested", "overlap", "lease", "compare-and-set", "--once",
                   "--owner", "--store-url", "--max-concurrent", "--query-timeout"):
        assert phrase in text, phrase


def test_find_matches_many_splits_a_batch_past_the_clause_limit(search_store: OpenSearchStore) -> None:
    """64 predicates of 30 alternatives each exceed Lucene's 1,024 clauses in one query: the
    batch is halved until it fits, and each predicate still gets its own matches."""
    events = [{"_id": f"e{i}", "@timestamp": f"2025-01-01T00:00:{i:02d}.000Z", "event.dataset": "linux.sshd",
               "user.name": f"u{i}x7"} for i in range(64)]
    write(search_store, events)
    wheres = [{"query_string": {"query": " OR ".join(f"user.name.lc:U{i}X{j}" for j in range(30))}} for i in range(64)]
    found = search_store.find_matches_many(wheres, ["linux.sshd"], Window(None, None, "@timestamp"), [], 10)
    assert [[m.id for m in f] for f in found] == [[f"e{i}"] for i in range(64)]
