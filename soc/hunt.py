"""One-shot hunting (``soc hunt``): read files, evaluate every rule over their whole time range.

The files go through the same ingest stages as the service into a scratch SQLite store (no
durability, deleted afterwards); the same compiled rules and the same detection engine run over
it with an event-time window covering everything. So a hunt and the service never disagree
about what a rule matches, and alert ids are the same ones the service would record.

Speed (``benchmarks/hunt.py``): the scratch store is built for one bulk load and one scan (see
:class:`soc.store.sqlite.SQLiteStore` with ``durable=False``), the cyclic garbage collector is
paused during the hunt (events, matches and points are freed by reference counting; with
hundreds of thousands of them alive, each full collection would walk them all, for nothing), and the engine runs with ``fresh_store=True``:
the store held no alerts before, so correlation episodes are merged in memory instead of being
looked up in the store, and alerts are written in one go at the end. A test checks that this
gives exactly the alerts of the service's recording path. Once loaded, the fields the applicable
rules read are made real columns of the scratch store in one pass
(:meth:`SQLiteStore.materialise_fields`): otherwise each rule's predicate parses the event's JSON
document again for every field it reads (a test checks the alerts are the same without it).
"""

from __future__ import annotations

import gc
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from soc.catalog import default_catalog
from soc.detect.compiler import Detection, RuleSet
from soc.detect.engine import DetectionEngine, Filter, RunResult
from soc.errors import SocError
from soc.ingest.normalize import SourceContext
from soc.ingest.reader import FileIngestor
from soc.store.base import Window
from soc.store.sqlite import SQLiteStore

#: a hunt records every match: a budget this high only guards against runaway rules
HUNT_MAX_ALERTS = 200_000


class HuntError(SocError):
    """The hunt cannot start; the message says what to fix."""


@dataclass
class HuntResult:
    alerts: list[dict[str, Any]]
    files: int
    events: int
    counters: Counter[str]
    rules_total: int
    rules_run: int
    rule_errors: list[str] = field(default_factory=list)
    #: wall-clock seconds per phase: rules (compile), read (read + parse + normalize), write (store),
    #: ingest (read + write), evaluate (rule evaluation), record (alert recording), detect (both)
    seconds: dict[str, float] = field(default_factory=dict)
    #: CPU seconds of this process per phase (same keys)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    suppressed: int = 0  # alerts held back by exceptions
    refused: list[str] = field(default_factory=list)  # files refused for their content, and why
    rule_cache: str = ""  # how the rules were built: "N rules from cache, M compiled" (empty: no cache)

    def summary(self) -> str:
        c = self.counters
        return (f"{self.events} events from {self.files} files"
                + (f" ({len(self.refused)} refused)" if self.refused else "") + f" (parsed {c['parsed']}, partial {c['partial']}, "
                f"failed {c['failed']}, dead-lettered {c['dead_lettered']}); {self.rules_run} of "
                f"{self.rules_total} rules applied to these logs; {len(self.alerts)} alerts"
                + (f" ({self.suppressed} more held back by exceptions)" if self.suppressed else "")
                + f"; ingest {self.seconds.get('ingest', 0):.1f}s, rules {self.seconds.get('detect', 0):.1f}s"
                + (f"; {self.rule_cache}" if self.rule_cache else ""))


def expand(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            files.append(path)
        else:
            raise HuntError(f"{path} does not exist")
    if not files:
        raise HuntError("no files to read")
    return files


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                    TextColumn("{task.fields[events]} events"), disable=not enabled, transient=True)


