"""Executing playbooks: idempotent, resumable, leased, recorded.

**Runs.** A run is a document in ``playbook_runs`` whose id is a hash of the playbook id and
the *trigger key* (``alert:<alert id>``, ``incident:<id>:opened``, ``schedule:<fire time>``,
``manual:<user key>``...). It is written create-only, so the same trigger never starts a
second run, whichever process or retry delivers it. (Dry runs get a fresh key each time.)

**States.** ``pending`` (created, not yet picked up) -> ``running`` -> ``succeeded`` |
``failed``; ``running`` <-> ``waiting`` (an approval or a sub-playbook; the run holds no
lease while it waits). Each step has ``pending``, ``running``, ``waiting``, ``succeeded``,
``skipped`` (its ``if`` was false, or an ``on_error: goto`` jumped over it) or ``failed``.

**Leases.** The process executing a run owns it: ``owner`` (host:pid:nonce) and
``lease_until``, renewed by a heartbeat thread every third of the lease through a
compare-and-set on the run document. A run whose lease expired -- or whose owner process is
gone (same host, pid no longer alive) -- is taken over by :meth:`PlaybookRunner.recover`
(``soc run`` calls it at start-up and every ``sweep_seconds``; ``soc playbook resume`` by
hand). A run taken over more than ``max_takeovers`` times (a step that kills its process)
is marked failed with the reason. So no run stays ``running`` forever.

**Resume.** Step states are saved before and after every attempt, so a resumed run continues
at the first unfinished step: completed steps are never repeated. The interrupted step runs
again with the same idempotency key (``<run id>:<step id>``); actions make that safe (create-
only ids, the effects ledger, ``Idempotency-Key`` headers). An interrupted attempt does not
count against the step's retry budget.

**Record.** Every step attempt (start and end: rendered arguments, output, error, timing,
actor, owner) and every run event (created, started, resumed, waiting, approved, finished)
is written create-only to ``playbook_steps`` with a deterministic id, so the record is
append-only and a replay cannot write it twice.

**Parts.** :class:`PlaybookRunner` starts runs (here); :mod:`.triggers` starts them for
alerts, incident events and schedules, :mod:`.steps` executes them, :mod:`.resume` claims,
approves, resumes and recovers them, :mod:`.record` writes and reads the record, over
:mod:`.runs` (the run document and this process's hold on it).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from soc.clock import epoch_clock
from soc.config import PlaybookSettings
from soc.model import iso, now_utc
from soc.playbooks.actions import load_actions
from soc.playbooks.model import Playbook, PlaybookError, load_playbooks
from soc.playbooks.record import RunRecord
from soc.playbooks.resume import RunResumption
from soc.playbooks.runs import RUN_LEASE, STEP_DONE, TERMINAL, _dumps, run_id_for
from soc.playbooks.steps import StepExecution
from soc.playbooks.tables import APPROVALS, RUNS, STEPS
from soc.playbooks.triggers import (
    CLAIMS,
    PlaybookTriggers,
    _agency_of,
    alert_matches,
    incident_matches,
)
from soc.store.base import Store
from soc.store.lease import Leases, owner_gone

__all__ = ["APPROVALS", "CLAIMS", "RUNS", "RUN_LEASE", "STEPS", "STEP_DONE", "TERMINAL", "PlaybookRunner",
           "alert_matches", "coerce_input", "incident_matches", "run_id_for"]

log = logging.getLogger(__name__)


def coerce_input(name: str, kind: str, value: Any) -> Any:
    """Turn a command-line string into the declared input type."""
    if not isinstance(value, str) or kind == "string":
        return value
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean":
            if value.lower() in ("1", "true", "yes", "on", "có"):
                return True
            if value.lower() in ("0", "false", "no", "off", "không"):
                return False
            raise ValueError("expected true or false")
        if kind in ("list", "object"):
            parsed = json.loads(value) if value.strip()[:1] in "[{" else value.split(",")
            return parsed
    except ValueError as error:
        raise PlaybookError(f"input {name!r}: {value!r} is not a valid {kind}: {error}") from None
    return value


class PlaybookRunner(PlaybookTriggers, StepExecution, RunResumption, RunRecord):
    """Starts, executes, resumes and records playbook runs against one store."""

    def __init__(self, store: Store, playbooks: dict[str, Playbook] | None = None, *,
                 settings: Any = None, config: PlaybookSettings | None = None,
                 clock: Callable[[], float] = time.time, background: bool = False,
                 owner: str | None = None):
        load_actions()
        self.store = store
        if settings is None:
            from soc.config import load_settings

            settings = load_settings()
        self.settings = settings
        self.config = config or settings.playbooks
        self.clock = clock
        #: the runs' leases; a run whose owner process is gone is free before its lease expires
        self.leases = Leases(store, RUNS, seconds=self.config.lease_seconds, owner=owner,
                             clock=epoch_clock(clock), fields=RUN_LEASE, abandoned=owner_gone)
        self.owner = self.leases.owner
        self.errors: list[str] = []
        if playbooks is None:
            playbooks, self.errors = load_playbooks(self.config.folder)
        self.playbooks = playbooks
        self._pool = ThreadPoolExecutor(max_workers=self.config.workers, thread_name_prefix="soc-playbook") \
            if background else None
        self._incidents: dict[Any, Any] = {}
        self._deferred: list[str] = []
        self._deferred_lock = threading.Lock()
        self._running: set[Future[None]] = set()  # runs on the pool, until they finish

    # -- services for actions ----------------------------------------------------------------
    @property
    def incidents(self) -> Any:
        """The incident service (:class:`soc.incidents.service.Incidents`) on this store."""
        return self.incidents_for(None, None)

    def incidents_for(self, group_fields: tuple[str, ...] | None, window_hours: float | None) -> Any:
        """The incident service grouping by ``group_fields`` within ``window_hours``."""
        key = (group_fields, window_hours)
        if key not in self._incidents:
            from soc.incidents.service import Incidents

            options: dict[str, Any] = {}
            if group_fields:
                options["group_fields"] = group_fields
            if window_hours:
                options["group_window_hours"] = window_hours
            self._incidents[key] = Incidents(self.store, zone=self.settings.zone, **options)
        return self._incidents[key]

    def close(self) -> None:
        """Wait for every run on the pool -- also the runs those runs start (an incident a
        playbook opens starts the incident's playbooks) -- then stop the pool."""
        if self._pool is None:
            return
        while True:
            with self._deferred_lock:
                running = set(self._running)
            if not running:
                break
            wait(running)
        self._pool.shutdown(wait=True)

    # -- starting runs -------------------------------------------------------------------------
    def playbook(self, playbook_id: str) -> Playbook:
        try:
            return self.playbooks[playbook_id]
        except KeyError:
            raise PlaybookError(f"no playbook {playbook_id!r} (known: {', '.join(sorted(self.playbooks)) or 'none'}; "
                                f"see `soc playbook list`)") from None

    def resolve_inputs(self, playbook: Playbook, given: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(given) - set(playbook.inputs))
        if unknown:
            raise PlaybookError(f"playbook {playbook.id}: unknown input(s) {', '.join(unknown)} "
                                f"(it takes: {', '.join(playbook.inputs) or 'none'})")
        values: dict[str, Any] = {}
        for name, spec in playbook.inputs.items():
            if name in given:
                values[name] = coerce_input(name, spec.type, given[name])
            elif spec.required:
                raise PlaybookError(f"playbook {playbook.id}: input {name!r} is required ({spec.description})")
            else:
                values[name] = spec.default
        return values

    def start(self, playbook: Playbook | str, trigger: dict[str, Any], key: str, *,
              inputs: dict[str, Any] | None = None, actor: str = "system", dry_run: bool = False,
              parent: tuple[str, str] | None = None, depth: int = 0, execute: bool = True) -> tuple[str, bool]:
        """Create the run for ``(playbook, key)`` unless it exists; execute it when new.
        Returns ``(run id, created)``."""
        if isinstance(playbook, str):
            playbook = self.playbook(playbook)
        if dry_run:
            key = f"dry-run:{uuid.uuid4().hex}:{key}"
        configured = self.config.inputs.get(playbook.id) or {}
        values = self.resolve_inputs(playbook, {**configured, **(inputs or {})})
        run_id = run_id_for(playbook.id, key)
        now = iso(now_utc())
        body = {
            "id": run_id, "playbook_id": playbook.id, "playbook_title": playbook.title,
            "playbook_version": str(playbook.version), "key": key,
            "trigger_type": trigger.get("type", "manual"), "trigger_json": _dumps(trigger),
            "inputs_json": _dumps(values), "status": "pending", "dry_run": dry_run, "actor": actor,
            "agency": _agency_of(trigger),
            "parent_run": parent[0] if parent else None, "parent_step": parent[1] if parent else None,
            "depth": depth, "created_at": now, "started_at": None, "finished_at": None, "updated_at": now,
            "owner": self.owner, "lease_until": self.leases.expiry(),
            "heartbeat_at": now, "takeovers": 0, "executed": 0, "error": None, "outputs_json": None,
            "wait_until": None, "wait_reason": None,
            "steps": [{"id": s.id, "action": s.action, "status": "pending", "attempts": 0, "uncounted": 0,
                       "started_at": None, "finished_at": None, "duration": None, "output_json": None,
                       "error": None} for s in playbook.steps],
        }
        if not self.store.create(RUNS, run_id, body):
            return run_id, False
        self._record_run(body, "created", detail={"trigger_type": body["trigger_type"], "key": key})
        if execute:
            self._dispatch(run_id)
        return run_id, True

    def _dispatch(self, run_id: str, *, defer: bool = False) -> None:
        """Execute a new run: on the pool (``soc run``), or in this thread -- after the run
        that caused it when ``defer`` (an incident event emitted by a step must not run its
        playbooks inside that step's timeout)."""
        if self._pool is not None:
            future = self._pool.submit(self._safe_execute, run_id)
            with self._deferred_lock:
                self._running.add(future)
            future.add_done_callback(self._finished)
        elif defer:
            with self._deferred_lock:
                self._deferred.append(run_id)
        else:
            self.execute(run_id)

    def _finished(self, future: Future[None]) -> None:
        with self._deferred_lock:
            self._running.discard(future)

    def _drain(self) -> None:
        while True:
            with self._deferred_lock:
                if not self._deferred:
                    return
                run_id = self._deferred.pop(0)
            self.execute(run_id)

    def _safe_execute(self, run_id: str) -> None:
        try:
            self.execute(run_id)
        except Exception:
            log.exception("playbook run %s failed unexpectedly", run_id)
