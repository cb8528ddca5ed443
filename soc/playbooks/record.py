"""The record of playbook runs: every step attempt and run event written create-only to
``playbook_steps`` under a deterministic id (append-only; a replay cannot write it twice), and
reading runs and their records back."""

from __future__ import annotations

import logging
import time
from typing import Any

from soc.model import iso, now_utc
from soc.playbooks.runs import RunnerHost, _dumps, _Run
from soc.playbooks.tables import RUNS, STEPS

log = logging.getLogger("soc.playbooks.runner")  # the runner's log, whichever part writes


class RunRecord(RunnerHost):
    """Writing and reading the record; a part of :class:`~soc.playbooks.runner.PlaybookRunner`."""

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
