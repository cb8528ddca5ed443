"""The composition root: the service layer, put together once from the settings.

Every front door gets its parts here -- the embedded service (``soc run``), the scheduler
process (``soc detect``), ``soc hunt``, each CLI command and the HTTP API -- so the wiring
store -> rules -> compile -> engine -> runner -> scheduler, and the incident, exception,
playbook and report services over the same store, exists once::

    with App(load_settings()) as app:
        runner = app.rule_runner(on_alerts=announce)
        app.detection_scheduler(runner).start()

Parts are built on first use and kept (one store connection, one compiled rule set per query
dialect). Nothing here asks which kind of store it has: the store takes the options that apply
to it (:func:`soc.store.open_store`) and declares the query dialect its rules are compiled for.

**Acting as someone.** :meth:`App.acting_as` gives the same service layer as seen and acted on by
a :class:`~soc.access.Principal` (a user of the API, a token, the shell user, the service
itself): its ``store`` is the shared store scoped to the principal's agencies
(:class:`~soc.store.scoped.ScopedStore`: enforced inside every query) over the store that
records every change in the audit trail under the principal's name
(:class:`~soc.audit.AuditedStore`). Every service built from it -- incidents, alerts, tasks,
exceptions, reports, playbooks, event search -- works through that store, so no front door can
see or change what the principal may not.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soc.access import Principal
from soc.agencies import AgencyTree, load_agencies
from soc.alerts import AlertWorkflow, BulkAlerts
from soc.alerts.priority import AlertPriority
from soc.audit import AuditedStore, AuditTrail
from soc.clock import Clock, system_clock
from soc.config import Settings, content_dir
from soc.detect.compiler import Detection, RuleSet
from soc.detect.engine import DetectionEngine, RunResult
from soc.detect.rulecache import load_compiled, rule_cache_dir
from soc.detect.scheduler import DetectionScheduler, RuleRunner, Timing
from soc.detect.suppressions import ActiveExceptions, Exceptions
from soc.export.reports import Reports
from soc.identity.service import Identity
from soc.incidents.remediation import RemediationTasks, agency_recipients, mail_notifier
from soc.incidents.service import Incidents
from soc.store import open_configured_store
from soc.store.base import Store
from soc.store.scoped import ScopedStore

if TYPE_CHECKING:
    from soc.intel import FeedPoller, IntelMatching
    from soc.playbooks.runner import PlaybookRunner

__all__ = ["App"]


class App:
    """The service layer over one store.

    ``store_url`` overrides the configured store; ``store_options`` are passed to it (index
    prefix, replicas, query timeout ... -- a store takes those that apply). ``rule_dirs``
    replaces the rule folders of the settings (the project's ``detections/`` plus
    ``rule_dirs``). Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, settings: Settings, *, store_url: str | None = None,
                 store_options: dict[str, Any] | None = None, rule_dirs: list[Path] | None = None,
                 clock: Clock = system_clock) -> None:
        self.settings = settings
        self.clock = clock
        self._store_url = store_url
        self._store_options = dict(store_options or {})
        self.rule_dirs: list[Path] = list(rule_dirs) if rule_dirs else [content_dir("detections"),
                                                                         *settings.rule_dirs]
        self._rulesets: dict[str, RuleSet] = {}
        self._root: App = self
        #: who acts through this view (None: the service layer itself, unscoped, not audited)
        self.principal: Principal | None = None
        self._source: dict[str, str | None] = {}

    def acting_as(self, principal: Principal, *, ip: str | None = None, user_agent: str | None = None) -> App:
        """This service layer as seen and acted on by ``principal`` (see the module docstring).
        Shares the store connection, compiled rules, agencies, identities and audit trail."""
        view = App.__new__(App)
        view.__dict__.update({k: v for k, v in self.__dict__.items() if k in (
            "settings", "clock", "_store_url", "_store_options", "rule_dirs", "_rulesets")})
        view._root = self._root
        view.principal = principal
        view._source = {"ip": ip, "user_agent": user_agent}
        return view

    # -- the store ---------------------------------------------------------------------------
    @property
    def base_store(self) -> Store:
        """The shared store itself, unscoped and not audited (ingest, detection, the root)."""
        root = self._root
        if "_base" not in root.__dict__:
            root.__dict__["_base"] = open_configured_store(root.settings, root._store_url, **root._store_options)
        return root.__dict__["_base"]

    @cached_property
    def store(self) -> Store:
        """The store the services of this view work through: the shared store for the root
        (opened on first use; raises :class:`soc.store.StoreError` or
        :class:`soc.secrets.SecretError` with a message that says what to fix), scoped to the
        principal's agencies and audited under its name for a view made by :meth:`acting_as`."""
        if self.principal is None:
            return self.base_store
        audited = AuditedStore(self.base_store, self.audit, self.principal, **self._source)
        return ScopedStore(audited, self.principal.scope(self.agencies))

    @property
    def agencies(self) -> AgencyTree:
        """The agency hierarchy (``ingest/agencies.yml``), read once."""
        root = self._root
        if "_agencies" not in root.__dict__:
            root.__dict__["_agencies"] = load_agencies()
        return root.__dict__["_agencies"]

    @property
    def audit(self) -> AuditTrail:
        """The audit trail (over the shared store: appended by every view)."""
        root = self._root
        if "_audit" not in root.__dict__:
            root.__dict__["_audit"] = AuditTrail(root.base_store, clock=root.clock)
        return root.__dict__["_audit"]

    @property
    def identity(self) -> Identity:
        """Users, logins, sessions and API tokens; logins and changes go to the audit trail."""
        root = self._root
        if "_identity" not in root.__dict__:
            root.__dict__["_identity"] = Identity(root.base_store, root.settings.auth, agencies=lambda: root.agencies,
                                                  clock=root.clock, audit=root.audit.hook)
        return root.__dict__["_identity"]

    def close(self) -> None:
        """Close the shared store (only the root owns it; views close nothing)."""
        if self._root is self and "_base" in self.__dict__:
            self.__dict__.pop("_base").close()
            for name in ("store", "_audit", "_identity"):
                self.__dict__.pop(name, None)

    def __enter__(self) -> App:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- detection ---------------------------------------------------------------------------
    def rules_for(self, dialect: str) -> RuleSet:
        """The rule folders loaded and compiled for a query dialect (``sqlite`` or ``dsl``),
        once (raises ``FileNotFoundError`` naming a missing folder)."""
        if dialect not in self._rulesets:
            self._rulesets[dialect] = load_compiled(self.rule_dirs, dialect, cache_dir=rule_cache_dir(self.settings))
        return self._rulesets[dialect]

    @property
    def rules(self) -> RuleSet:
        """The rules compiled for this store."""
        return self.rules_for(self.base_store.dialect)

    @property
    def detections(self) -> list[Detection]:
        """The rules that can run (compiled, and with a data source)."""
        return self.rules.runnable()

    def timing(self, *, interval: float | None = None, overlap: float | None = None,
               settle: float | None = None, lease: float | None = None) -> Timing:
        """Run windows from the settings (``detection:``), each value overridable."""
        d = self.settings.detection
        return Timing(interval=d.interval_seconds if interval is None else interval,
                      overlap=d.overlap_seconds if overlap is None else overlap,
                      settle=d.settle_seconds if settle is None else settle,
                      **({} if lease is None else {"lease": lease}))

    def detection_engine(self) -> DetectionEngine:
        """The engine over the shared store with the exceptions in force (re-read every run).
        Rules run as the service: the alerts they record are not audited one by one (each
        rule's health records its runs), and no principal's scope applies."""
        return DetectionEngine(self.base_store, self.rules, max_alerts=self.settings.detection.max_alerts_per_run,
                               suppress=ActiveExceptions(self.base_store), enrich=self.alert_priority)

    @property
    def alert_priority(self) -> AlertPriority:
        """The affected system's security level and the risk recorded on each alert raised
        (the asset inventory ``assets.yml`` of the playbook data folder; :mod:`soc.alerts.priority`)."""
        root = self._root
        if "_priority" not in root.__dict__:
            root.__dict__["_priority"] = AlertPriority(root.settings.playbooks.data_folder / "assets.yml")
        return root.__dict__["_priority"]

    def rule_runner(self, *, timing: Timing | None = None, owner: str | None = None,
                    on_alerts: Callable[[Detection, RunResult], None] | None = None,
                    on_run: Callable[..., None] | None = None) -> RuleRunner:
        """Runs one rule's next window at a time, with leases and watermarks in the store."""
        return RuleRunner(self.detection_engine(), timing or self.timing(), owner=owner,
                          on_alerts=on_alerts, on_run=on_run)

    def search_source(self, name: str) -> Any:
        """The view of one search source (:class:`soc.store.search_sources.InPlaceEvents`) over
        the shared store; ``KeyError`` names the configured ones."""
        from soc.store.search_base import SearchStore
        from soc.store.search_sources import InPlaceEvents, SearchSource

        specs = {spec.name: spec for spec in self.settings.search_sources}
        if name not in specs:
            raise KeyError(f"no search source {name!r} (search_sources: {', '.join(specs) or 'none'})")
        if not isinstance(self.base_store, SearchStore):
            raise KeyError(f"search source {name!r}: the store is not a search engine")
        return InPlaceEvents(self.base_store, SearchSource.from_settings(specs[name]))

    def search_source_runners(self, *, timing: Timing | None = None, owner: str | None = None,
                              on_alerts: Callable[[Detection, RunResult], None] | None = None,
                              on_run: Callable[..., None] | None = None) -> list[tuple[RuleRunner, list[Detection]]]:
        """One runner per search source (setting ``search_sources``: logs already in the cluster,
        queried in place; :mod:`soc.store.search_sources`) with the rules of its datasets compiled
        for ``dsl-inplace``; none on a store that is not a search engine."""
        from soc.store.search_base import SearchStore
        from soc.store.search_sources import DIALECT, InPlaceEvents, SearchSource

        if not self.settings.search_sources or not isinstance(self.base_store, SearchStore):
            return []
        rules = self.rules_for(DIALECT)
        out = []
        for spec in self.settings.search_sources:
            source = SearchSource.from_settings(spec)
            engine = DetectionEngine(InPlaceEvents(self.base_store, source), rules,  # type: ignore[arg-type]
                                     max_alerts=self.settings.detection.max_alerts_per_run,
                                     suppress=ActiveExceptions(self.base_store), enrich=self.alert_priority)
            detections = [d for d in rules.runnable() if set(d.datasets) & set(source.datasets)]
            out.append((RuleRunner(engine, timing or self.timing(), owner=owner, on_alerts=on_alerts, on_run=on_run),
                        detections))
        return out

    def detection_scheduler(self, runner: RuleRunner, *, workers: int | None = None) -> DetectionScheduler:
        """Every runnable rule on its interval, at most ``workers`` (settings) at a time."""
        return DetectionScheduler(runner, self.detections,
                                  max_workers=workers or self.settings.detection.max_concurrent_rules)

    def search_source_schedulers(self, runners: list[tuple[RuleRunner, list[Detection]]], *,
                                 workers: int | None = None) -> list[DetectionScheduler]:
        """One scheduler per runner of :meth:`search_source_runners` (``soc run`` and ``soc detect``)."""
        return [DetectionScheduler(runner, detections, max_workers=workers or self.settings.detection.max_concurrent_rules)
                for runner, detections in runners]

    def register_intel_jobs(self, scheduler: Any, *,
                            on_alerts: Callable[[list[dict[str, Any]]], None] | None = None) -> None:
        """The threat-intel jobs (feeds, the hand list, indicator matching and the retro-hunt,
        sightings; none unless ``intel.enabled``) on an APScheduler ``scheduler``, as ``soc run``
        and ``soc detect`` run them (:func:`soc.intel.schedule.register_intel_jobs`)."""
        from soc.intel.schedule import register_intel_jobs

        settings = self.settings
        register_intel_jobs(scheduler, settings.intel, self.intel_poller(), self.intel_matching(on_alerts=on_alerts),
                            settings.playbooks.data_folder / "threat_intel.yml")

    # -- responding --------------------------------------------------------------------------
    @cached_property
    def incidents(self) -> Incidents:
        """The incident service on this layer's clock; titles carry dates in the analyst's zone.
        Its membership lease (a lock, no agency's data) is on the shared store, whatever the
        principal's scope."""
        return Incidents(self.store, zone=self.settings.zone, clock=self.clock, lock_store=self.base_store)

    @cached_property
    def alerts(self) -> AlertWorkflow:
        """Alert triage: acknowledge, assign, close with a reason, reopen; with history."""
        return AlertWorkflow(self.store, clock=self.clock)

    def bulk_alerts(self, *, background: Callable[[str], None] | None = None) -> BulkAlerts:
        """Changes to every alert a query matches; large sets as resumable background jobs
        (``background(job_id)`` starts one; default: a thread). A resumed job acts with its
        creator's rights."""
        return BulkAlerts(self.store, settings=self.settings.alerts, clock=self.clock,
                          store_for=lambda principal: self.acting_as(principal).store,
                          **({"background": background} if background else {}))

    @cached_property
    def tasks(self) -> RemediationTasks:
        """Remediation tasks sent to agencies, with deadlines, acknowledgement and notices."""
        return RemediationTasks(self.store, self.agencies, clock=self.clock, settings=self.settings.tasks,
                                notifier=mail_notifier(self.settings.smtp),
                                recipients=agency_recipients(self.identity.users.list), zone=self.settings.zone)

    @cached_property
    def exceptions(self) -> Exceptions:
        """Detection exceptions (suppressions) as data: add, list, disable, audit."""
        return Exceptions(self.store)

    @cached_property
    def reports(self) -> Reports:
        return Reports(self.store, self.settings)

    # -- threat intelligence (soc.intel) -----------------------------------------------------
    def intel_poller(self) -> FeedPoller:
        """The configured indicator feeds (``intel.feeds``) over the shared store, with status."""
        from soc.intel import FeedPoller

        return FeedPoller(self.base_store, self.settings.intel.feeds, clock=self.clock)

    def intel_matching(self, *, on_alerts: Callable[[list[dict[str, Any]]], None] | None = None) -> IntelMatching:
        """Indicator matching over the shared store: the cycle, the retro-hunt, sightings. Alerts
        carry the affected system's priority like the rules' (:attr:`alert_priority`);
        ``on_alerts`` gets those recorded (the service hands them to the playbooks)."""
        from soc.intel import IntelMatching

        intel, detection = self.settings.intel, self.settings.detection
        return IntelMatching(self.base_store, clock=self.clock, retro_hunt_days=intel.retro_hunt_days,
                             max_events=intel.max_events_per_cycle, overlap=detection.overlap_seconds,
                             settle=detection.settle_seconds, sightings=intel.sightings,
                             share_feeds=[f.name for f in intel.feeds if f.share_sightings],
                             enrich=self.alert_priority, on_alerts=on_alerts)

    def playbook_runner(self, *, folder: Path | None = None, background: bool = False) -> PlaybookRunner:
        """The playbooks of the configured folder (or ``folder``) over this store; invalid
        playbook files are in ``runner.errors`` (the valid ones run). ``background`` runs them
        on a small thread pool (``playbooks.workers``), as the services do."""
        from soc.playbooks.model import load_playbooks
        from soc.playbooks.runner import PlaybookRunner

        config = self.settings.playbooks
        if folder is not None:
            config = config.model_copy(update={"folder": folder})
        playbooks, errors = load_playbooks(config.folder)
        runner = PlaybookRunner(self.store, playbooks, settings=self.settings, config=config, background=background)
        runner.errors = errors
        return runner
