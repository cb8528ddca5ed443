"""Executing a run: its steps in order, each to an outcome (``if`` conditions, rendered
arguments, retries, timeouts, waits, ``on_error``), and the run's end with its outputs.
Step states are saved before and after every attempt, so a resumed run continues at the first
unfinished step (see :mod:`soc.playbooks.runner`)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from soc.model import iso, now_utc
from soc.playbooks.model import Playbook
from soc.playbooks.registry import ActionContext, ActionError, Cancelled, Wait
from soc.playbooks.runs import STEP_DONE, TERMINAL, RunnerHost, _dumps, _loads, _Run
from soc.playbooks.tables import RUNS
from soc.playbooks.template import TemplateError, condition, render
from soc.store.lease import LeaseLost

log = logging.getLogger("soc.playbooks.runner")  # the runner's log, whichever part writes


class StepExecution(RunnerHost):
    """Executing runs step by step; a part of :class:`~soc.playbooks.runner.PlaybookRunner`."""

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
