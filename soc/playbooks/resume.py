"""Continuing runs: claiming one for this process (taking over a run whose owner died or whose
lease expired, failing one abandoned too often), deciding approvals, resuming by hand and the
recovery sweep (see :mod:`soc.playbooks.runner`)."""

from __future__ import annotations

import logging
from typing import Any

from soc.access import Forbidden, Principal
from soc.model import iso, now_utc
from soc.playbooks.approvers import check_approver
from soc.playbooks.model import PlaybookError
from soc.playbooks.runs import TERMINAL, RunnerHost, _dumps, _Run
from soc.playbooks.tables import APPROVALS, RUNS
from soc.store.base import Conflict
from soc.store.lease import LeaseLost, owner_gone

log = logging.getLogger(__name__)


class RunResumption(RunnerHost):
    """Claiming, approving, resuming and recovering runs; a part of
    :class:`~soc.playbooks.runner.PlaybookRunner`."""

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

    def approve(self, run_id: str, *, approved: bool = True, by: Principal, comment: str = "") -> dict[str, Any]:
        """Decide the approval a waiting run waits for, then continue the run. ``by`` must hold
        ``playbooks:approve`` and, when the step lists ``approvers``, be one of them (a user
        name or ``role:NAME``); otherwise :class:`~soc.access.Forbidden` and the approval stays
        pending. The decision is recorded under ``by.label``."""
        by.require("playbooks:approve")
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
            try:
                check_approver(by, approval.body.get("approvers"), f"run {run_id} step {waiting[0]['id']}")
            except Forbidden:
                log.warning("run %s: %s may not decide the approval of step %s", run_id, by.label, waiting[0]["id"])
                raise
            body = dict(approval.body, status="approved" if approved else "rejected", decided_by=by.label,
                        decided_at=iso(now_utc()), comment=comment)
            try:
                self.store.put(APPROVALS, key, body, expected_version=approval.version)
                break
            except Conflict:
                continue
        self._record(f"{run_id}:run:approval:{waiting[0]['id']}",
                     {"run_id": run_id, "playbook_id": doc.body["playbook_id"], "kind": "run",
                      "event": "approved" if approved else "rejected", "step_id": waiting[0]["id"],
                      "actor": by.label, "detail_json": _dumps({"comment": comment})})
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
