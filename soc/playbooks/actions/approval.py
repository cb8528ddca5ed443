"""Human approval: the run waits (status ``waiting``, no lease held) until someone decides
with ``soc playbook approve RUN_ID`` (or ``--reject``), or the timeout passes.

The approval is a document ``playbook_approvals/<step key>`` (``pending`` -> ``approved`` |
``rejected``), created create-only on the step's first call. The step's output is
``approved`` (bool), ``decision`` (approved, rejected, timeout), ``by``, ``at``, ``comment``;
later steps branch on it with ``if: steps.<id>.output.approved``. On timeout ``on_timeout``
decides: ``reject`` (default), ``approve``, or ``fail`` (the step fails).

``approvers`` (user names, ``user:NAME`` or ``role:NAME``; a list or a text separated by commas)
restricts who may decide: see :mod:`soc.playbooks.approvers`. An unknown role fails the step at
once rather than waiting for a decision nobody may make.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from soc.access import ROLES
from soc.model import iso, now_utc, parse_iso
from soc.playbooks.approvers import approver_entries
from soc.playbooks.registry import ActionContext, ActionError, Wait, action
from soc.playbooks.tables import APPROVALS


@action("approval.wait")
def wait(ctx: ActionContext, prompt: str, approvers: Any = None, timeout_hours: float = 24.0,
         on_timeout: str = "reject") -> dict[str, Any]:
    """Wait for a human decision (``soc playbook approve RUN_ID [--reject]``)."""
    if on_timeout not in ("reject", "approve", "fail"):
        raise ActionError(f"approval.wait: on_timeout must be reject, approve or fail, not {on_timeout!r}",
                          retryable=False)
    entries = approver_entries(approvers)
    unknown = [e for e in entries if e.startswith("role:") and e[5:] not in ROLES]
    if unknown:
        raise ActionError(f"approval.wait: unknown role(s) in approvers: {', '.join(unknown)} "
                          f"(roles: {', '.join(ROLES)})", retryable=False)
    if ctx.dry_run:
        return {"dry_run": True, "would": f"wait up to {timeout_hours}h for approval: {prompt}",
                "approved": True, "decision": "dry_run"}
    doc = ctx.store.get(APPROVALS, ctx.key)
    if doc is None:
        now = now_utc()
        body = {"id": ctx.key, "run_id": ctx.run_id, "playbook_id": ctx.playbook_id, "step_id": ctx.step_id,
                "prompt": prompt, "approvers": entries, "status": "pending", "requested_at": iso(now),
                "deadline": iso(now + timedelta(hours=float(timeout_hours))), "on_timeout": on_timeout}
        ctx.store.create(APPROVALS, ctx.key, body)
        doc = ctx.store.get(APPROVALS, ctx.key)
        assert doc is not None
    body = doc.body
    if body["status"] in ("approved", "rejected"):
        return {"approved": body["status"] == "approved", "decision": body["status"],
                "by": body.get("decided_by"), "at": body.get("decided_at"), "comment": body.get("comment", "")}
    if parse_iso(body["deadline"]) <= now_utc():
        if on_timeout == "fail":
            raise ActionError(f"no decision before {body['deadline']}", retryable=False)
        return {"approved": on_timeout == "approve", "decision": "timeout", "by": None, "at": body["deadline"],
                "comment": ""}
    raise Wait(f"approval: {prompt}", until=body["deadline"], detail={"approval": ctx.key})
