"""The embedded service (``soc run``): every configured source, the store, scheduled rules.

Topology (one process, nothing to install)::

    syslog UDP/TCP --\
    inbox files -----+                                                      scheduled rules
    tailed files ----+--> decode/parse/normalize --> Sink --> SQLite store -----> alerts -->
    file, evtx ------+        (soc.ingest.flow: a thread per source)          playbooks, reports
    kafka topic ----/

The ingest side is :class:`soc.ingest.flow.Topology`: one source per definition in
``ingest/sources/`` (built by the registry of source types, :mod:`soc.ingest.registry`; the
``kafka`` type provided by :mod:`soc.kafka.source`), every type the schema accepts started, one
sink that stores a batch before its source acknowledges it (positions saved, offsets committed),
one line per finished file. This module adds detection, playbooks and reports from the
composition root (:class:`soc.app.App`), and serves the HTTP API when given one (an
:class:`Endpoint`: ``soc run`` passes :class:`soc.web.serve.ApiServer`). Ctrl-C (SIGINT) or SIGTERM
stops the API first (running requests finish), then the sources (their pending batches are
stored), then the scheduler, then the store.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

from rich.text import Text

from soc.access import Principal
from soc.agencies import AgencyTree, load_agencies
from soc.app import App
from soc.audit import checkpoint_file, checkpoint_now
from soc.detect.compiler import Detection
from soc.detect.engine import RunResult
from soc.detect.scheduler import Timing
from soc.export.schedule import register_report_jobs
from soc.ingest.deadletter import DeadLetterFile
from soc.ingest.flow import Topology
from soc.ingest.registry import REGISTRY
from soc.ingest.sink import Sink
from soc.ingest.sourcedefs import SourceDefinition, load_sources
from soc.ingest.sources.contract import SourceEnv, SourceRegistry
from soc.kafka.source import register as register_kafka
from soc.model import iso
from soc.net import listen_address
from soc.oversight.sources import check_silent_sources
from soc.playbooks.schedule import attach as attach_playbooks
from soc.secrets import redact_logs
from soc.ui import alert_line, console, zone_note

log = logging.getLogger(__name__)
#: who the service's own changes (playbooks, reports, checkpoints) are recorded as
SERVICE = Principal.system("service")

STATUS_SECONDS = 30.0
"""How often ``soc run`` prints its status line (when it changed)."""


class Endpoint(Protocol):
    """Something the service serves next to its sources (the HTTP API): started after them,
    stopped before them, listed in the banner."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def describe(self) -> str: ...

    def warnings(self) -> list[str]: ...


def source_registry() -> SourceRegistry:
    """The source types of the embedded service: the ingest engine's, and Kafka's."""
    registry = REGISTRY.copy()
    register_kafka(registry)
    return registry


class Service:
    def __init__(self, app: App, *, out: Callable[[str | Text], None] | None = None,
                 api: Endpoint | None = None):
        self.app = app
        self.api = api
        self.settings = settings = app.settings
        self.console = console()
        self.out = out or self.console.print
        self.say = out or partial(self.console.print, markup=False, highlight=False)  # lines quoting input
        self.store = app.base_store  # ingest and detection write as the service, not audited per event
        #: what the service does on its own (playbooks, reports, outbox): audited as system:service
        self.acting = app.acting_as(SERVICE)
        self.agencies: AgencyTree = load_agencies()
        self.sources: list[SourceDefinition] = load_sources()
        settings.dead_letter_dir.mkdir(parents=True, exist_ok=True)
        self.dead_letter = DeadLetterFile(settings.dead_letter_dir / "ingest.jsonl")
        self.sink = Sink(self.store, dead_letter=self.dead_letter)
        self.registry = source_registry()
        self.topology: Topology | None = None
        self.stopping = threading.Event()
        self.ruleset = app.rules
        self.runner = app.rule_runner(on_alerts=self._announce)
        self.detections: list[Detection] = app.detections
        self.scheduler = app.detection_scheduler(self.runner)
        #: rules over the logs already in the search cluster, queried in place (``search_sources``)
        self.source_schedulers = app.search_source_schedulers(app.search_source_runners(on_alerts=self._announce))
        self.playbooks = self.acting.playbook_runner(background=True)
        for error in self.playbooks.errors:
            log.error("playbook not loaded: %s", error)

    # -- detection output ----------------------------------------------------------------------
    def _announce(self, detection: Detection, result: RunResult) -> None:
        for alert in result.created:  # data from logs, shown literally
            self.out(alert_line(alert, self.settings.zone))
        self.playbooks.on_alerts(result.created)  # recording done; now the playbooks react

    def status_line(self) -> str:
        totals = self.topology.totals() if self.topology is not None else {}
        return (f"stored {self.sink.counts['stored']} events (parsed {totals.get('parsed', 0)}, partial "
                f"{totals.get('partial', 0)}, failed {totals.get('failed', 0)}, dead-lettered "
                f"{totals.get('dead_lettered', 0)}); {len(self.detections)} rules scheduled")

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, *, follow: bool = True) -> None:
        """Print the banner and start every source (``follow=False``: one pass over the file
        sources; listeners and Kafka are not started)."""
        self.out(f"store: {self.settings.store_display_url()}  ({zone_note(self.settings.zone)})")
        problems = [r for r in self.ruleset.reports() if r.errors] + self.ruleset.problems  # type: ignore[operator]
        self.out(f"rules: {len(self.detections)} runnable of {len(self.ruleset.detections)} from "
                 f"{', '.join(map(str, self.app.rule_dirs))}"
                 + (f"; {len(problems)} with problems (see `soc rules check`)" if problems else ""))
        env = SourceEnv(settings=self.settings, agencies=self.agencies,
                        state_dir=self.settings.data_dir / "state", follow=follow)
        self.topology = Topology(self.sources, env, self.sink, dead_letter=self.dead_letter,
                                 registry=self.registry, out=self.say)
        api = self.api if follow else None
        if api is not None:
            api.start()  # first: a port in use stops the service before any source runs
        try:
            self.topology.start()
        except BaseException:
            if api is not None:
                api.stop()
            raise
        for line in self.topology.describe():
            self.say(f"source {line}")
        if follow:
            listening = [f"{label} {listen_address(host, port)}" for label, host, port in self.topology.listening()]
            if api is not None:
                listening.append(api.describe())
                for warning in api.warnings():
                    self.out(Text(warning, style="bold red"))
            self.out("listening on: " + ("; ".join(listening) or "nothing (no syslog listener)")
                     + ("; no other port (no metrics endpoint)" if api is not None else
                        "; no other port (the HTTP API is off: api.enabled; no metrics endpoint)"))

    def run_rules_once(self) -> list[RunResult]:
        results = []
        for detection in self.detections:
            result = self.runner.run_once(detection)
            if result is not None:
                results.append(result)
        return results

    def stop(self) -> None:
        """Stop the API (running requests finish), then the sources; what they handed over is
        stored (up to 30 s while the store is down)."""
        self.stopping.set()
        if self.api is not None:
            self.api.stop()
        if self.topology is not None:
            self.topology.stop()
        self.dead_letter.close()

    def checkpoint_audit(self) -> None:
        """Append the audit chain's head to the checkpoint file (``audit.checkpoint_minutes``):
        removing the newest records then shows at the next ``soc audit verify``."""
        path = checkpoint_file(self.settings)
        try:
            checkpoint_now(self.app.audit, path, taken_at=iso(self.app.clock()), by=SERVICE.label)
        except OSError as error:
            log.warning("cannot append the audit checkpoint to %s: %s", path, error)

    def check_silent_sources(self) -> list[dict[str, Any]]:
        """Raise an alert for each log source that went silent since the last check
        (``oversight.silent_*``; :mod:`soc.oversight.sources`); the playbooks see them like any alert."""
        o = self.settings.oversight
        try:
            created = check_silent_sources(self.store, self.agencies, now=self.app.clock(),
                                           window_hours=o.silent_window_hours, silent_minutes=o.silent_minutes)
        except Exception:  # the store is unreachable, for example: the next check tries again
            log.exception("silent-source check failed")
            return []
        for alert in created:
            self.out(alert_line(alert, self.settings.zone))
        if created:
            self.playbooks.on_alerts(created)
        return created

    def purge(self) -> None:
        removed = self.store.purge_events(time.time() - self.settings.retention_days * 86400)
        if removed:
            self.out(f"retention: removed {removed} events older than {self.settings.retention_days} days")


