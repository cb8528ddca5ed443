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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from soc.clock import epoch_clock
from soc.config import PlaybookSettings
from soc.model import iso, now_utc
from soc.playbooks.actions import load_actions
from soc.playbooks.model import LEVELS, SEVERITIES, Playbook, PlaybookError, load_playbooks
from soc.playbooks.registry import ActionContext, ActionError, Cancelled, Wait
from soc.playbooks.tables import APPROVALS, RUNS, STEPS
from soc.playbooks.template import TemplateError, condition, render
from soc.store.base import Conflict, Doc, Store
from soc.store.lease import Claim, LeaseFields, LeaseLost, Leases, owner_gone

log = logging.getLogger(__name__)

CLAIMS = "playbook_alerts"  # which alerts a playbook with group_by has batched (create-only)
TERMINAL = ("succeeded", "failed")
STEP_DONE = ("succeeded", "skipped", "failed")


#: a run's lease: ``owner`` (host:pid:nonce) and ``lease_until`` (epoch seconds), 0 when released
RUN_LEASE = LeaseFields(owner="owner", until="lease_until", stamp="epoch", vacant=0)


def _claim_id(playbook_id: str, alert_id: str) -> str:
    return hashlib.sha256(f"{playbook_id}\x00{alert_id}".encode()).hexdigest()[:32]


def run_id_for(playbook_id: str, key: str) -> str:
    return hashlib.sha256(f"{playbook_id}\x00{key}".encode()).hexdigest()[:32]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


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


class _Run:
    """One run document held by this process (a :class:`~soc.store.lease.Claim`): every
    write is a compare-and-set; the first that conflicts raises :class:`LeaseLost` and
    cancels the step in progress."""

    def __init__(self, runner: PlaybookRunner, doc: Doc):
        self.runner = runner
        self.id = doc.id
        self.claim = runner.leases.handle(doc, on_lost=self._cancel)
        self.lost = self.claim.lost
        self.cancel_current: threading.Event | None = None

    @property
    def body(self) -> dict[str, Any]:
        return self.claim.body

    def _cancel(self) -> None:
        if self.cancel_current is not None:
            self.cancel_current.set()

    def take(self, **changes: Any) -> None:
        """Claim the run: our owner and lease, with ``changes``."""
        self.claim.take(**{**changes, "updated_at": iso(now_utc())})

    def save(self, **changes: Any) -> None:
        self.claim.write(**{**changes, "updated_at": iso(now_utc())})

    def release(self, **changes: Any) -> None:
        """The last write of this process: ``changes`` with the lease cleared."""
        self.claim.release(**{**changes, "updated_at": iso(now_utc())})

    def keep_alive(self) -> contextlib.AbstractContextManager[Claim]:
        """Renew the lease (and ``heartbeat_at``) every third of it while the block runs."""
        def beat() -> dict[str, Any]:
            return {"heartbeat_at": iso(now_utc()), "updated_at": iso(now_utc())}

        return self.claim.keep_alive(f"playbook run {self.id}", beat)

    def step_state(self, step_id: str) -> dict[str, Any]:
        for state in self.body["steps"]:
            if state["id"] == step_id:
                return state
        raise KeyError(step_id)

    def set_step(self, step_id: str, **changes: Any) -> None:
        steps = [dict(s, **changes) if s["id"] == step_id else s for s in self.body["steps"]]
        self.save(steps=steps)