class Phases:
    """Wall-clock and CPU seconds spent per named phase (accumulated)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._mark = (time.perf_counter(), time.process_time())

    def lap(self, name: str | None) -> None:
        """Charge the time since the previous lap to ``name`` (None: to nothing)."""
        now = (time.perf_counter(), time.process_time())
        if name is not None:
            self.wall[name] = self.wall.get(name, 0.0) + now[0] - self._mark[0]
            self.cpu[name] = self.cpu.get(name, 0.0) + now[1] - self._mark[1]
        self._mark = now


def ingest_files(store: SQLiteStore, files: list[Path], *, fmt: str, timezone: str, agency: str,
                 progress: bool, dead_letter: Path | None = None, phases: Phases | None = None,
                 refused: list[str] | None = None) -> Counter[str]:
    """Read ``files`` into ``store``; counters by outcome. Files refused for their content (a
    ``.evtx`` that is not one) are counted as ``refused`` and, with ``refused``, listed there."""
    context = SourceContext(source="hunt", agency_id=agency, agency_name=agency, zone=ZoneInfo(timezone))
    ingestor = FileIngestor(context, fmt=fmt, dead_letter=dead_letter)
    total = sum(f.stat().st_size for f in files)
    counters: Counter[str] = Counter()
    phases = phases or Phases()
    collecting = gc.isenabled()
    gc.disable()
    try:
        with _progress(progress) as bar:
            task = bar.add_task("reading", total=total, events=0)
            done_bytes = 0
            for path in files:
                bar.update(task, description=f"reading {path.name}")
                phases.lap(None)
                for events, position in ingestor.read(path):
                    phases.lap("read")
                    store.write_events(events)
                    phases.lap("write")
                    counters["events"] += len(events)
                    bar.update(task, completed=done_bytes + position, events=counters["events"])
                    phases.lap(None)
                done_bytes += path.stat().st_size
            counters.update(ingestor.counters())
            counters["refused"] = len(ingestor.refused)
            if refused is not None:
                refused.extend(ingestor.refused)
    finally:
        if collecting:
            gc.enable()
    return counters


def run_hunt(paths: Iterable[Path], ruleset: RuleSet, *, fmt: str = "auto", timezone: str,
             agency: str = "unknown", progress: bool = False, workdir: Path | None = None,
             exceptions: Filter | None = None, fresh_store: bool = True, materialise: bool = True) -> HuntResult:
    """Ingest ``paths`` into a scratch store and run ``ruleset`` (compiled for SQLite, e.g.
    :meth:`soc.app.App.rules_for`) over everything. ``exceptions``
    (e.g. :func:`soc.detect.suppressions.active_exceptions_for` the configured store) hold back the
    alerts they cover; the result counts them. ``fresh_store=False`` records alerts the way the
    service does (store look-ups per episode): slower, same alerts (a test compares the two);
    ``materialise=False`` leaves the fields the rules read as virtual columns (slower, same alerts)."""
    files = expand(paths)
    phases = Phases()
    phases.lap("rules")
    collecting = gc.isenabled()
    gc.disable()  # see the module docstring
    try:
        return _hunt(files, ruleset, phases, fmt=fmt, timezone=timezone, agency=agency, progress=progress,
                     workdir=workdir, exceptions=exceptions, fresh_store=fresh_store, materialise=materialise)
    finally:
        if collecting:
            gc.enable()


def _hunt(files: list[Path], ruleset: RuleSet, phases: Phases, *, fmt: str, timezone: str, agency: str,
          progress: bool, workdir: Path | None, exceptions: Filter | None, fresh_store: bool,
          materialise: bool) -> HuntResult:
    with tempfile.TemporaryDirectory(prefix="soc-hunt-", dir=workdir) as tmp:
        store = SQLiteStore(Path(tmp) / "hunt.db", durable=False, numeric_fields=default_catalog().numeric_fields)
        phases.lap("write")
        refused: list[str] = []
        counters = ingest_files(store, files, fmt=fmt, timezone=timezone, agency=agency, progress=progress,
                                dead_letter=Path(tmp) / "dead-letter.jsonl", phases=phases, refused=refused)
        phases.lap(None)
        present = set(store.count_events(group_by="event.dataset"))
        detections = [d for d in ruleset.runnable() if present.intersection(d.datasets)]
        if materialise:  # fields read once per event, not once per rule (see the module docstring)
            store.materialise_fields({f for d in ruleset.detections.values()
                                      if d.runnable and present.intersection(d.datasets) for f in d.fields})
            phases.lap("write")
        engine = DetectionEngine(store, ruleset, max_alerts=HUNT_MAX_ALERTS, suppress=exceptions,
                                 fresh_store=fresh_store)
        errors = []
        suppressed = 0
        for result in _with_progress(engine, detections, progress):
            suppressed += result.suppressed
            if result.error:
                errors.append(f"{ruleset.detections[result.rule_id].info.title} ({result.rule_id}): {result.error}")
        phases.lap("evaluate")
        engine.flush()
        alerts = [d.body for d in store.find("alerts", sort="first_seen", limit=10**9)]
        store.close()
        phases.lap("record")
    phases.lap(None)
    problems = [f"{p.path}: {p.error}" for p in ruleset.problems]
    problems += [f"{r.title} ({r.rule_id}): {'; '.join(r.errors)}" for r in ruleset.reports() if r.errors]
    for times in (phases.wall, phases.cpu):
        for name in ("rules", "read", "write", "evaluate", "record"):
            times.setdefault(name, 0.0)
        times["ingest"] = times["read"] + times["write"]
        times["detect"] = times["evaluate"] + times["record"]
    return HuntResult(alerts=alerts, files=len(files), events=counters["events"], counters=counters,
                      rules_total=len(ruleset.detections), rules_run=len(detections),
                      rule_errors=errors + problems, seconds=phases.wall, cpu_seconds=phases.cpu,
                      suppressed=suppressed, refused=refused,
                      rule_cache=str(ruleset.cache) if ruleset.cache is not None else "")


def _with_progress(engine: DetectionEngine, detections: list[Detection], enabled: bool) -> list[RunResult]:
    window = Window(None, None, "@timestamp")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} rules"),
                  disable=not enabled, transient=True) as bar:
        task = bar.add_task(f"evaluating {len(detections)} rules", total=len(detections))
        return engine.run_all(detections, window, progress=lambda _: bar.advance(task))