def run_service(app: App, *, once: bool = False, stop: threading.Event | None = None,
                out: Callable[[str | Text], None] | None = None, api: Endpoint | None = None) -> dict[str, Any]:
    """Run until Ctrl-C or SIGTERM (or ``stop`` is set; or, with ``once``, read the file sources
    to their end, run every rule once and return). Returns the sink's counts (``counts``), the
    counts per source (``sources``) and, with ``once``, the rule runs (``results``). ``out``
    receives the lines printed (default: the console). ``api`` is served while the service runs
    (not with ``once``)."""
    settings = app.settings
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact_logs(settings.secret_values())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.inbox.mkdir(parents=True, exist_ok=True)
    service = Service(app, out=out, api=None if once else api)
    if once:
        service.runner.timing = Timing(interval=0, overlap=service.runner.timing.overlap, settle=0)
        service.start(follow=False)
        assert service.topology is not None
        service.topology.wait()
        results = service.run_rules_once()
        service.playbooks.close()  # wait for the playbook runs the alerts started
        service.stop()
        service.out(service.status_line())
        return {"results": results, "counts": dict(service.sink.counts), "sources": service.topology.counts()}
    service.start(follow=True)
    service.scheduler.start()
    for extra in service.source_schedulers:
        extra.start()
    service.scheduler.scheduler.add_job(service.purge, "interval", hours=6, id="retention")
    if settings.oversight.silent_check_minutes:
        service.scheduler.scheduler.add_job(service.check_silent_sources, "interval", id="silent-sources",
                                            minutes=settings.oversight.silent_check_minutes)
    if settings.audit.checkpoint_minutes:
        service.scheduler.scheduler.add_job(service.checkpoint_audit, "interval", id="audit-checkpoint",
                                            minutes=settings.audit.checkpoint_minutes)
    attach_playbooks(service.playbooks, service.scheduler.scheduler)  # scheduled playbooks, recovery sweep
    register_report_jobs(service.scheduler.scheduler, service.acting.store, settings)  # national summaries, outbox
    app.register_intel_jobs(service.scheduler.scheduler,  # feeds, indicator matching, retro-hunt
                            on_alerts=service.playbooks.on_alerts)
    service.out("running; Ctrl-C to stop")
    stop = stop or threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
    last, due = "", time.monotonic() + STATUS_SECONDS
    while not stop.wait(0.5):
        if time.monotonic() < due:
            continue
        due = time.monotonic() + STATUS_SECONDS
        line = service.status_line()
        if line != last:
            service.out(line)
            last = line
    service.out("stopping: storing pending batches...")
    service.stop()
    service.scheduler.stop()
    for extra in service.source_schedulers:
        extra.stop()
    service.playbooks.close()
    service.out(service.status_line())
    service.store.close()
    return {"counts": dict(service.sink.counts),
            "sources": service.topology.counts() if service.topology is not None else {}}

