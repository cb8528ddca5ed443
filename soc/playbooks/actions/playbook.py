"""Sub-playbooks: ``playbook.run`` starts another playbook as a child run and waits for it.

The child run's key is the parent step's key, so a retried or resumed parent step finds the
same child instead of starting another. A child that waits (an approval) makes the parent
wait; when the child finishes, the runner continues the parent.
"""

from __future__ import annotations

import json
from typing import Any

from soc.playbooks.registry import ActionContext, ActionError, Wait, action
from soc.playbooks.tables import RUNS


@action("playbook.run")
def run(ctx: ActionContext, playbook: str, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run another playbook with ``inputs``; its outputs become this step's output."""
    if ctx.depth >= 5:
        raise ActionError("playbook.run: sub-playbooks nested deeper than 5", retryable=False)
    runner = ctx.runner
    trigger = {"type": "playbook", "parent_run": ctx.run_id, "parent_step": ctx.step_id}
    if ctx.dry_run:
        child_id, _ = runner.start(playbook, trigger, f"parent:{ctx.key}", inputs=inputs or {}, actor=ctx.actor,
                                   dry_run=True, depth=ctx.depth + 1)
    else:
        child_id, created = runner.start(playbook, trigger, f"parent:{ctx.key}", inputs=inputs or {},
                                         actor=ctx.actor, parent=(ctx.run_id, ctx.step_id), depth=ctx.depth + 1,
                                         execute=False)
        runner.execute(child_id)
    doc = ctx.store.get(RUNS, child_id)
    if doc is None:
        raise ActionError(f"sub-playbook run {child_id} vanished")
    child = doc.body
    if child["status"] == "succeeded":
        outputs = json.loads(child["outputs_json"]) if child.get("outputs_json") else {}
        return {"run_id": child_id, "status": "succeeded", "outputs": outputs}
    if child["status"] == "failed":
        raise ActionError(f"sub-playbook {playbook} (run {child_id}) failed: {child.get('error')}", retryable=False)
    raise Wait(f"sub-playbook {playbook} run {child_id} is {child['status']}", until=child.get("wait_until"),
               detail={"child_run": child_id})