class PlaybookRunner:
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
            self._incidents[key] = Incidents(self.store, **options)
        return self._incidents[key]

    def close(self) -> None:
        if self._pool is not None:
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
            self._pool.submit(self._safe_execute, run_id)
        elif defer:
            with self._deferred_lock:
                self._deferred.append(run_id)
        else:
            self.execute(run_id)

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

    # -- triggers ------------------------------------------------------------------------------
    def on_alerts(self, alerts: Iterable[dict[str, Any]]) -> list[str]:
        """Start the runs for newly recorded alerts (the detection run's ``created`` list).
        Idempotent: an alert already handled by a playbook starts nothing. Returns run ids."""
        alerts = [a for a in alerts if isinstance(a, dict) and a.get("id")]
        started: list[str] = []
        if not alerts:
            return started
        for playbook in self.playbooks.values():
            spec = playbook.trigger.alerts
            if not playbook.enabled or spec is None:
                continue
            matching = [a for a in alerts if alert_matches(spec, a)]
            if spec.group_by:  # an alert already in a batch of this playbook is not batched again
                matching = [a for a in matching if self.store.get(CLAIMS, _claim_id(playbook.id, a["id"])) is None]
            if not matching:
                continue
            if spec.group_by:
                groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
                for alert in matching:
                    groups.setdefault(tuple(_entity(alert, f) for f in spec.group_by), []).append(alert)
                batches = [(dict(zip(spec.group_by, k, strict=True)), g) for k, g in groups.items()]
            else:
                batches = [({}, [a]) for a in matching]
            for group, batch in batches:
                ids = sorted(a["id"] for a in batch)
                key = f"alert:{ids[0]}" if len(ids) == 1 else \
                    "alerts:" + hashlib.sha256("|".join(ids).encode()).hexdigest()[:24]
                trigger = {"type": "alerts", "alerts": batch, "alert": batch[0], "group": group,
                           "alert_ids": ids}
                try:
                    run_id, created = self.start(playbook, trigger, key, actor="system:detection",
                                                 execute=False)
                    if spec.group_by:  # after the run exists: a crash in between re-batches, never loses
                        for alert_id in ids:
                            self.store.create(CLAIMS, _claim_id(playbook.id, alert_id),
                                              {"playbook_id": playbook.id, "alert_id": alert_id, "run_id": run_id,
                                               "at": iso(now_utc())})
                    if created:
                        self._dispatch(run_id)
                except Exception as error:  # one broken playbook never stops the others
                    log.error("playbook %s: could not start for alerts %s: %s", playbook.id, ids[:3], error)
                    continue
                if created:
                    started.append(run_id)
        return started

    def on_incident_event(self, incident: dict[str, Any], event: str, *, detail: str = "",
                          depth: int = 0, actor: str = "system") -> list[str]:
        """Start the runs of playbooks triggered by an incident event (``opened``,
        ``status_changed`` with ``detail`` = the new status, ...)."""
        started: list[str] = []
        if depth >= 5:
            log.warning("incident %s: event %s not dispatched (playbook chain deeper than 5)", incident.get("id"), event)
            return started
        for playbook in self.playbooks.values():
            spec = playbook.trigger.incident
            if not playbook.enabled or spec is None or not incident_matches(spec, incident, event, detail):
                continue
            key = f"incident:{incident['id']}" if spec.once_per_incident else \
                f"incident:{incident['id']}:{event}" + (f":{detail}" if detail else "")
            trigger = {"type": "incident", "event": event, "detail": detail, "incident": incident}
            try:
                run_id, created = self.start(playbook, trigger, key, actor=actor, depth=depth, execute=False)
                if created:
                    self._dispatch(run_id, defer=depth > 0)
            except Exception as error:
                log.error("playbook %s: could not start for incident %s: %s", playbook.id, incident.get("id"), error)
                continue
            if created:
                started.append(run_id)
        return started

    def on_schedule(self, playbook_id: str, fire_time: datetime | None = None) -> tuple[str, bool]:
        """The run of a scheduled playbook for one fire time (one per fire time, whichever
        process fires it)."""
        fire = (fire_time or now_utc()).astimezone(UTC).replace(second=0, microsecond=0)
        trigger = {"type": "schedule", "fired_at": iso(fire)}
        return self.start(playbook_id, trigger, f"schedule:{iso(fire)}", actor="system:schedule")

    # -- executing -----------------------------------------------------------------------------
    def _claim(self, run_id: str) -> _Run | None:
        doc = self.store.get(RUNS, run_id)
        if doc is None:
            raise PlaybookError(f"no playbook run {run_id!r}; `soc playbook runs` lists them")
        body = doc.body
        status = body["status"]
        if status in TERMINAL:
            return None
        mine = self.leases.holder(body) == self.owner
        taking_over = False
        if status in ("running", "pending") and not mine:
            if self.leases.live(body):
                return None  # another live process works on it
            taking_over = True
        elif status == "running" and mine:
            return None  # this runner executes it right now (another thread)
        changes: dict[str, Any] = {"heartbeat_at": iso(now_utc()), "status": "running",
                                   "started_at": body.get("started_at") or iso(now_utc()),
                                   "wait_until": None, "wait_reason": None}
        if taking_over:
            changes["takeovers"] = body.get("takeovers", 0) + 1
        run = _Run(self, doc)
        if taking_over and changes["takeovers"] > self.config.max_takeovers:
            try:
                run.release(status="failed", finished_at=iso(now_utc()),
                            error=f"abandoned: its process died {changes['takeovers'] - 1} times while running it "
                                  f"(last owner {body.get('owner')}); not resumed again")
            except LeaseLost:
                return None
            self._record_run(run.body, "failed", detail={"error": run.body["error"]})
            return None
        try:
            run.take(**changes)
        except LeaseLost:
            return None  # someone else claimed it first
        if taking_over:
            self._record_run(run.body, f"resumed-{changes['takeovers']}",
                             detail={"previous_owner": body.get("owner"), "was": status,
                                     "reason": "owner process gone" if owner_gone(body.get("owner"))
                                     else "lease expired"})
        elif status == "waiting":
            self._record_run(run.body, f"resumed-wait-{body.get('executed', 0)}",
                             detail={"wait_reason": body.get("wait_reason")})
        else:
            self._record_run(run.body, "started", detail={})
        return run

    def execute(self, run_id: str) -> dict[str, Any]:
        """Execute (or continue) a run in this thread until it finishes, waits or is lost.
        Returns the run document as it is then."""
        run = self._claim(run_id)
        if run is None:
            doc = self.store.get(RUNS, run_id)
            return doc.body if doc else {}
        try:
            with run.keep_alive():
                self._steps(run)
        except LeaseLost:
            log.warning("playbook run %s: lease lost; the process that took it over continues it", run_id)
        if run.body["status"] in TERMINAL and run.body.get("parent_run"):
            parent = self.store.get(RUNS, run.body["parent_run"])
            if parent is not None and parent.body["status"] == "waiting":
                self.execute(parent.id)
        self._drain()
        return run.body

    def context(self, body: dict[str, Any]) -> dict[str, Any]:
        steps = {s["id"]: {"status": s["status"], "output": _loads(s.get("output_json")) or {},
                           "error": s.get("error"), "attempts": s.get("attempts", 0)} for s in body["steps"]}
        return {"trigger": _loads(body["trigger_json"]) or {}, "inputs": _loads(body["inputs_json"]) or {},
                "steps": steps, "now": iso(now_utc()),
                "run": {"id": body["id"], "playbook": body["playbook_id"], "dry_run": body["dry_run"],
                        "actor": body["actor"], "key": body["key"]}}

    def _steps(self, run: _Run) -> None:
        body = run.body
        playbook = self.playbooks.get(body["playbook_id"])
        if playbook is None:
            self._finish(run, "failed", f"playbook {body['playbook_id']!r} is no longer loaded "
                                        f"(removed or invalid: `soc playbook validate`)")
            return
        if [s.id for s in playbook.steps] != [s["id"] for s in body["steps"]]:
            self._finish(run, "failed", f"playbook {playbook.id} changed its steps since this run started "
                                        f"(version {body['playbook_version']} -> {playbook.version}); "
                                        "start a new run")
            return
        failure: str | None = None
        jump: str | None = None
        for step in playbook.steps:
            state = run.step_state(step.id)
            if jump is not None:
                if step.id != jump:
                    if state["status"] not in STEP_DONE:
                        run.set_step(step.id, status="skipped", error=f"skipped: on_error jumped to {jump}")
                        self._record_step(run, step.id, step.action, 0, "skipped", status="skipped",
                                          detail={"reason": f"on_error jumped to {jump}"})
                    continue
                jump = None
            if state["status"] in ("succeeded", "skipped"):
                continue
            if state["status"] == "failed":
                outcome = "failed"  # failed before a restart: its on_error still decides what follows
            else:
                if run.body.get("executed", 0) >= self.config.max_steps_per_run:
                    failure = f"more than {self.config.max_steps_per_run} step executions; stopped"
                    break
                outcome = self._step(run, playbook, step)
            if outcome == "wait":
                return
            if outcome == "failed":
                if step.on_error == "continue":
                    continue
                if step.goto:
                    jump = step.goto
                    continue
                failure = f"step {step.id} failed: {run.step_state(step.id).get('error')}"
                break
        if failure:
            self._finish(run, "failed", failure)
            return
        try:
            outputs = render(playbook.outputs, self.context(run.body))
            self._finish(run, "succeeded", None, outputs)
        except TemplateError as error:
            self._finish(run, "failed", f"outputs: {error}")

    def _step(self, run: _Run, playbook: Playbook, step: Any) -> str:
        """Execute one step to its outcome: ``succeeded``, ``skipped``, ``failed`` or ``wait``."""
        from soc.playbooks.registry import REGISTRY

        state = run.step_state(step.id)
        context = self.context(run.body)
        if state["status"] == "pending" and step.if_ is not None:
            try:
                wanted = condition(step.if_, context)
            except TemplateError as error:
                return self._fail_step(run, step, state["attempts"], str(error), 0.0)
            if not wanted:
                run.set_step(step.id, status="skipped", finished_at=iso(now_utc()), error=None)
                self._record_step(run, step.id, step.action, 0, "skipped", status="skipped",
                                  detail={"condition": step.if_})
                return "skipped"
        uncounted = state.get("uncounted", 0)
        if state["status"] in ("running", "waiting"):
            uncounted += 1  # interrupted by a crash, or resumed after a wait: not a failure
        try:
            args = render(step.args, context)
        except TemplateError as error:
            return self._fail_step(run, step, state["attempts"], str(error), 0.0)
        action = REGISTRY[step.action]
        attempt = state["attempts"]
        while True:
            attempt += 1
            started = time.monotonic()
            run.set_step(step.id, status="running", attempts=attempt, uncounted=uncounted,
                         started_at=state.get("started_at") or iso(now_utc()), error=None)
            run.save(executed=run.body.get("executed", 0) + 1)
            self._record_step(run, step.id, step.action, attempt, "start", status="running",
                              detail={"args_json": _dumps(args)})
            ctx = ActionContext(store=self.store, runner=self, run_id=run.id, playbook_id=playbook.id,
                                step_id=step.id, key=f"{run.id}:{step.id}", attempt=attempt,
                                actor=run.body["actor"], dry_run=run.body["dry_run"],
                                depth=run.body.get("depth", 0))
            run.cancel_current = ctx.cancelled
            try:
                output = self._call(action, ctx, args, step.timeout)
            except Wait as wait:
                duration = time.monotonic() - started
                run.set_step(step.id, status="waiting", error=None)
                run.release(status="waiting", wait_until=wait.until, wait_reason=f"{step.id}: {wait.reason}")
                self._record_step(run, step.id, step.action, attempt, "end", status="waiting",
                                  duration=duration, detail={"reason": wait.reason, "until": wait.until,
                                                             **wait.detail})
                return "wait"
            except Exception as error:
                duration = time.monotonic() - started
                if run.lost.is_set():
                    raise LeaseLost(run.id) from error
                retryable = getattr(error, "retryable", True) and not isinstance(error, TemplateError)
                message = f"{type(error).__name__}: {error}" if not isinstance(error, ActionError) else str(error)
                allowed = step.retry.attempts + uncounted
                if retryable and attempt < allowed:
                    delay = step.retry.delay(attempt - uncounted)
                    run.set_step(step.id, status="running", error=message,
                                 next_attempt_at=iso(datetime.fromtimestamp(self.clock() + delay, UTC)))
                    self._record_step(run, step.id, step.action, attempt, "end", status="retrying",
                                      duration=duration, error=message, detail={"retry_in": delay})
                    if run.lost.wait(delay):
                        raise LeaseLost(run.id) from error
                    continue
                return self._fail_step(run, step, attempt, message, duration)
            finally:
                run.cancel_current = None
            duration = time.monotonic() - started
            output_json = _dumps(output)
            run.set_step(step.id, status="succeeded", finished_at=iso(now_utc()), duration=round(duration, 3),
                         output_json=output_json, error=None)
            self._record_step(run, step.id, step.action, attempt, "end", status="succeeded",
                              duration=duration, detail={"output_json": output_json})
            return "succeeded"

    def _fail_step(self, run: _Run, step: Any, attempt: int, message: str, duration: float) -> str:
        run.set_step(step.id, status="failed", finished_at=iso(now_utc()), error=message,
                     duration=round(duration, 3))
        self._record_step(run, step.id, step.action, max(attempt, 0), "end" if attempt else "error",
                          status="failed", duration=duration, error=message,
                          detail={"on_error": step.on_error})
        return "failed"

    def _call(self, action: Any, ctx: ActionContext, args: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Run the action in a worker thread, at most ``timeout`` seconds. On timeout the
        step's cancel event is set (cooperative actions stop) and the attempt fails."""
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["output"] = action(ctx, args)
            except BaseException as error:  # handed to the runner thread
                box["error"] = error

        worker = threading.Thread(target=target, daemon=True, name=f"soc-step-{ctx.step_id}")
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            ctx.cancelled.set()
            worker.join(1.0)
            raise ActionError(f"timed out after {timeout:g}s")
        if "error" in box:
            error = box["error"]
            if isinstance(error, Cancelled) and ctx.cancelled.is_set():
                raise ActionError(f"cancelled: {error}")
            raise error
        return box.get("output") or {}

    def _finish(self, run: _Run, status: str, error: str | None, outputs: Any = None) -> None:
        run.release(status=status, finished_at=iso(now_utc()), error=error,
                    outputs_json=_dumps(outputs) if outputs is not None else None, wait_until=None, wait_reason=None)
        self._record_run(run.body, status, detail={"error": error} if error else {})

    # -- approvals, resume, recovery ----------------------------------------------------------
    def approve(self, run_id: str, *, approved: bool = True, by: str, comment: str = "") -> dict[str, Any]:
        """Decide the approval a waiting run waits for, then continue the run."""
        doc = self.store.get(RUNS, run_id)
        if doc is None:
            raise PlaybookError(f"no playbook run {run_id!r}; `soc playbook runs --status waiting` lists them")
        waiting = [s for s in doc.body["steps"] if s["status"] == "waiting" and s["action"] == "approval.wait"]
        if doc.body["status"] != "waiting" or not waiting:
            raise PlaybookError(f"run {run_id} does not wait for an approval (status {doc.body['status']})")
        key = f"{run_id}:{waiting[0]['id']}"
        for _ in range(5):
            approval = self.store.get(APPROVALS, key)
            if approval is None:
                raise PlaybookError(f"run {run_id}: approval {key} not found")
            if approval.body.get("status") != "pending":
                raise PlaybookError(f"run {run_id}: already {approval.body['status']} by {approval.body.get('decided_by')}")
            body = dict(approval.body, status="approved" if approved else "rejected", decided_by=by,
                        decided_at=iso(now_utc()), comment=comment)
            try:
                self.store.put(APPROVALS, key, body, expected_version=approval.version)
                break
            except Conflict:
                continue
        self._record(f"{run_id}:run:approval:{waiting[0]['id']}",
                     {"run_id": run_id, "playbook_id": doc.body["playbook_id"], "kind": "run",
                      "event": "approved" if approved else "rejected", "step_id": waiting[0]["id"],
                      "actor": by, "detail_json": _dumps({"comment": comment})})
        return self.execute(run_id)

    def resume(self, run_id: str) -> dict[str, Any]:
        """Continue a run by hand: a stale ``running`` one (taken over), a ``waiting`` one (its
        waiting step is asked again) or a ``pending`` one."""
        return self.execute(run_id)

    def recover(self) -> list[str]:
        """Take over runs whose owner is gone or whose lease expired, and continue waiting runs
        whose wait is over. Returns the ids handled. Called at start-up and periodically."""
        handled = []
        self.store.refresh()  # other processes' writes (a no-op on SQLite)
        for doc in self.store.find(RUNS, {"status": ["pending", "running"]}, limit=10_000):
            body = doc.body
            if self.leases.holder(body) == self.owner:
                continue
            if not self.leases.live(body):  # expired, or its owner process is gone
                handled.append(doc.id)
                self._dispatch(doc.id)
        now_iso = iso(now_utc())
        for doc in self.store.find(RUNS, {"status": "waiting"}, limit=10_000):
            until = doc.body.get("wait_until")
            if until and until <= now_iso:
                handled.append(doc.id)
                self._dispatch(doc.id)
        return handled

    def catch_up(self, since_seconds: float = 3600.0) -> list[str]:
        """Hand the alerts detected in the last ``since_seconds`` to :meth:`on_alerts` again.

        Detection records an alert and only then hands it over; a process that dies in between
        leaves an alert no playbook saw. :meth:`on_alerts` is idempotent (run keys, batch
        claims), so re-offering recent alerts at start-up starts only what is missing."""
        start = iso(datetime.fromtimestamp(self.clock() - since_seconds, UTC))
        docs = self.store.find("alerts", None, time_field="detected_at", start=start, sort="detected_at",
                               limit=100_000)
        return self.on_alerts([d.body for d in docs])

    # -- record --------------------------------------------------------------------------------
    def _record(self, record_id: str, body: dict[str, Any]) -> None:
        body = dict(body, id=record_id, at=body.get("at") or iso(now_utc()), owner=self.owner,
                    seq=int(time.time() * 1_000_000))
        try:
            self.store.create(STEPS, record_id, body)
        except Exception as error:  # the record must not break the run; say so loudly
            log.error("playbook record %s could not be written: %s", record_id, error)

    def _record_run(self, body: dict[str, Any], event: str, *, detail: dict[str, Any]) -> None:
        self._record(f"{body['id']}:run:{event}", {
            "run_id": body["id"], "playbook_id": body["playbook_id"], "kind": "run", "event": event,
            "status": body["status"], "actor": body["actor"], "dry_run": body["dry_run"],
            "detail_json": _dumps(detail)})

    def _record_step(self, run: _Run, step_id: str, action: str, attempt: int, phase: str, *, status: str,
                     duration: float | None = None, error: str | None = None,
                     detail: dict[str, Any] | None = None) -> None:
        detail = dict(detail or {})
        record = {"run_id": run.id, "playbook_id": run.body["playbook_id"], "kind": "step", "step_id": step_id,
                  "action": action, "attempt": attempt, "phase": phase, "status": status,
                  "actor": run.body["actor"], "dry_run": run.body["dry_run"],
                  "duration": round(duration, 4) if duration is not None else None, "error": error,
                  "args_json": detail.pop("args_json", None), "output_json": detail.pop("output_json", None),
                  "detail_json": _dumps(detail) if detail else None}
        suffix = f"{attempt}:{phase}" if phase != "skipped" else "skipped"
        self._record(f"{run.id}:{step_id}:{suffix}", record)

    # -- reading -------------------------------------------------------------------------------
    def runs(self, *, playbook_id: str | None = None, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        where = {k: v for k, v in {"playbook_id": playbook_id, "status": status}.items() if v}
        self.store.refresh()
        return [d.body for d in self.store.find(RUNS, where or None, sort="created_at", descending=True,
                                                limit=limit)]

    def records(self, run_id: str) -> list[dict[str, Any]]:
        self.store.refresh()
        docs = self.store.find(STEPS, {"run_id": run_id}, sort="seq", limit=100_000)
        return [d.body for d in docs]


# -- trigger matching --------------------------------------------------------------------------
def _entity(alert: dict[str, Any], name: str) -> str:
    if name in (alert.get("group") or {}):
        return str(alert["group"][name]).lower()
    values = (alert.get("entities") or {}).get(name) or []
    if values:
        return str(values[0]).lower()
    value = alert.get(name)
    return "" if value is None else str(value).lower()


def alert_matches(spec: Any, alert: dict[str, Any]) -> bool:
    rule = alert.get("rule") or {}
    if spec.rules and rule.get("id") not in spec.rules:
        return False
    if spec.tags and not set(spec.tags) & set(rule.get("tags") or []):
        return False
    if spec.min_level:
        level = rule.get("level")
        if level not in LEVELS or LEVELS.index(level) < LEVELS.index(spec.min_level):
            return False
    return not (spec.agencies and alert.get("agency") not in spec.agencies)


def incident_matches(spec: Any, incident: dict[str, Any], event: str, detail: str) -> bool:
    if event not in spec.events:
        return False
    if event == "status_changed" and spec.statuses and detail not in spec.statuses:
        return False
    severity = incident.get("severity", "medium")
    if spec.min_severity and (severity not in SEVERITIES
                              or SEVERITIES.index(severity) < SEVERITIES.index(spec.min_severity)):
        return False
    if spec.types and incident.get("incident_type") not in spec.types:
        return False
    if spec.serious_only:
        with contextlib.suppress(Exception):
            from soc.incidents.model import Incident

            return Incident.model_validate(incident).serious
        return False
    return True


def _agency_of(trigger: dict[str, Any]) -> str | None:
    if trigger.get("alert"):
        return trigger["alert"].get("agency")
    if trigger.get("incident"):
        return trigger["incident"].get("agency")
    return None
