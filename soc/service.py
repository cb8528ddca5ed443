"""The embedded service (``soc run``): listeners, inbox, tails, store, scheduled rules.

Topology (one process, nothing to install)::

    syslog UDP/TCP --\\
    inbox files -----+--> IngestPipeline --> SQLite store --> scheduled rules --> alerts
    tailed files ---/                                                 (printed as they come)

Every source hands its batches to the same sink, which writes them and only then acknowledges
the batch (inbox and tail positions are persisted on acknowledgement, so a crash re-reads,
never skips). Detection reads the store on its own schedule. Ctrl-C (SIGINT) or SIGTERM stops
the sources first (their pending batches are stored), then the scheduler, then the store.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from soc.app import App
from soc.detect.compiler import Detection
from soc.detect.engine import RunResult
from soc.detect.scheduler import Timing
from soc.export.schedule import register_report_jobs
from soc.ingest.deadletter import DeadLetterFile
from soc.ingest.pipeline import IngestPipeline
from soc.ingest.reader import FileIngestor, file_format
from soc.ingest.sourcedefs import (
    Agencies,
    SourceDefinition,
    context_for,
    load_agencies,
    load_sources,
)
from soc.ingest.sources.inbox import Inbox
from soc.ingest.sources.syslog import SyslogListener
from soc.ingest.sources.tail import FileTail
from soc.model import Event
from soc.playbooks.schedule import attach as attach_playbooks
from soc.retry import Backoff, retrying
from soc.secrets import redact_logs
from soc.store.base import Store
from soc.ui import LEVEL_STYLE, console, listen_address, show_time, zone_note

log = logging.getLogger(__name__)


STORE_RETRY = Backoff(base=0.5, factor=2.0, max=30.0)


class Sink:
    """Writes event batches to the store, retrying while the store is busy; counts everything."""

    def __init__(self, store: Store):
        self.store = store
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def write(self, events: list[Event]) -> None:
        if not events:
            return
        # the store is locked or down: hold the source and retry (nothing is acknowledged meanwhile)
        result = retrying(lambda: self.store.write_events(events), STORE_RETRY, what="store write")
        with self.lock:
            self.counts["stored"] += result.created
            self.counts["duplicates"] += result.existing
            self.counts["rejected"] += len(result.rejected)


class Service:
    def __init__(self, app: App, *, out: Callable[[str], None] | None = None):
        self.app = app
        self.settings = settings = app.settings
        self.console = console()
        self.out = out or self.console.print
        self.store = app.store
        self.sink = Sink(self.store)
        self.agencies: Agencies = load_agencies()
        self.sources: list[SourceDefinition] = load_sources()
        settings.dead_letter_dir.mkdir(parents=True, exist_ok=True)
        self.dead_letter = DeadLetterFile(settings.dead_letter_dir / "ingest.jsonl")
        self.pipelines: dict[str, IngestPipeline] = {}
        self.ingestors: list[FileIngestor] = []
        self.listener: SyslogListener | None = None
        self.inbox: Inbox | None = None
        self.tails: list[FileTail] = []
        self.listening: list[str] = []  # "syslog UDP 0.0.0.0:5514 (all interfaces)", for the banner
        self.threads: list[threading.Thread] = []
        self.stopping = threading.Event()
        self.ruleset = app.rules
        self.runner = app.rule_runner(on_alerts=self._announce)
        self.detections: list[Detection] = app.detections
        self.scheduler = app.detection_scheduler(self.runner)
        self.playbooks = app.playbook_runner(background=True)
        for error in self.playbooks.errors:
            log.error("playbook not loaded: %s", error)

    # -- ingest ------------------------------------------------------------------------------
    def _pipeline(self, source: SourceDefinition) -> IngestPipeline:
        if source.name not in self.pipelines:
            self.pipelines[source.name] = IngestPipeline(
                context_for(source, self.agencies), source.format,
                self.settings.syslog.max_message_bytes, self.dead_letter)
        return self.pipelines[source.name]

    def _start_syslog(self, source: SourceDefinition) -> None:
        pipeline = self._pipeline(source)
        udp = source.listen_udp or self.settings.syslog.udp
        tcp = source.listen_tcp or self.settings.syslog.tcp
        if not udp and not tcp:
            return
        listener = SyslogListener(lambda records: self.sink.write(pipeline.process(records)),
                                  udp=udp or None, tcp=tcp or None, source_name=source.name,
                                  max_frame_bytes=4 * self.settings.syslog.max_message_bytes)
        try:
            listener.start()
        except OSError as error:
            raise SystemExit(f"cannot listen for syslog on {udp or tcp}: {error}. Use --udp/--tcp "
                             "with a free port (ports below 1024 need root), or '' to disable.") from error
        self.listener = listener
        for kind, address in (("UDP", listener.udp_address), ("TCP", listener.tcp_address)):
            if address:
                where = listen_address(address[0], address[1])
                self.listening.append(f"syslog {kind} {where}")
                self.out(f"listening for syslog on {kind} {where}")

    def _start_inbox(self, source: SourceDefinition, follow: bool) -> None:
        inbox = Inbox(self.settings.inbox, settle_seconds=2.0 if follow else 0.0)
        self.inbox = inbox
        ingestor = FileIngestor(context_for(source, self.agencies), fmt=source.format,
                                dead_letter=self.dead_letter)
        self.ingestors.append(ingestor)
        formats: dict[str, str] = {}

        def loop() -> None:
            for batch in inbox.batches(follow=follow):
                key = str(batch.key)
                if key not in formats:
                    formats[key] = file_format(Path(key), source.format)
                    self.out(f"inbox: reading {Path(key).name} as {formats[key]}")
                self.sink.write(ingestor.events(batch, formats[key]))
                inbox.ack(batch)
                if batch.final:
                    self.out(f"inbox: {Path(key).name} done")

        self._thread(loop, "soc-inbox")
        self.out(f"inbox: drop log files into {self.settings.inbox.resolve()}")

    def _start_tail(self, source: SourceDefinition) -> None:
        if not source.path:
            raise SystemExit(f"source {source.name}: a tail needs 'path'")
        state = self.settings.data_dir / "state" / f"tail-{source.name}.json"
        state.parent.mkdir(parents=True, exist_ok=True)
        tail = FileTail(source.path, state)
        self.tails.append(tail)
        pipeline = self._pipeline(source)

        def loop() -> None:
            for batch in tail.batches():
                self.sink.write(pipeline.process(batch))
                tail.ack(batch)

        self._thread(loop, f"soc-tail-{source.name}")
        self.out(f"tail: following {source.path} ({source.name})")

    def _thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    # -- detection output ----------------------------------------------------------------------
    def _announce(self, detection: Detection, result: RunResult) -> None:
        zone = self.settings.zone
        for alert in result.created:
            level = alert["rule"]["level"]
            who = ", ".join(f"{k}={v}" for k, v in alert.get("group", {}).items()) or ", ".join(
                f"{k}={v[0]}" for k, v in list(alert.get("entities", {}).items())[:2])
            self.out(f"[{LEVEL_STYLE.get(level, '')}]ALERT {level}[/] {show_time(alert['first_seen'], zone)} "
                     f"{alert['rule']['title']} | agency {alert.get('agency')} | {who} | "
                     f"{alert['event_count']} events | rule by {alert['rule']['author']}")
        self.playbooks.on_alerts(result.created)  # recording done; now the playbooks react

    def status_line(self) -> str:
        counts: Counter[str] = Counter()
        for pipeline in self.pipelines.values():
            for key, value in pipeline.counters.as_dict().items():
                if isinstance(value, int):
                    counts[key] += value
        for ingestor in self.ingestors:
            counts.update(ingestor.counters())
        return (f"stored {self.sink.counts['stored']} events (parsed {counts['parsed']}, partial "
                f"{counts['partial']}, failed {counts['failed']}, dead-lettered {counts['dead_lettered']}); "
                f"{len(self.detections)} rules scheduled")

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, *, follow: bool = True) -> None:
        self.out(f"store: {self.settings.store_display_url()}  ({zone_note(self.settings.zone)})")
        problems = [r for r in self.ruleset.reports() if r.errors] + self.ruleset.problems  # type: ignore[operator]
        self.out(f"rules: {len(self.detections)} runnable of {len(self.ruleset.detections)} from "
                 f"{', '.join(map(str, self.app.rule_dirs))}"
                 + (f"; {len(problems)} with problems (see `soc rules check`)" if problems else ""))
        for source in self.sources:
            if source.type == "syslog" and follow:
                self._start_syslog(source)
            elif source.type == "inbox":
                self._start_inbox(source, follow)
            elif source.type == "tail" and follow:
                self._start_tail(source)
        if follow:
            self.out("listening on: " + ("; ".join(self.listening) or "nothing (no syslog listener)")
                     + "; no other port (soc run serves no HTTP or metrics endpoint)")

    def run_rules_once(self) -> list[RunResult]:
        results = []
        for detection in self.detections:
            result = self.runner.run_once(detection)
            if result is not None:
                results.append(result)
        return results

    def stop(self) -> None:
        self.stopping.set()
        if self.listener is not None:
            self.listener.stop()
        if self.inbox is not None:
            self.inbox.stop()
        for tail in self.tails:
            tail.stop()
        for thread in self.threads:
            thread.join(timeout=30)
        self.dead_letter.close()

    def purge(self) -> None:
        removed = self.store.purge_events(time.time() - self.settings.retention_days * 86400)
        if removed:
            self.out(f"retention: removed {removed} events older than {self.settings.retention_days} days")


def run_service(app: App, *, once: bool = False) -> dict[str, Any]:
    """Run until Ctrl-C (or, with ``once``, ingest the inbox, run every rule once and return)."""
    settings = app.settings
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact_logs(settings.secret_values())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.inbox.mkdir(parents=True, exist_ok=True)
    service = Service(app)
    if once:
        service.runner.timing = Timing(interval=0, overlap=service.runner.timing.overlap, settle=0)
        service.start(follow=False)
        for thread in service.threads:
            thread.join()
        results = service.run_rules_once()
        service.playbooks.close()  # wait for the playbook runs the alerts started
        service.stop()
        service.out(service.status_line())
        return {"results": results, "counts": dict(service.sink.counts)}
    service.start(follow=True)
    service.scheduler.start()
    service.scheduler.scheduler.add_job(service.purge, "interval", hours=6, id="retention")
    attach_playbooks(service.playbooks, service.scheduler.scheduler)  # scheduled playbooks, recovery sweep
    register_report_jobs(service.scheduler.scheduler, service.store, settings)  # national summaries, outbox
    service.out("running; Ctrl-C to stop")
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    last = ""
    while not stop.wait(30):
        line = service.status_line()
        if line != last:
            service.out(line)
            last = line
    service.out("stopping: storing pending batches...")
    service.stop()
    service.scheduler.stop()
    service.playbooks.close()
    service.out(service.status_line())
    service.store.close()
    return {"counts": dict(service.sink.counts)}

